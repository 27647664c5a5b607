"""Sealed boxes: encrypt a secret to a recipient's X25519 public key.

Used by the TAS to deliver a node's ABE secret key (paper Alg. 3, FNSK) so
that it never travels or rests unencrypted. Layout, version 1::

    version(1) | flags(1) | recipient_pub(32) | ephemeral_pub(32)
    | [sender address(20) if signed] | AES-256-GCM ciphertext + tag
    | [EIP-191 signature(65) if signed]

Key and nonce come from HKDF-SHA256 over the ephemeral-static X25519 secret,
with both public keys in the info; a fresh ephemeral key per box makes the
derived nonce safe. Everything before the ciphertext (and the caller's aad) is
GCM associated data, so flipping a flag or swapping the sender breaks the tag.
The optional signature by the sender's Ethereum account covers the whole box,
the recipient and the aad, so a recipient can insist the box came from the TAS
address recorded on chain.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account.signers.local import LocalAccount
from eth_utils import is_hex_address, to_checksum_address

from fogfed.errors import InputError
from fogfed.keys.identity import NodeIdentity, x25519_public_bytes
from fogfed.keys.signing import SIGNATURE_BYTES as _SIG_LEN, recover_signer, sign

VERSION = 1
FLAG_SIGNED = 0x01
_DOMAIN = b"fogfed-seal-v1"
_TAG_LEN = 16


class SealError(InputError):
    """A sealed box could not be opened; ``reason`` says why in one word."""

    def __init__(self, message: str, hint: str | None = None, *, reason: str) -> None:
        super().__init__(message, hint)
        self.reason = reason


def _keys(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> tuple[bytes, bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=44, salt=None,
               info=_DOMAIN + eph_pub + recipient_pub).derive(shared)
    return okm[:32], okm[32:]


def _aad(header: bytes, aad: bytes) -> bytes:
    return _DOMAIN + len(header).to_bytes(2, "big") + header + aad


def _signed_digest(body: bytes, aad: bytes) -> bytes:
    return hashlib.sha256(_DOMAIN + b" sender\x00" + body + hashlib.sha256(aad).digest()).digest()


def seal(recipient_pub: bytes, plaintext: bytes, *, aad: bytes = b"",
         sender: LocalAccount | None = None) -> bytes:
    """Encrypt ``plaintext`` so only the holder of ``recipient_pub``'s private key can read it.

    With ``sender``, the box is also signed by that Ethereum account.
    """
    if not isinstance(recipient_pub, (bytes, bytearray)) or len(recipient_pub) != 32:
        raise InputError("recipient public key must be 32 bytes (an X25519 key)")
    if not isinstance(plaintext, (bytes, bytearray)) or not isinstance(aad, (bytes, bytearray)):
        raise InputError("plaintext and aad must be bytes")
    recipient_pub = bytes(recipient_pub)
    eph = X25519PrivateKey.generate()
    eph_pub = x25519_public_bytes(eph)
    try:
        shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient_pub))
    except ValueError:
        raise InputError("recipient public key is a low-order point, not a usable X25519 key") from None
    key, nonce = _keys(shared, eph_pub, recipient_pub)
    header = bytes([VERSION, FLAG_SIGNED if sender else 0]) + recipient_pub + eph_pub
    if sender is not None:
        header += bytes.fromhex(sender.address[2:])
    body = header + AESGCM(key).encrypt(nonce, bytes(plaintext), _aad(header, bytes(aad)))
    if sender is None:
        return body
    return body + sign(sender, _signed_digest(body, bytes(aad)))


def open_sealed(recipient: NodeIdentity | X25519PrivateKey, blob: bytes, *, aad: bytes = b"",
                expected_sender: str | None = None) -> bytes:
    """Decrypt a sealed box; with ``expected_sender`` it must be signed by that address.

    Raises SealError with ``reason`` one of: malformed, wrong_recipient,
    tampered, unsigned, wrong_sender.
    """
    private = recipient.enc_private if isinstance(recipient, NodeIdentity) else recipient
    if not isinstance(private, X25519PrivateKey):
        raise InputError("open_sealed needs a NodeIdentity or an X25519 private key")
    if expected_sender is not None and not is_hex_address(expected_sender):
        raise InputError(f"expected sender {expected_sender!r} is not an Ethereum address")
    if not isinstance(blob, (bytes, bytearray)) or not isinstance(aad, (bytes, bytearray)):
        raise SealError("sealed box and aad must be bytes", reason="malformed")
    blob, aad = bytes(blob), bytes(aad)
    if len(blob) < 2 + 64 + _TAG_LEN:
        raise SealError(f"sealed box is too short ({len(blob)} bytes)", reason="malformed")
    version, flags = blob[0], blob[1]
    if version != VERSION:
        raise SealError(f"sealed box has unsupported version {version}",
                        f"this fogfed reads version {VERSION}", reason="malformed")
    if flags & ~FLAG_SIGNED:
        raise SealError(f"sealed box has unknown flags 0x{flags:02x}", reason="malformed")
    signed = bool(flags & FLAG_SIGNED)
    header_len = 66 + (20 if signed else 0)
    if len(blob) < header_len + _TAG_LEN + (_SIG_LEN if signed else 0):
        raise SealError(f"sealed box is too short ({len(blob)} bytes)", reason="malformed")
    recipient_pub, eph_pub = blob[2:34], blob[34:66]
    mine = x25519_public_bytes(private)
    if recipient_pub != mine:
        raise SealError(f"sealed box is for key {recipient_pub[:8].hex()}..., not this key "
                        f"{mine[:8].hex()}...", "ask the sender to seal it to your enc_public_key",
                        reason="wrong_recipient")
    header = blob[:header_len]
    body = blob[:-_SIG_LEN] if signed else blob
    sender = None
    if signed:
        sender = to_checksum_address(blob[66:86])
        if recover_signer(_signed_digest(body, aad), blob[-_SIG_LEN:]) != sender:
            raise SealError("sealed box signature does not match its sender (tampered)", reason="tampered")
    if expected_sender is not None:
        if sender is None:
            raise SealError(f"sealed box is not signed; expected a signature by {expected_sender}",
                            reason="unsigned")
        if sender != to_checksum_address(expected_sender):
            raise SealError(f"sealed box was signed by {sender}, not by the expected {expected_sender}",
                            "do not use this key: it did not come from the expected sender",
                            reason="wrong_sender")
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
        key, nonce = _keys(shared, eph_pub, recipient_pub)
        return AESGCM(key).decrypt(nonce, body[header_len:], _aad(header, aad))
    except (InvalidTag, ValueError):
        raise SealError("sealed box failed authentication (tampered, or the wrong aad)",
                        reason="tampered") from None
