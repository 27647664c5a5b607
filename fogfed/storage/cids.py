"""CIDs of the blocks fogfed stores: sha2-256 over dag-pb (CIDv0/v1) or raw (CIDv1).

User-supplied CID strings are parsed with multiformats, which knows every
multibase. Blocks and links use the small ``Cid`` below instead: multiformats
validates its arguments by raising and catching exceptions, which costs about
1 ms per CID and leaves reference cycles that keep whole chunks alive until
the garbage collector runs.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from multiformats import CID

from fogfed.errors import InputError
from fogfed.storage.errors import ContentCorrupted

DAG_PB, RAW = 0x70, 0x55
_SHA256 = b"\x12\x20"  # multihash prefix: sha2-256, 32-byte digest
_MAX_CID_CHARS = 128  # a sha2-256 CID in any common base is well below this
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


@dataclass(frozen=True)
class Cid:
    version: int
    codec: int  # DAG_PB or RAW
    digest: bytes  # sha2-256

    def __bytes__(self) -> bytes:
        if self.version == 0:
            return _SHA256 + self.digest
        return bytes((1, self.codec)) + _SHA256 + self.digest

    def __str__(self) -> str:
        if self.version == 0:
            return _base58btc(bytes(self))
        return "b" + base64.b32encode(bytes(self)).decode().lower().rstrip("=")

    @property
    def key(self) -> str:
        """One name per block whatever version it is written in: CIDv0 for dag-pb, CIDv1 for raw."""
        return str(Cid(0, DAG_PB, self.digest) if self.codec == DAG_PB else Cid(1, RAW, self.digest))

    @classmethod
    def from_bytes(cls, b: bytes) -> "Cid":
        """Decode a binary CID (as in a dag-pb link); ValueError for anything but the two kinds above."""
        if len(b) == 34 and b[:2] == _SHA256:
            return cls(0, DAG_PB, bytes(b[2:]))
        if len(b) == 36 and b[0] == 1 and b[1] in (DAG_PB, RAW) and b[2:4] == _SHA256:
            return cls(1, b[1], bytes(b[4:]))
        raise ValueError(f"unsupported binary CID {bytes(b[:40]).hex()}")


def _base58btc(b: bytes) -> str:
    n, out = int.from_bytes(b, "big"), []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + "".join(reversed(out))


def make_cid(block: bytes, codec: int, version: int) -> Cid:
    """The CID of ``block``; CIDv0 only exists for dag-pb."""
    return Cid(version, codec, hashlib.sha256(block).digest())


def parse_cid(text: str) -> Cid:
    """Parse a CID string; anything but a sha2-256 dag-pb/raw CIDv0/v1 is an InputError."""
    if not isinstance(text, str):
        raise InputError(f"CID must be a string, got {type(text).__name__}")
    shown = text if len(text) <= 60 else text[:57] + "..."
    hint = "a CID looks like Qm... (46 characters) or bafy.../bafk..."
    if not text or len(text) > _MAX_CID_CHARS or text != text.strip():
        raise InputError(f"malformed CID {shown!r}", hint)
    try:
        cid = CID.decode(text)
    except Exception as exc:  # multiformats raises KeyError, IndexError, binascii.Error, ...
        raise InputError(f"malformed CID {shown!r}: {exc}", hint) from None
    if cid.codec.name not in ("dag-pb", "raw"):
        raise InputError(f"CID {shown!r} has codec {cid.codec.name}; only dag-pb and raw content is stored",
                         "pass the CID of a file")
    if cid.hashfun.name != "sha2-256" or len(cid.raw_digest) != 32:
        raise InputError(f"CID {shown!r} uses hash {cid.hashfun.name}; only sha2-256 is supported")
    return Cid.from_bytes(bytes(cid))


def check_block(cid: Cid, block: bytes) -> None:
    """Raise ContentCorrupted unless ``block`` hashes to ``cid``."""
    if hashlib.sha256(block).digest() != cid.digest:
        raise ContentCorrupted(f"block {cid} does not match its CID (it was altered or damaged)",
                               "fetch the content again from another copy")
