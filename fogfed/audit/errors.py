"""Errors of the auditor: every failure names what failed and what to do."""

from __future__ import annotations

from fogfed.errors import FogfedError


class AuditError(FogfedError):
    """The audit could not run (unreachable node, wrong address, bad checkpoint)."""


class BadAuditInput(AuditError):
    """An argument of the audit is malformed (exit code 2)."""

    exit_code = 2
