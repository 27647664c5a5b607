"""EIP-191 signatures over domain-separated messages, checked without trusting the input."""

from __future__ import annotations

import eth_keys.exceptions
import eth_utils.exceptions
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

SIGNATURE_BYTES = 65
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Junk signatures raise any of these, depending on which check trips first.
_BAD_SIGNATURE = (eth_keys.exceptions.BadSignature, eth_keys.exceptions.ValidationError,
                  eth_utils.exceptions.ValidationError, ValueError)


def sign(account: LocalAccount, message: bytes) -> bytes:
    """The 65-byte EIP-191 (personal_sign) signature of ``message`` by ``account``."""
    return bytes(account.sign_message(encode_defunct(primitive=message)).signature)


def recover_signer(message: bytes, signature: bytes) -> str | None:
    """The checksummed address that signed ``message``, or None if the signature is invalid."""
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != SIGNATURE_BYTES:
        return None
    # Accept only the one canonical encoding (v 27/28, low s, as eth_account
    # signs), so a signed blob cannot be altered into a second valid form.
    s = int.from_bytes(signature[32:64], "big")
    if signature[64] not in (27, 28) or not 0 < s <= _SECP256K1_N // 2:
        return None
    try:
        return Account.recover_message(encode_defunct(primitive=message), signature=bytes(signature))
    except _BAD_SIGNATURE:
        return None
