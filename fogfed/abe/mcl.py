"""A small ctypes binding over mcl's public C API (include/mcl/bn.h), for BLS12-381.

Why: pymcl (a maintained wheel of herumi/mcl) exposes single pairings only,
and its deserialisation checks the subgroup of every point through mcl's
process-wide ``verifyOrder`` switch. mcl's C API, which pymcl's shared object
exports in full, has what the schemes need: a product of Miller loops with
one final exponentiation (``mclBn_millerLoopVec`` + ``mclBn_finalExp``), an
explicit subgroup test (``mclBnG1_isValidOrder``) and field arithmetic for
decoding points without the implicit check.

How: the library is pymcl's own ``_pymcl*.so`` (pinned through pymcl's
version in requirements.lock), opened with ``ctypes.CDLL``. Importing pymcl
first initialises mcl for BLS12-381; this module only checks that
(curve type, limb size) and never calls ``mclBn_init`` or any other global
setter, so it is safe alongside pymcl and with threads. Values are this
module's own buffers laid out as bn.h's public structs (``mclBnFp`` = 6
limbs, ``mclBnG1`` = {x, y, z} of Fp, ``mclBnG2`` = {x, y, z} of Fp2,
``mclBnGT`` = 12 Fp, ``mclBnFr`` = 4 limbs); no pybind11 object is touched.

Encodings are mcl's (the same bytes as pymcl's ``serialize``); tests compare
every operation with pymcl's on random inputs (tests/abe/test_mcl.py).
"""

from __future__ import annotations

import ctypes
import os

import pymcl
import pymcl._pymcl as _pymcl_module

__all__ = ["CURVE_BLS12_381", "Fp", "Fp2", "Fr", "G1", "G2", "GT", "lib", "pairing", "pairing_product"]

CURVE_BLS12_381 = 5
_FP_LIMBS = 6
_FR_LIMBS = 4
FR_BYTES, FP_BYTES, G1_BYTES, G2_BYTES, GT_BYTES = 32, 48, 48, 96, 576

lib = ctypes.CDLL(_pymcl_module.__file__)
for _name in ("mclBnG1_serialize", "mclBnG2_serialize", "mclBnGT_serialize", "mclBnFr_serialize", "mclBnFp_serialize",
              "mclBnG1_deserialize", "mclBnG2_deserialize", "mclBnGT_deserialize", "mclBnFr_deserialize",
              "mclBnFp_deserialize", "mclBnFp2_deserialize"):
    getattr(lib, _name).restype = ctypes.c_size_t

if (lib.mclBn_getCurveType(), lib.mclBn_getOpUnitSize(), lib.mclBn_getFrByteSize(), lib.mclBn_getG1ByteSize()) != (
    CURVE_BLS12_381, _FP_LIMBS, FR_BYTES, G1_BYTES
):  # pragma: no cover - a pymcl built differently
    raise ImportError("pymcl's mcl library is not initialised for BLS12-381 with 384-bit Fp; fogfed needs pymcl 1.0.x")

_Size = ctypes.c_size_t
_FpT = ctypes.c_uint64 * _FP_LIMBS
_Fp2T = ctypes.c_uint64 * (2 * _FP_LIMBS)
_FrT = ctypes.c_uint64 * _FR_LIMBS
_G1T = ctypes.c_uint64 * (3 * _FP_LIMBS)
_G2T = ctypes.c_uint64 * (6 * _FP_LIMBS)
_GTT = ctypes.c_uint64 * (12 * _FP_LIMBS)
_new = object.__new__


class _Value:
    """Common to all element types: a ctypes buffer ``_v`` in bn.h's layout."""

    __slots__ = ("_v",)
    _T: type = _FrT
    _size = 0
    _prefix = ""

    def __init__(self) -> None:
        self._v = self._T()  # zero: 0 in Fr/Fp, the identity in G1/G2 (GT overrides)

    @classmethod
    def _empty(cls):
        out = _new(cls)
        out._v = cls._T()
        return out

    def serialize(self) -> bytes:
        buf = ctypes.create_string_buffer(self._size)
        n = getattr(lib, self._prefix + "_serialize")(buf, _Size(self._size), self._v)
        if n != self._size:  # pragma: no cover - mcl never fails on a valid value
            raise ValueError(f"{self._prefix}: serialisation failed")
        return buf.raw

    @classmethod
    def deserialize(cls, data: bytes):
        """mcl's own decoding (for G1/G2 it applies mcl's verifyOrder setting)."""
        out = cls._empty()
        if getattr(lib, cls._prefix + "_deserialize")(out._v, bytes(data), _Size(len(data))) != len(data):
            raise ValueError(f"{cls._prefix}: invalid encoding")
        return out

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and bool(getattr(lib, self._prefix + "_isEqual")(self._v, other._v))

    def __hash__(self) -> int:
        return hash(self.serialize())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.serialize().hex()})"


