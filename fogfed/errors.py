"""The one exception base every fogfed layer raises.

Each error carries a message naming what failed and, where there is one, a
hint saying what to do. The CLI prints both on one line each and exits
non-zero; nothing below the CLI prints.
"""

from __future__ import annotations


class FogfedError(Exception):
    """A failure the user can understand and act on."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(FogfedError, ValueError):
    """Bad input from a user, a peer, the chain or storage."""

    exit_code = 2
