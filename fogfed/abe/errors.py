"""Errors of the ABE engine; all are FogfedError subclasses with a hint."""

from __future__ import annotations

from collections import Counter

from fogfed.errors import FogfedError, InputError

__all__ = [
    "DecryptionError",
    "KeyMismatchError",
    "MalformedError",
    "PolicyNotSatisfied",
    "PolicySyntaxError",
    "RepeatedAttributeError",
]


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


class RepeatedAttributeError(InputError):
    """A policy repeats an attribute and the scheme cannot encrypt such a policy soundly (FAME)."""

    @classmethod
    def check(cls, policy, scheme: str) -> None:
        counts = Counter(policy.leaves())
        repeated = sorted(y for y, n in counts.items() if n > 1)
        if repeated:
            counts = ", ".join(f"{y!r} ({counts[y]} times)" for y in repeated)
            raise cls(
                f"policy repeats attributes: {counts}; {scheme.upper()} has one key component per attribute, "
                "so a key without a repeated attribute could decrypt",
                "use scheme 'fabeo' (the default), which allows repeats, or write the policy without repeats "
                "(fogfed.protocol.attributes.federations_policy factors shared attributes out)",
            )