class Fr(_Value):
    """A scalar mod r."""

    __slots__ = ()
    _T, _size, _prefix = _FrT, FR_BYTES, "mclBnFr"

    @classmethod
    def from_int(cls, value: int) -> Fr:
        out = cls._empty()
        lib.mclBnFr_setLittleEndianMod(out._v, (value % pymcl.r).to_bytes(FR_BYTES, "little"), _Size(FR_BYTES))
        return out

    def __int__(self) -> int:
        return int.from_bytes(self.serialize(), "little")

    def _op(self, fn, other: Fr) -> Fr:
        out = _empty_fr()
        fn(out._v, self._v, other._v)
        return out

    def __add__(self, other: Fr) -> Fr:
        return self._op(lib.mclBnFr_add, other)

    def __sub__(self, other: Fr) -> Fr:
        return self._op(lib.mclBnFr_sub, other)

    def __mul__(self, other: Fr) -> Fr:
        return self._op(lib.mclBnFr_mul, other)

    def __neg__(self) -> Fr:
        out = _empty_fr()
        lib.mclBnFr_neg(out._v, self._v)
        return out

    def __invert__(self) -> Fr:
        if self.is_zero():
            raise ZeroDivisionError("inverse of 0 mod r")
        out = _empty_fr()
        lib.mclBnFr_inv(out._v, self._v)
        return out

    def is_zero(self) -> bool:
        return bool(lib.mclBnFr_isZero(self._v))

    def is_one(self) -> bool:
        return bool(lib.mclBnFr_isOne(self._v))


def _empty_fr() -> Fr:
    out = _new(Fr)
    out._v = _FrT()
    return out


class Fp(_Value):
    """A base-field element (used to decode and check points)."""

    __slots__ = ()
    _T, _size, _prefix = _FpT, FP_BYTES, "mclBnFp"


class Fp2(_Value):
    __slots__ = ()
    _T, _size, _prefix = _Fp2T, 2 * FP_BYTES, "mclBnFp2"


class _Point(_Value):
    """G1 or G2: additive notation, ``*`` by an Fr."""

    __slots__ = ()

    def __add__(self, other):
        out = self._empty()
        self._add(out._v, self._v, other._v)
        return out

    def __sub__(self, other):
        out = self._empty()
        self._sub(out._v, self._v, other._v)
        return out

    def __neg__(self):
        out = self._empty()
        self._neg(out._v, self._v)
        return out

    def __mul__(self, scalar: Fr):
        out = self._empty()
        self._mul(out._v, self._v, scalar._v)
        return out

    def is_zero(self) -> bool:
        return bool(self._is_zero(self._v))

    def is_valid_order(self) -> bool:
        """In the order-r subgroup (mcl's explicit test, independent of verifyOrder)."""
        return bool(self._is_valid_order(self._v))

    @classmethod
    def hash(cls, label: bytes):
        out = cls._empty()
        if cls._hash(out._v, bytes(label), _Size(len(label))) != 0:  # pragma: no cover
            raise ValueError("hash to curve failed")
        return out


class G1(_Point):
    __slots__ = ()
    _T, _size, _prefix = _G1T, G1_BYTES, "mclBnG1"
    _add, _sub, _neg, _mul = lib.mclBnG1_add, lib.mclBnG1_sub, lib.mclBnG1_neg, lib.mclBnG1_mul
    _is_zero, _is_valid_order, _hash = lib.mclBnG1_isZero, lib.mclBnG1_isValidOrder, lib.mclBnG1_hashAndMapTo


class G2(_Point):
    __slots__ = ()
    _T, _size, _prefix = _G2T, G2_BYTES, "mclBnG2"
    _add, _sub, _neg, _mul = lib.mclBnG2_add, lib.mclBnG2_sub, lib.mclBnG2_neg, lib.mclBnG2_mul
    _is_zero, _is_valid_order, _hash = lib.mclBnG2_isZero, lib.mclBnG2_isValidOrder, lib.mclBnG2_hashAndMapTo


