"""What the TAS's operations return (plain data, printable by the CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FederationInfo:
    """One federation as recorded on chain."""

    federation_id: int
    location: str
    service: str
    parent: int
    epoch: int
    members: tuple[str, ...] = ()
    created_tx: str | None = None
    gas_used: int | None = None


@dataclass(frozen=True)
class EnrollmentResult:
    """A node enrolled (paper Algorithms 2, 7 and 3).

    Nobody else is re-keyed for a join (the newcomer's leaf is outside every earlier cover), so there is
    no re-key or history-key field: ``newcomer_rekey`` and ``history_epochs``, None since the member
    trees (issue 11), were removed in issue 13.
    """

    node: str
    federation_id: int
    federation_created: bool
    epoch: int
    attributes: tuple[str, ...]
    verdict: str
    gas: dict[str, int] = field(default_factory=dict)
    leaf: int | None = None  # the node's leaf of the federation's member tree


@dataclass(frozen=True)
class RekeyResult:
    """Keys delivered to some members of a federation (``tas sync`` finishing interrupted joins)."""

    federation_id: int
    epoch: int
    nodes: tuple[str, ...]
    gas_used: int


@dataclass(frozen=True)
class RemovalResult:
    """A node removed (paper Algorithm 10): one transaction, its leaf revoked; ``rekey`` is None (nobody re-keyed).

    ``status``: "removed" (sent now), "finished" (an interrupted earlier run of this TAS: its transaction
    sent now, or found on chain) or "already removed" (nothing sent; ``reason`` is then the note on chain).
    """

    node: str
    federation_id: int
    new_epoch: int
    reason: str
    rekey: RekeyResult | None
    gas: dict[str, int] = field(default_factory=dict)
    status: str = "removed"
    tx_hash: str | None = None
    removed_by: str | None = None  # the account that removed it (this TAS, another operator) or the contract
    block: int | None = None


@dataclass(frozen=True)
class RefreshResult:
    """A member-tree refresh: one transaction committing to a bundle of every member's new key."""

    federation_id: int
    generation: int
    epoch: int
    members: int
    bundle_bytes: int
    bundle: bytes  # digest inside the bundle's CIDv0 (on chain in TreeRefreshed)
    gas_used: int
    late: tuple[str, ...] = ()  # joined while the bundle was built (another TAS process): key delivered after
    late_gas: int = 0  # gas of those deliveries
