"""Scheme-independent key and ciphertext objects with their versioned binary formats.

Layouts (after the common header ``FFAB | version | kind | scheme``, see
encoding.py and docs/abe.md):

- PublicKey:     scheme public key fields
- MasterKey:     system fingerprint (16) | scheme master key fields
- SecretKey:     system fingerprint (16) | scheme secret key fields
- KemCiphertext: system fingerprint (16) | scheme ciphertext fields (policy first)
- Ciphertext:    system fingerprint (16) | scheme ciphertext fields | AEAD blob (4-byte length)

The system fingerprint is SHA-256 over the serialised public key, cut to 16
bytes; it lets a key or ciphertext of another system (another setup) fail
with a clear message instead of a failed tag.
"""

from __future__ import annotations

import hashlib
from functools import cache

from fogfed.abe.bsw07 import BSW07, BswCiphertext, BswMasterKey, BswPublicKey, BswSecretKey
from fogfed.abe.encoding import FINGERPRINT_SIZE, SCHEMES, Reader, Writer, read_header
from fogfed.abe.errors import KeyMismatchError
from fogfed.abe.fabeo import FABEO, FabeoCiphertext, FabeoMasterKey, FabeoPublicKey, FabeoSecretKey
from fogfed.abe.fame import FAME, FameCiphertext, FameMasterKey, FamePublicKey, FameSecretKey
from fogfed.abe.group import group
from fogfed.abe.policy import Policy
from fogfed.errors import InputError

__all__ = ["Ciphertext", "KemCiphertext", "MasterKey", "PublicKey", "SecretKey", "scheme_named"]

MAX_BODY = 1 << 20

# scheme name -> (scheme class, public key, master key, secret key, ciphertext)
_CODECS = {
    "fame": (FAME, FamePublicKey, FameMasterKey, FameSecretKey, FameCiphertext),
    "bsw07": (BSW07, BswPublicKey, BswMasterKey, BswSecretKey, BswCiphertext),
    "fabeo": (FABEO, FabeoPublicKey, FabeoMasterKey, FabeoSecretKey, FabeoCiphertext),
}


@cache
def scheme_named(name: str) -> FAME | BSW07 | FABEO:
    """The scheme instance on the shared group, by name ("fabeo", "fame" or "bsw07")."""
    if name not in _CODECS:
        raise InputError(f"unknown ABE scheme {name!r}", f"choose one of: {', '.join(SCHEMES)}")
    return _CODECS[name][0](group)


class _Encoded:
    """Common to the five objects: scheme name, scheme-level value, fingerprint, bytes."""

    kind = ""
    codec = 0  # index into _CODECS[scheme]
    fingerprinted = True

    def __init__(self, scheme: str, value, fingerprint: bytes | None = None) -> None:
        self.scheme = scheme
        self.value = value
        self._fingerprint = fingerprint

    @property
    def fingerprint(self) -> bytes:
        """16-byte id of the ABE system (setup) this object belongs to."""
        assert self._fingerprint is not None
        return self._fingerprint

    def _write(self, w: Writer) -> None:
        if self.fingerprinted:
            w.raw(self.fingerprint)
        self.value.write(w)

    def to_bytes(self) -> bytes:
        """The versioned binary encoding; ``from_bytes`` reads it back and validates it."""
        w = Writer(self.kind, self.scheme)
        self._write(w)
        return w.bytes()

    @classmethod
    def _read(cls, data: bytes) -> tuple[str, Reader, bytes | None, object]:
        scheme, r = read_header(data, cls.kind)
        fingerprint = r.take(FINGERPRINT_SIZE, "system fingerprint") if cls.fingerprinted else None
        value = _CODECS[scheme][cls.codec].read(r)
        return scheme, r, fingerprint, value

    @classmethod
    def from_bytes(cls, data: bytes):
        """Parse and validate; raises MalformedError naming the object and field."""
        scheme, r, fingerprint, value = cls._read(data)
        r.done()
        return cls(scheme, value, fingerprint)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.to_bytes() == self.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scheme} system={self.fingerprint.hex()}>"


class PublicKey(_Encoded):
    """Public parameters of one ABE system (safe to publish)."""

    kind = "public key"
    codec = 1
    fingerprinted = False

    def __init__(self, scheme: str, value, fingerprint: bytes | None = None) -> None:
        super().__init__(scheme, value)
        self._fingerprint = hashlib.sha256(b"fogfed/abe/v1/system" + self.to_bytes()).digest()[:FINGERPRINT_SIZE]


class MasterKey(_Encoded):
    """The master secret of one ABE system: only the TAS holds it, and only encrypted at rest."""

    kind = "master key"
    codec = 2

    def __repr__(self) -> str:
        return f"<MasterKey {self.scheme} system={self.fingerprint.hex()} (secret)>"


class SecretKey(_Encoded):
    """A user's decryption key, bound to its attribute set (``attributes``)."""

    kind = "secret key"
    codec = 3

    @property
    def attributes(self) -> tuple[str, ...]:
        """The key's attributes, normalised and sorted."""
        return self.value.attributes

    def __repr__(self) -> str:
        return f"<SecretKey {self.scheme} system={self.fingerprint.hex()} attributes={list(self.attributes)}>"


class KemCiphertext(_Encoded):
    """The ABE encapsulation of a key under a policy (no payload)."""

    kind = "KEM ciphertext"
    codec = 4

    @property
    def policy(self) -> Policy:
        return self.value.policy


class Ciphertext(KemCiphertext):
    """A hybrid ciphertext: ABE encapsulation plus the AES-256-GCM encrypted payload (``body``)."""

    kind = "ciphertext"

    def __init__(self, scheme: str, value, fingerprint: bytes | None = None, body: bytes = b"") -> None:
        super().__init__(scheme, value, fingerprint)
        self.body = body

    def header(self) -> bytes:
        """Everything but the AEAD blob: what the payload key is bound to."""
        w = Writer(self.kind, self.scheme)
        super()._write(w)
        return w.bytes()

    def _write(self, w: Writer) -> None:
        super()._write(w)
        w.blob(self.body)

    @classmethod
    def from_bytes(cls, data: bytes) -> Ciphertext:
        scheme, r, fingerprint, value = cls._read(data)
        body = r.blob("payload", MAX_BODY + 16)
        r.done()
        return cls(scheme, value, fingerprint, body)


def check_same_system(pk: PublicKey, *others: _Encoded) -> None:
    """Raise KeyMismatchError unless every object belongs to pk's scheme and setup."""
    for other in others:
        if other.scheme != pk.scheme:
            raise KeyMismatchError(
                f"{other.kind} is for scheme {other.scheme}, the public key for {pk.scheme}",
                "use keys and ciphertexts of one ABE system",
            )
        if other.fingerprint != pk.fingerprint:
            raise KeyMismatchError(
                f"{other.kind} belongs to another ABE system ({other.fingerprint.hex()}) "
                f"than the public key ({pk.fingerprint.hex()})",
                "use the public key and keys issued by the same trusted authority setup",
            )