class GT(_Value):
    """The target group, multiplicative; ``GT()`` is 1."""

    __slots__ = ()
    _T, _size, _prefix = _GTT, GT_BYTES, "mclBnGT"

    def __init__(self) -> None:
        self._v = _GTT()
        lib.mclBnGT_setInt(self._v, ctypes.c_int64(1))

    def __mul__(self, other: GT) -> GT:
        out = self._empty()
        lib.mclBnGT_mul(out._v, self._v, other._v)
        return out

    def __truediv__(self, other: GT) -> GT:
        out = self._empty()
        lib.mclBnGT_div(out._v, self._v, other._v)
        return out

    def __pow__(self, exponent: Fr) -> GT:
        """Exponentiation by GLV; valid for elements of the order-r subgroup (all values schemes make)."""
        out = self._empty()
        lib.mclBnGT_pow(out._v, self._v, exponent._v)
        return out

    def is_one(self) -> bool:
        return bool(lib.mclBnGT_isOne(self._v))

    def is_zero(self) -> bool:
        return bool(lib.mclBnGT_isZero(self._v))


def pairing(a: G1, b: G2) -> GT:
    """e(a, b): one Miller loop and one final exponentiation."""
    out = GT._empty()
    lib.mclBn_pairing(out._v, a._v, b._v)
    return out


def pairing_product(pairs: list[tuple[G1, G2]]) -> GT:
    """prod e(a_i, b_i) with one Miller loop over all pairs and one final exponentiation."""
    n = len(pairs)
    if n == 0:
        return GT()
    g1s = (_G1T * n)()
    g2s = (_G2T * n)()
    for i, (a, b) in enumerate(pairs):
        g1s[i] = a._v
        g2s[i] = b._v
    f = GT._empty()
    lib.mclBn_millerLoopVec(f._v, g1s, g2s, _Size(n))
    out = GT._empty()
    lib.mclBn_finalExp(out._v, f._v)
    return out


# -- decoding points without mcl's implicit subgroup test -------------------

_B_G1 = Fp()
lib.mclBnFp_setInt(_B_G1._v, ctypes.c_int64(4))
_B_G2 = Fp2()  # 4 (1 + u)
lib.mclBnFp_setInt(ctypes.byref(_B_G2._v), ctypes.c_int64(4))
lib.mclBnFp_setInt(ctypes.byref(_B_G2._v, 8 * _FP_LIMBS), ctypes.c_int64(4))
_ONE_FP = Fp()
lib.mclBnFp_setInt(_ONE_FP._v, ctypes.c_int64(1))


def _fp_from(data: bytes, kind=Fp):
    """A canonical little-endian field element (each Fp < p), or None."""
    out = kind._empty()
    if getattr(lib, kind._prefix + "_deserialize")(out._v, data, _Size(len(data))) != len(data):
        return None
    return out


def _fp_ops(kind):
    if kind is Fp:
        return lib.mclBnFp_sqr, lib.mclBnFp_mul, lib.mclBnFp_add, lib.mclBnFp_isEqual, lib.mclBnFp_squareRoot, _B_G1
    return lib.mclBnFp2_sqr, lib.mclBnFp2_mul, lib.mclBnFp2_add, lib.mclBnFp2_isEqual, lib.mclBnFp2_squareRoot, _B_G2


def _rhs(x, kind):
    """x^3 + b on the curve of G1 (Fp) or G2 (Fp2)."""
    sqr, mul, add, _, _, b = _fp_ops(kind)
    t = kind._empty()
    sqr(t._v, x._v)
    mul(t._v, t._v, x._v)
    add(t._v, t._v, b._v)
    return t


def _point_from_xy(cls, x, y):
    """The Jacobian point (x, y, 1) in bn.h's struct layout."""
    out = cls._empty()
    width = ctypes.sizeof(x._v)
    ctypes.memmove(out._v, x._v, width)
    ctypes.memmove(ctypes.byref(out._v, width), y._v, width)
    one = _ONE_FP._v
    ctypes.memmove(ctypes.byref(out._v, 2 * width), one, FP_BYTES)  # z = 1 (for Fp2: 1 + 0u)
    return out


def decode_on_curve(cls, data: bytes):
    """A compressed G1/G2 point: on the curve, canonical, not the identity; the subgroup is NOT checked.

    Returns None when ``data`` is not such an encoding. The point is rebuilt
    from x and a square root of x^3 + b; of y and -y the one whose mcl
    encoding equals ``data`` is kept, which also rejects non-canonical bytes.
    """
    kind = Fp if cls is G1 else Fp2
    raw = bytearray(data)
    if len(raw) != cls._size:
        return None
    raw[-1] &= 0x7F  # mcl's sign flag of y
    x = _fp_from(bytes(raw), kind)
    if x is None:
        return None
    _, _, _, _, sqrt, _ = _fp_ops(kind)
    y = kind._empty()
    if sqrt(y._v, _rhs(x, kind)._v) != 0:  # mcl: 0 if a square root exists
        return None  # x^3 + b is not a square: x is not on the curve
    point = _point_from_xy(cls, x, y)
    if point.serialize() == data:
        return point
    point = -point
    return point if point.serialize() == data else None


