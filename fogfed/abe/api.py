"""The safe high-level API: FABEO by default (FAME, BSW07 on request), OS randomness, hybrid encryption.

Hybrid encryption: the ABE scheme encapsulates a GT element K under the
policy; HKDF-SHA256 turns K's encoding into an AES-256 key and a 96-bit nonce,
with ``info`` = label | SHA-256(ciphertext header), so the derived key is bound
to the policy, the ABE components and the system fingerprint; AES-256-GCM then
encrypts the payload with the caller's ``aad``. The key is fresh for every
encryption, so the derived nonce never repeats under one key.
"""

from __future__ import annotations

import hashlib
from typing import TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fogfed.abe.errors import DecryptionError, KeyMismatchError, PolicyNotSatisfied
from fogfed.abe.group import GT, group
from fogfed.abe.keys import (
    MAX_BODY,
    Ciphertext,
    KemCiphertext,
    MasterKey,
    PublicKey,
    SecretKey,
    _Encoded,
    check_same_system,
    scheme_named,
)
from fogfed.abe.policy import Policy, parse_policy
from fogfed.errors import InputError

__all__ = ["DEFAULT_SCHEME", "MAX_PAYLOAD", "decrypt", "encrypt", "kem_decrypt", "kem_encrypt", "keygen", "setup"]

DEFAULT_SCHEME = "fabeo"  # why: docs/abe.md, "Choosing the default scheme"
MAX_PAYLOAD = MAX_BODY
KEY_SIZE = 32
_NONCE_SIZE = 12
_KEM_LABEL = b"fogfed/abe/v1/kem"
_HYBRID_LABEL = b"fogfed/abe/v1/hybrid"

T = TypeVar("T", bound=_Encoded)


def _coerce(cls: type[T], value: object, name: str) -> T:
    """Accept the object or its bytes; anything else is an InputError."""
    if isinstance(value, cls):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return cls.from_bytes(bytes(value))
    raise InputError(
        f"{name} must be an abe.{cls.__name__} or its bytes, got {type(value).__name__}",
        f"load it with abe.{cls.__name__}.from_bytes(...)",
    )


def _bytes(value: object, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InputError(f"{name} must be bytes, got {type(value).__name__}")
    return bytes(value)


def _derive(k: GT, header: bytes, label: bytes, length: int) -> bytes:
    """HKDF-SHA256 over the encoded GT element, bound to the ciphertext header."""
    info = label + hashlib.sha256(header).digest()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(group.encode(k))


def setup(scheme: str = DEFAULT_SCHEME) -> tuple[PublicKey, MasterKey]:
    """Alg. 1 Setup: a new ABE system; returns (public key, master key). Keep the master key secret."""
    s = scheme_named(scheme)
    pk_value, msk_value = s.setup()
    pk = PublicKey(scheme, pk_value)
    return pk, MasterKey(scheme, msk_value, pk.fingerprint)


def keygen(pk: PublicKey, msk: MasterKey, attributes: list[str]) -> SecretKey:
    """A user key for an attribute set (normalised to lower case, de-duplicated)."""
    pk = _coerce(PublicKey, pk, "public key")
    msk = _coerce(MasterKey, msk, "master key")
    try:
        check_same_system(pk, msk)
    except KeyMismatchError as e:
        raise InputError(e.message, e.hint) from None
    value = scheme_named(pk.scheme).keygen(msk.value, attributes)
    return SecretKey(pk.scheme, value, pk.fingerprint)


def _encapsulate(pk: PublicKey, policy: str | Policy) -> tuple[GT, object]:
    pk = _coerce(PublicKey, pk, "public key")
    return scheme_named(pk.scheme).encrypt(pk.value, parse_policy(policy))


def _decapsulate(pk: PublicKey, sk: SecretKey, ct: KemCiphertext) -> GT:
    pk = _coerce(PublicKey, pk, "public key")
    sk = _coerce(SecretKey, sk, "secret key")
    check_same_system(pk, sk, ct)
    k = scheme_named(pk.scheme).decrypt(sk.value, ct.value)
    if k is None:
        raise PolicyNotSatisfied(
            f"the key's attributes {list(sk.attributes)} do not satisfy the policy '{ct.policy}'",
            "ask the trusted authority for a key with the needed attributes",
        )
    return k


def kem_encrypt(pk: PublicKey, policy: str | Policy) -> tuple[bytes, bytes]:
    """Encapsulate a fresh 32-byte key under ``policy``; returns (key, encapsulation bytes)."""
    pk = _coerce(PublicKey, pk, "public key")
    k, value = _encapsulate(pk, policy)
    encapsulation = KemCiphertext(pk.scheme, value, pk.fingerprint).to_bytes()
    return _derive(k, encapsulation, _KEM_LABEL, KEY_SIZE), encapsulation


def kem_decrypt(pk: PublicKey, sk: SecretKey, encapsulation: bytes) -> bytes:
    """Recover the 32-byte key from ``kem_encrypt``'s encapsulation.

    Raises PolicyNotSatisfied if the key's attributes do not satisfy the
    policy. A modified encapsulation yields a different key (or a
    MalformedError), so use the key only with authenticated encryption.
    """
    ct = _coerce(KemCiphertext, encapsulation, "encapsulation")
    k = _decapsulate(pk, sk, ct)
    return _derive(k, ct.to_bytes(), _KEM_LABEL, KEY_SIZE)


def encrypt(pk: PublicKey, policy: str | Policy, payload: bytes, aad: bytes = b"") -> bytes:
    """Encrypt a small payload (at most 1 MiB; e.g. a file key) under ``policy``; returns the ciphertext bytes."""
    pk = _coerce(PublicKey, pk, "public key")
    payload = _bytes(payload, "payload")
    aad = _bytes(aad, "associated data")
    if len(payload) > MAX_PAYLOAD:
        raise InputError(
            f"payload is {len(payload)} bytes, more than {MAX_PAYLOAD}",
            "encrypt files with fogfed.abe.stream and protect only their key with abe.encrypt",
        )
    k, value = _encapsulate(pk, policy)
    ct = Ciphertext(pk.scheme, value, pk.fingerprint)
    okm = _derive(k, ct.header(), _HYBRID_LABEL, KEY_SIZE + _NONCE_SIZE)
    ct.body = AESGCM(okm[:KEY_SIZE]).encrypt(okm[KEY_SIZE:], payload, aad)
    return ct.to_bytes()


def decrypt(pk: PublicKey, sk: SecretKey, ciphertext: bytes, aad: bytes = b"") -> bytes:
    """Decrypt ``encrypt``'s output.

    Raises PolicyNotSatisfied when the key's attributes do not satisfy the
    policy, DecryptionError when the ciphertext was modified or the aad
    differs, MalformedError when the bytes are not a valid ciphertext, and
    KeyMismatchError (a DecryptionError) for keys of another system.
    """
    ct = _coerce(Ciphertext, ciphertext, "ciphertext")
    aad = _bytes(aad, "associated data")
    k = _decapsulate(pk, sk, ct)
    okm = _derive(k, ct.header(), _HYBRID_LABEL, KEY_SIZE + _NONCE_SIZE)
    try:
        return AESGCM(okm[:KEY_SIZE]).decrypt(okm[KEY_SIZE:], ct.body, aad)
    except InvalidTag:
        raise DecryptionError(
            "ciphertext failed authentication: it was modified, the associated data differs, "
            "or the key does not belong to this ciphertext",
            "do not use this copy; fetch the ciphertext again",
        ) from None
