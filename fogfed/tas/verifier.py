"""Pluggable attribute verification for enrollment (paper Algorithm 2, Join).

The paper leaves "verify the node's attributes" abstract. fogfed makes it a
protocol: ``verify(request) -> Verdict``. The default, OperatorApproval, accepts
a request only when the operator approved it explicitly for this call, or when
an allowlist file names the node's address with exactly these attributes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from eth_utils import is_hex_address, to_checksum_address

from fogfed.errors import InputError
from fogfed.protocol.attributes import normalise_location, normalise_service
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.protocol.signed import DuplicateKey, loads_strict

MAX_ALLOWLIST_BYTES = 1 << 20


@dataclass(frozen=True)
class Verdict:
    """The verifier's answer: ``ok`` and, when refused, why."""

    ok: bool
    reason: str = ""


@runtime_checkable
class AttributeVerifier(Protocol):
    """Decides whether a (signature-checked) request's attributes are true of the node."""

    def verify(self, request: EnrollmentRequest) -> Verdict:
        """Accept or refuse the request's location and service for its address."""
        ...


class OperatorApproval:
    """Default verifier: explicit operator approval, or an allowlist of address -> attributes.

    Allowlist file (JSON): ``{"0xAddress": {"location": "riyadh", "service": "health"}, ...}``
    or a list of such pairs per address: ``{"0xAddress": [{"location": ..., "service": ...}]}``.
    """

    def __init__(self, approved: bool = False, allowlist: Path | str | None = None) -> None:
        self.approved = approved
        self.allowed: dict[str, set[tuple[str, str]]] = {}
        if allowlist is not None:
            self.allowed = load_allowlist(Path(allowlist))

    def verify(self, request: EnrollmentRequest) -> Verdict:
        """Approved by the operator for this call, or listed with these attributes."""
        if self.approved:
            return Verdict(True, "approved by the operator")
        pairs = self.allowed.get(request.address)
        if pairs is None:
            return Verdict(False, f"{request.address} is not on the allowlist and the operator did not approve")
        if (request.location, request.service) not in pairs:
            return Verdict(False, f"{request.address} is allowlisted, but not for location "
                                  f"{request.location!r} and service {request.service!r}")
        return Verdict(True, "on the allowlist")


def load_allowlist(path: Path) -> dict[str, set[tuple[str, str]]]:
    """Read and check an allowlist file; InputError naming the bad entry."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"allowlist {path} cannot be read: {exc.strerror}") from None
    if len(raw) > MAX_ALLOWLIST_BYTES:
        raise InputError(f"allowlist {path} is larger than {MAX_ALLOWLIST_BYTES} bytes")
    try:
        doc = loads_strict(raw)
    except DuplicateKey as exc:
        raise InputError(f"allowlist {path} lists {exc.args[0]!r} more than once",
                         "give each node one entry") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"allowlist {path} is not valid JSON",
                         'write it as {"0xAddress": {"location": "...", "service": "..."}}') from None
    if not isinstance(doc, dict):
        raise InputError(f"allowlist {path} must be a JSON object keyed by address")
    out: dict[str, set[tuple[str, str]]] = {}
    for address, entries in doc.items():
        if not is_hex_address(address):
            raise InputError(f"allowlist {path}: {address!r:.60} is not an Ethereum address")
        entries = entries if isinstance(entries, list) else [entries]
        pairs = set()
        for e in entries:
            if not isinstance(e, dict) or set(e) != {"location", "service"}:
                raise InputError(f"allowlist {path}: entry for {address} must have exactly location and service")
            pairs.add((normalise_location(e["location"]), normalise_service(e["service"])))
        out[to_checksum_address(address)] = pairs
    return out