def decode_affine_g1(data: bytes) -> G1 | None:
    """An uncompressed G1 point x || y (48-byte little-endian each): on the curve, canonical; no subgroup test."""
    if len(data) != 2 * FP_BYTES:
        return None
    x, y = _fp_from(data[:FP_BYTES]), _fp_from(data[FP_BYTES:])
    if x is None or y is None:
        return None
    y2 = Fp._empty()
    lib.mclBnFp_sqr(y2._v, y._v)
    if not lib.mclBnFp_isEqual(y2._v, _rhs(x, Fp)._v):
        return None
    return _point_from_xy(G1, x, y)


def encode_affine_g1(points: list[G1]) -> list[bytes]:
    """Uncompressed encodings x || y of non-identity G1 points (one batched inversion)."""
    n = len(points)
    if n == 0:
        return []
    src = (_G1T * n)()
    for i, p in enumerate(points):
        src[i] = p._v
    dst = (_G1T * n)()
    lib.mclBnG1_normalizeVec(dst, src, _Size(n))
    out = []
    buf = ctypes.create_string_buffer(2 * FP_BYTES)
    for i in range(n):
        lib.mclBnFp_serialize(buf, _Size(FP_BYTES), ctypes.byref(dst, i * ctypes.sizeof(_G1T)))
        lib.mclBnFp_serialize(ctypes.byref(buf, FP_BYTES), _Size(FP_BYTES),
                              ctypes.byref(dst, i * ctypes.sizeof(_G1T) + FP_BYTES * 1))
        out.append(buf.raw)
    return out


def random_fr() -> Fr:
    """A uniform scalar from the OS (64 bytes reduced mod r)."""
    return Fr.from_int(int.from_bytes(os.urandom(64), "little"))


def from_pymcl(value):
    """Convert a pymcl element to this module's type (tests and the generators)."""
    kind = {pymcl.G1: G1, pymcl.G2: G2, pymcl.GT: GT, pymcl.Fr: Fr}[type(value)]
    return kind.deserialize(value.serialize())


_FP_SIZE = _Size(FP_BYTES)


def combine_affine_g1(encodings: list[bytes], coefficients: list[Fr | None]) -> G1 | None:
    """sum(c_i * P_i) over uncompressed rows x || y (coefficient None means 1); None if a row is not canonical.

    Each row is read as two canonical Fp elements into a Jacobian point
    (x, y, 1) without any curve or subgroup test: the caller checks the
    combined point (``is_in_g1``), which is all that enters a pairing.
    """
    acc = G1._empty()
    row = _G1T()
    ctypes.memmove(ctypes.byref(row, 2 * FP_BYTES), _ONE_FP._v, FP_BYTES)
    y_slot = ctypes.byref(row, FP_BYTES)
    tmp = _G1T()
    for data, c in zip(encodings, coefficients):
        if len(data) != 2 * FP_BYTES or lib.mclBnFp_deserialize(row, data[:FP_BYTES], _FP_SIZE) != FP_BYTES or (
            lib.mclBnFp_deserialize(y_slot, data[FP_BYTES:], _FP_SIZE) != FP_BYTES
        ):
            return None
        if c is None:
            lib.mclBnG1_add(acc._v, acc._v, row)
        else:
            lib.mclBnG1_mul(tmp, row, c._v)
            lib.mclBnG1_add(acc._v, acc._v, tmp)
    return acc


def is_on_curve(point: G1 | G2) -> bool:
    """Not the identity and (after normalising) y^2 = x^3 + b: the test isValidOrder assumes."""
    if point.is_zero():
        return False
    kind = Fp if isinstance(point, G1) else Fp2
    sqr, _, _, equal, _, _ = _fp_ops(kind)
    norm = type(point)._empty()
    getattr(lib, point._prefix + "_normalize")(norm._v, point._v)
    width = ctypes.sizeof(kind._T)
    x, y = kind._empty(), kind._empty()
    ctypes.memmove(x._v, norm._v, width)
    ctypes.memmove(y._v, ctypes.byref(norm._v, width), width)
    y2 = kind._empty()
    sqr(y2._v, y._v)
    return bool(equal(y2._v, _rhs(x, kind)._v))


def is_in_group(point: G1 | G2) -> bool:
    """On the curve, not the identity, and in the order-r subgroup."""
    return is_on_curve(point) and point.is_valid_order()
