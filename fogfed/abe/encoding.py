"""Binary encoding of ABE objects: header, fixed-size elements, length-prefixed fields.

Every object starts with ``b"FFAB" | version (1 byte) | kind (1 byte) |
scheme (1 byte)``. Group elements follow at their fixed sizes; texts carry a
2-byte big-endian length, lists a 2-byte count, blobs a 4-byte length.
Readers check every length and count against what is left, decode elements
through the group (which validates them), and reject trailing bytes; each
failure is a MalformedError naming the object and the field.
"""

from __future__ import annotations

import struct

from fogfed.abe.errors import MalformedError, PolicySyntaxError
from fogfed.abe.group import G1_SIZE, G2_SIZE, GT_SIZE, SCALAR_SIZE, group
from fogfed.abe.policy import (
    MAX_ATTRIBUTE_LENGTH,
    MAX_KEY_ATTRIBUTES,
    MAX_TEXT,
    Policy,
    normalise_attribute,
    parse_policy,
)
from fogfed.errors import InputError

__all__ = ["KINDS", "MAGIC", "SCHEMES", "VERSION", "Reader", "Writer", "read_attributes", "read_header", "read_policy"]

MAGIC = b"FFAB"
VERSION = 1
KINDS = {"public key": 1, "master key": 2, "secret key": 3, "ciphertext": 4, "KEM ciphertext": 5}
SCHEMES = {"fame": 1, "bsw07": 2, "fabeo": 3}
FINGERPRINT_SIZE = 16
_HEADER = struct.Struct(">4sBBB")


class Writer:
    """Appends fields to a bytearray."""

    def __init__(self, kind: str, scheme: str) -> None:
        self.out = bytearray(_HEADER.pack(MAGIC, VERSION, KINDS[kind], SCHEMES[scheme]))

    def raw(self, data: bytes) -> None:
        self.out += data

    def element(self, *elements) -> None:
        for e in elements:
            self.out += group.encode(e)

    def text(self, value: str) -> None:
        data = value.encode("ascii")
        self.out += struct.pack(">H", len(data)) + data

    def count(self, n: int) -> None:
        self.out += struct.pack(">H", n)

    def blob(self, data: bytes) -> None:
        self.out += struct.pack(">I", len(data)) + data

    def bytes(self) -> bytes:
        return bytes(self.out)


def read_header(data: bytes, kind: str) -> tuple[str, Reader]:
    """Check magic, version and kind; return the scheme name and a reader after the header."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MalformedError(f"ABE {kind} must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise MalformedError(f"ABE {kind} is truncated: {len(data)} bytes, shorter than the {_HEADER.size}-byte header")
    magic, version, kind_id, scheme_id = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise MalformedError(
            f"not a fogfed ABE {kind}: magic is {magic!r}, expected {MAGIC!r}",
            "check that you passed the right file or field",
        )
    if version != VERSION:
        raise MalformedError(
            f"ABE {kind}: unsupported format version {version} (this fogfed reads version {VERSION})",
            "upgrade fogfed, or the data is corrupt",
        )
    if kind_id != KINDS[kind]:
        found = next((k for k, v in KINDS.items() if v == kind_id), f"unknown kind {kind_id}")
        raise MalformedError(f"expected an ABE {kind}, got a {found}", "check which object you passed")
    scheme = next((s for s, v in SCHEMES.items() if v == scheme_id), None)
    if scheme is None:
        raise MalformedError(f"ABE {kind}: unknown scheme id {scheme_id}", f"known schemes: {', '.join(SCHEMES)}")
    return scheme, Reader(data, _HEADER.size, f"{scheme.upper()} {kind}")


class Reader:
    """Reads fields in order; every problem is a MalformedError naming ``what`` and the field."""

    def __init__(self, data: bytes, offset: int, what: str) -> None:
        self.data = data
        self.pos = offset
        self.what = what

    def take(self, n: int, field: str) -> bytes:
        if self.pos + n > len(self.data):
            raise MalformedError(
                f"{self.what} is truncated in field {field}: needs {n} bytes at offset {self.pos}, "
                f"only {len(self.data) - self.pos} left",
                "the data is incomplete; fetch it again",
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def g1(self, field: str):
        return group.decode_g1(self.take(G1_SIZE, field), f"{self.what} field {field}")

    def g2(self, field: str):
        return group.decode_g2(self.take(G2_SIZE, field), f"{self.what} field {field}")

    def gt(self, field: str):
        return group.decode_gt(self.take(GT_SIZE, field), f"{self.what} field {field}")

    def scalar(self, field: str):
        return group.decode_scalar(self.take(SCALAR_SIZE, field), f"{self.what} field {field}")

    def text(self, field: str, limit: int) -> str:
        (n,) = struct.unpack(">H", self.take(2, f"{field} length"))
        if n > limit:
            raise MalformedError(f"{self.what} field {field} is {n} bytes, more than the limit {limit}")
        raw = self.take(n, field)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise MalformedError(f"{self.what} field {field} is not ASCII text") from None

    def count(self, field: str, limit: int) -> int:
        (n,) = struct.unpack(">H", self.take(2, f"{field} count"))
        if n > limit:
            raise MalformedError(f"{self.what} field {field} has {n} entries, more than the limit {limit}")
        return n

    def blob(self, field: str, limit: int) -> bytes:
        (n,) = struct.unpack(">I", self.take(4, f"{field} length"))
        if n > limit:
            raise MalformedError(f"{self.what} field {field} is {n} bytes, more than the limit {limit}")
        return self.take(n, field)

    def done(self) -> None:
        if self.pos != len(self.data):
            raise MalformedError(
                f"{self.what} has {len(self.data) - self.pos} unexpected trailing bytes after offset {self.pos}",
                "the data is corrupt or was extended",
            )


def read_policy(r: Reader, field: str) -> Policy:
    """A policy field: must parse and be in canonical form (one encoding per policy)."""
    text = r.text(field, MAX_TEXT)
    try:
        policy = parse_policy(text)
    except PolicySyntaxError as e:
        raise MalformedError(f"{r.what} field {field} is not a valid policy: {e.reason} at position {e.position}") from None
    if str(policy) != text:
        raise MalformedError(f"{r.what} field {field} is not in canonical form", "the object is corrupt or crafted")
    return policy


def read_attributes(r: Reader, field: str, read_components) -> dict:
    """A list of (attribute, components) entries, attributes normalised and strictly increasing."""
    n = r.count(field, MAX_KEY_ATTRIBUTES)
    if n == 0:
        raise MalformedError(f"{r.what} field {field} is empty: a key needs at least one attribute")
    out: dict = {}
    previous = ""
    for i in range(n):
        name = r.text(f"{field}[{i}] name", MAX_ATTRIBUTE_LENGTH)
        try:
            ok = normalise_attribute(name) == name
        except InputError:
            ok = False
        if not ok or name <= previous:
            raise MalformedError(
                f"{r.what} field {field}[{i}] name {name!r} is not a normalised attribute in sorted order",
                "the key is corrupt or crafted",
            )
        previous = name
        out[name] = read_components(f"{field}[{i}]")
    return out
