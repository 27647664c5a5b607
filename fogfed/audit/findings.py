"""Anomalies in a rebuilt history, each a finding with the transactions that show it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Kinds of findings, with what each means (docs/audit.md explains them further).
KINDS = {
    "probing": "repeated denied accesses by one address",
    "write_near_removal": "a node registered a file or announced a cache around its removal",
    "damage_cluster_uploader": "damage reports clustered on one uploader's files",
    "damage_cluster_holder": "damage reports clustered on one cache holder",
    "stale_epoch": "a file registered under a key epoch that was being (or had been) retired",
    "uncovered_file": "a file registered without a member-tree cover, or naming leaves that did not exist then",
    "stale_cover": "a file whose cover of a federation predates a removal there (removed nodes may read it)",
    "tree_full_join": "a member was added while its federation's member tree was full (no leaf until a refresh)",
    "cache_never_withdrawn": "a cache announcement expired (or its holder left) and was never withdrawn",
    "state_mismatch": "the rebuilt state differs from the contract's view at the same block",
    "unhandled_event": "the contract emitted an event the auditor does not understand",
}


@dataclass(frozen=True)
class Thresholds:
    """How many occurrences make a pattern a finding."""

    denied_accesses: int = 3
    damage_reports: int = 3


@dataclass
class Finding:
    """One anomaly: its kind, who it is about, what happened and the evidence."""

    kind: str
    subject: str
    message: str
    txs: list[str] = field(default_factory=list)
    block: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def anomalies(state: dict[str, Any], head_time: int, limits: Thresholds | None = None) -> list[Finding]:
    """Every anomaly in ``state`` (rebuilt up to a block whose timestamp is ``head_time``)."""
    limits = limits or Thresholds()
    out = [Finding(s["kind"], s["subject"], s["message"], list(s["txs"]), s["block"]) for s in state["signals"]]
    for node, c in state["denied_by"].items():
        if c["count"] >= limits.denied_accesses:
            reasons = ", ".join(f"{n} x {r}" for r, n in sorted(c["reasons"].items()))
            out.append(Finding("probing", node, f"{node} was denied access {c['count']} times ({reasons})",
                               list(c["txs"])))
    for table, kind, what in (("damage_by_uploader", "damage_cluster_uploader", "files uploaded by"),
                              ("damage_by_holder", "damage_cluster_holder", "cached copies held by")):
        for who, c in state[table].items():
            if c["count"] >= limits.damage_reports:
                out.append(Finding(kind, who, f"{c['count']} damage reports on {what} {who}", list(c["txs"])))
    out.extend(_stale_caches(state, head_time))
    for name, count in state["unhandled"].items():
        out.append(Finding("unhandled_event", name, f"{count} {name} event(s) were not applied to the rebuilt "
                           "state: the auditor predates this contract version"))
    return out


def _stale_caches(state: dict[str, Any], head_time: int) -> list[Finding]:
    out = []
    members = state["members"]
    for file_id, holders in state["caches"].items():
        fed = state["files"][file_id]["federation_id"]
        for holder, entry in holders.items():
            if entry["damaged"]:
                continue  # a damage report ended it; the damage findings cover it
            m = members.get(holder, {})
            expired = entry["expires_at"] <= head_time
            left = not (m.get("active") and m.get("federation_id") == fed)
            if expired or left:
                why = "expired" if expired else "its holder is no longer a member of the file's federation"
                out.append(Finding("cache_never_withdrawn", holder,
                                   f"announcement of file {file_id} by {holder} {why} "
                                   f"(expiry {entry['expires_at']}) and was never withdrawn",
                                   [entry["announced"]["tx"]], entry["announced"]["block"]))
    return out
