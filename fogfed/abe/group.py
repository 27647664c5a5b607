"""The pairing group every ABE scheme here runs on: BLS12-381 through mcl.

This is the only module the schemes get group elements from. Elements are
those of fogfed's own small binding over mcl's public C API (abe/mcl.py,
loaded from the pymcl wheel's shared object); schemes combine them with
operators (``+``/``-`` in G1 and G2, ``*`` by a scalar, ``*``/``/``/``**`` in
GT), so swapping the library means rewriting mcl.py and this file only.

BLS12-381 is a Type-3 (asymmetric) pairing e: G1 x G2 -> GT. G1 elements are
48 bytes compressed and about twice as fast to multiply as G2 elements
(96 bytes), so the schemes put their many per-attribute elements in G1.

``pairing_product`` is the multi-pairing every scheme decrypts with: one
Miller loop over all pairs and one final exponentiation (``pairing`` stays
the single pairing benchmarks count as the unit).

Security notes (also in docs/abe.md):
- mcl's scalar multiplication and exponentiation are variable-time.
- Hash-to-curve is mcl's own map (hashAndMapTo), not RFC 9380; it is a proper
  hash onto the prime-order subgroup (no known discrete logarithm), which is
  what the schemes' random-oracle arguments need, but its outputs are not
  interoperable with IETF implementations.
- Scalars come from ``os.urandom`` (64 bytes reduced mod r, bias < 2^-256),
  not from mcl's internal generator, so the source of randomness is the OS.
- Decoding does not rely on mcl's process-wide verifyOrder switch: points
  are rebuilt from x and a square root (exact length, canonical encoding, on
  the curve, not the identity) and ``decode_g1``/``decode_g2`` then test the
  subgroup explicitly. ``decode_g1_unchecked`` skips only the subgroup
  test, for FAME ciphertext rows whose combination is tested where it enters
  a pairing (``require_in_group``; the argument is in docs/abe.md). GT
  membership is checked here (mcl does not).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

import pymcl

from fogfed.abe import mcl
from fogfed.abe.errors import MalformedError

G1 = mcl.G1
G2 = mcl.G2
GT = mcl.GT
Scalar = mcl.Fr

ORDER: int = pymcl.r
SCALAR_SIZE = 32
G1_SIZE = 48
G2_SIZE = 96
GT_SIZE = 576

__all__ = [
    "G1",
    "G1_SIZE",
    "G2",
    "G2_SIZE",
    "GT",
    "GT_SIZE",
    "ORDER",
    "SCALAR_SIZE",
    "PairingGroup",
    "Scalar",
    "group",
]


class PairingGroup:
    """BLS12-381: generators, random scalars, hashing, pairing, encodings.

    ``pairing(a, b)`` is the entry point benchmarks time as "one pairing".
    """

    name = "BLS12-381 (mcl)"
    order = ORDER

    def __init__(self) -> None:
        self.g1: G1 = mcl.from_pymcl(pymcl.g1)
        self.g2: G2 = mcl.from_pymcl(pymcl.g2)
        self.gt_one: GT = GT()

    # -- scalars ---------------------------------------------------------

    def random_scalar(self) -> Scalar:
        """A uniform non-zero scalar from the OS's randomness."""
        while True:
            value = int.from_bytes(os.urandom(64), "little") % ORDER
            if value:
                return self.scalar(value)

    def scalar(self, value: int) -> Scalar:
        """The scalar ``value mod r`` (any Python int, negative allowed)."""
        return Scalar.from_int(value)

    @staticmethod
    def scalar_to_int(value: Scalar) -> int:
        return int(value)

    # -- hashing ---------------------------------------------------------

    def hash_g1(self, label: bytes) -> G1:
        """Hash a byte string onto G1; cached because schemes rehash attributes."""
        return _hash_g1(bytes(label))

    def hash_to_scalar(self, label: bytes) -> Scalar:
        """SHA-512 of ``label`` reduced mod r."""
        return self.scalar(int.from_bytes(hashlib.sha512(label).digest(), "little"))

    # -- pairing ---------------------------------------------------------

    def pairing(self, a: G1, b: G2) -> GT:
        """e(a, b) for a in G1, b in G2."""
        return mcl.pairing(a, b)

    def pairing_product(self, pairs: list[tuple[G1, G2]]) -> GT:
        """prod e(a_i, b_i): one Miller loop over all pairs, one final exponentiation."""
        return mcl.pairing_product(pairs)

    @staticmethod
    def require_in_group(point: G1 | G2, what: str) -> None:
        """MalformedError unless ``point`` is on the curve, not the identity, and in the order-r subgroup."""
        if not mcl.is_in_group(point):
            raise MalformedError(
                f"{what} is not an element of the order-r subgroup (not on the curve, the identity, or outside G1/G2)",
                "the object is corrupt or crafted",
            )

    # -- encodings -------------------------------------------------------

    @staticmethod
    def encode(element: G1 | G2 | GT | Scalar) -> bytes:
        return element.serialize()

    def decode_g1(self, data: bytes, what: str) -> G1:
        return _decode_point(G1, G1_SIZE, data, what, "G1", subgroup=True)

    def decode_g2(self, data: bytes, what: str) -> G2:
        return _decode_point(G2, G2_SIZE, data, what, "G2", subgroup=True)

    def decode_g1_unchecked(self, data: bytes, what: str) -> G1:
        """A G1 point on the curve, canonical, not the identity; the subgroup is left to ``require_in_group``."""
        return _decode_point(G1, G1_SIZE, data, what, "G1", subgroup=False)

    def decode_gt(self, data: bytes, what: str) -> GT:
        """Decode a GT element and check it lies in the order-r subgroup."""
        value = _decode_exact(GT, GT_SIZE, data, what, "GT")
        if value.is_one():
            raise MalformedError(f"{what} is the identity of GT", "the object is corrupt or crafted")
        if not _pow_is_one(value, ORDER):
            raise MalformedError(f"{what} is not in the order-r subgroup of GT", "the object is corrupt or crafted")
        return value

    def decode_scalar(self, data: bytes, what: str) -> Scalar:
        value = _decode_exact(Scalar, SCALAR_SIZE, data, what, "scalar")
        if value.is_zero():
            raise MalformedError(f"{what} is zero", "the object is corrupt or crafted")
        return value


