"""Errors of the ABE engine; all are FogfedError subclasses with a hint."""

from __future__ import annotations

from fogfed.errors import FogfedError, InputError

__all__ = ["DecryptionError", "KeyMismatchError", "MalformedError", "PolicyNotSatisfied", "PolicySyntaxError"]


class PolicySyntaxError(InputError):
    """A policy text is malformed; ``position`` (0-based) and ``token`` say where."""

    def __init__(self, message: str, text: str, position: int, token: str, hint: str | None = None) -> None:
        caret = f"\n  {text}\n  {' ' * position}^" if len(text) <= 200 else ""
        super().__init__(f"policy syntax error at position {position} ({token!r}): {message}{caret}", hint)
        self.text = text
        self.position = position
        self.token = token
        self.reason = message


class MalformedError(InputError):
    """Serialised ABE material (key, ciphertext) is malformed; the message names object and field."""


class DecryptionError(FogfedError):
    """A ciphertext could not be decrypted: it was tampered with, or the key does not fit."""


class KeyMismatchError(DecryptionError, InputError):
    """Keys or ciphertexts from different ABE systems (or schemes) were combined."""


class PolicyNotSatisfied(DecryptionError):
    """The key's attributes do not satisfy the ciphertext's policy."""
