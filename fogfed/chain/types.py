"""Small frozen records the chain layer returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DecodedEvent:
    """One FogFed log: event name, arguments (addresses checksummed, bytes as bytes), position."""

    name: str
    args: dict[str, Any]
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction. ``value`` is the function's result where it has one
    (new federation id, file id, access granted, verification answer, ...)."""

    tx_hash: str
    receipt: Any = field(repr=False)
    gas_used: int
    block_number: int
    events: list[DecodedEvent]
    value: Any = None

    def event(self, name: str) -> DecodedEvent:
        """The first event called ``name`` (KeyError if the transaction emitted none)."""
        for e in self.events:
            if e.name == name:
                return e
        raise KeyError(f"transaction {self.tx_hash} emitted no {name} event")


@dataclass(frozen=True)
class Settings:
    """Roles and settings of a deployment (one view call)."""

    admin: str
    pending_admin: str | None
    federation_count: int
    false_claim_threshold: int
    max_cache_lifetime: int


@dataclass(frozen=True)
class Federation:
    """A federation's stored record (attributes and the key bytes are in its creation event)."""

    federation_id: int
    public_key_commitment: bytes  # first 24 bytes of keccak256(public key)
    parent: int
    epoch: int


@dataclass(frozen=True)
class Member:
    """A node's membership record; kept after removal (``active`` False)."""

    address: str
    federation_id: int  # current, or last one when inactive; 0 = never enrolled
    active: bool
    false_claims: int
    generation: int
    joined_at: int
    encryption_key: bytes


@dataclass(frozen=True)
class FileRecord:
    """A registered file."""

    file_id: bytes
    plaintext_hash: bytes
    enc_sk_ref: bytes
    policy_ref: bytes
    uploader: str
    federation_id: int
    epoch: int
    registered_at: int
    damaged_at: int  # 0 = never reported damaged

    @property
    def damaged(self) -> bool:
        return self.damaged_at != 0


@dataclass(frozen=True)
class CacheHolder:
    """A member holding a fresh cached copy of a file."""

    holder: str
    expires_at: int