def _decode_exact(kind, size: int, data: bytes, what: str, kind_name: str):
    if len(data) != size:
        raise MalformedError(f"{what}: a {kind_name} element is {size} bytes, got {len(data)}")
    try:
        value = kind.deserialize(bytes(data))
    except (ValueError, RuntimeError):
        raise MalformedError(
            f"{what} is not a valid {kind_name} element (not canonical, not on the curve, or not in the subgroup)",
            "the object is corrupt or crafted",
        ) from None
    if value.serialize() != data:
        raise MalformedError(f"{what} is a non-canonical {kind_name} encoding", "the object is corrupt or crafted")
    return value


_IDENTITY = {G1: G1().serialize(), G2: G2().serialize()}


def _decode_point(kind, size: int, data: bytes, what: str, kind_name: str, subgroup: bool):
    if len(data) != size:
        raise MalformedError(f"{what}: a {kind_name} element is {size} bytes, got {len(data)}")
    data = bytes(data)
    if data == _IDENTITY[kind]:
        raise MalformedError(f"{what} is the identity of {kind_name}", "the object is corrupt or crafted")
    value = mcl.decode_on_curve(kind, data)
    if value is None:
        raise MalformedError(
            f"{what} is not a valid {kind_name} element (not canonical or not on the curve)",
            "the object is corrupt or crafted",
        )
    if subgroup and not value.is_valid_order():
        raise MalformedError(
            f"{what} is not a valid {kind_name} element: not in the order-r subgroup",
            "the object is corrupt or crafted",
        )
    return value


def _pow_is_one(value: GT, exponent: int) -> bool:
    """value ** exponent == 1, by plain square-and-multiply.

    mcl's GT exponentiation assumes its input is already in the order-r
    subgroup (it uses the Frobenius), so it cannot be trusted to test that.
    """
    acc = GT()
    for bit in bin(exponent)[2:]:
        acc = acc * acc
        if bit == "1":
            acc = acc * value
    return acc.is_one()


@lru_cache(maxsize=65536)
def _hash_g1(label: bytes) -> G1:
    return G1.hash(label)  # mcl's hashAndMapTo, the same map as pymcl.G1.hash


group = PairingGroup()
