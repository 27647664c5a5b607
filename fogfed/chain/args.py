"""Validation of values passed to contract wrappers, before anything is sent.

The contract checks again (it trusts no caller); checking here first gives the
user a precise message instead of an ABI-encoding traceback.
"""

from __future__ import annotations

from typing import Any

from eth_utils import keccak

from fogfed.chain.errors import InvalidArgument


def uint(value: Any, bits: int, what: str) -> int:
    """``value`` as an unsigned integer of ``bits`` bits."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise InvalidArgument(f"{what} must be an integer from 0 to {2**bits - 1}, got {value!r:.80}")
    return value


def bytes_n(value: Any, n: int, what: str, *, nonzero: bool = False) -> bytes:
    """``value`` (bytes or 0x-hex) as exactly ``n`` bytes."""
    raw = value
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise InvalidArgument(f"{what} is not hex: {value!r:.80}") from None
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != n:
        raise InvalidArgument(f"{what} must be {n} bytes, got {value!r:.80}")
    if nonzero and not any(raw):
        raise InvalidArgument(f"{what} must not be all zero")
    return bytes(raw)


def blob(value: Any, what: str, max_len: int) -> bytes:
    """Non-empty bytes of at most ``max_len``."""
    if not isinstance(value, (bytes, bytearray)) or not 0 < len(value) <= max_len:
        size = len(value) if isinstance(value, (bytes, bytearray)) else type(value).__name__
        raise InvalidArgument(f"{what} must be 1 to {max_len} bytes, got {size}")
    return bytes(value)


def text(value: Any, what: str, max_bytes: int) -> str:
    """A non-empty string of at most ``max_bytes`` UTF-8 bytes without control characters."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, got {type(value).__name__}")
    size = len(value.encode("utf-8", "surrogatepass"))
    if not 0 < size <= max_bytes:
        raise InvalidArgument(f"{what} must be 1 to {max_bytes} bytes of UTF-8, got {size}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise InvalidArgument(f"{what} contains control characters: {value!r:.80}")
    return value


def attributes_hash(location: str, service: str) -> bytes:
    """The contract's federation key: keccak256(keccak256(location) ++ keccak256(service))."""
    location = text(location, "location", 64)
    service = text(service, "service", 64)
    return keccak(keccak(location.encode()) + keccak(service.encode()))


def public_key_commitment(public_key: bytes) -> bytes:
    """What the contract stores for a federation public key: keccak256(key)[:24]."""
    return keccak(bytes(public_key))[:24]


def note(value: Any, what: str, max_bytes: int) -> str:
    """Free text of at most ``max_bytes`` UTF-8 bytes, possibly empty, without control characters."""
    if value == "":
        return value
    return text(value, what, max_bytes)
