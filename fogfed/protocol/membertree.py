"""A federation's member tree, replayed from FogFed's event log (the chain is the source of truth).

Leaves are assigned by the contract's own order of events: the k-th
``MemberAdded`` of a federation's current tree generation (an enrolment, a
re-enrolment or a move in) takes leaf k (fogfed.keys.cover). Each generation
has its own height, derived from the events alone: generation 0 has
``FIRST_HEIGHT``; a ``TreeRefreshed`` starting a generation with m active
members gives it ``generation_height(m)`` (room for 2m to 4m). A member added
while every leaf is taken (only another operator or a raw transaction can do
that: the TAS refreshes first) gets no leaf: it *waits*, reads nothing new,
and the next refresh places it after the others. A ``MemberRemoved`` (by the TAS, for false claims, or a move
out) revokes the member's current leaf; leaves are never reused, so a node that
returns gets a fresh leaf and its old one stays revoked. Each removal advances
the federation's epoch by one in the same transaction, so "the revocations in
force at epoch e" is exact, and ``registerFile`` refuses an upload whose epoch
is stale: a cover computed before a removal can never be registered after it.

Anyone (uploader, fetcher, auditor) recomputes a file's cover from its
registered descriptor (fogfed.protocol.attributes.policy_descriptor) with
:func:`expand_descriptor`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from fogfed.errors import InputError
from fogfed.keys import cover as cs
from fogfed.protocol.attributes import FIRST_HEIGHT, check_user_policy, cover_clause, generation_height

TREE_EVENTS = ("MemberAdded", "MemberRemoved", "EpochAdvanced", "TreeRefreshed")
GENERATION = 0  # the first tree generation; each TreeRefreshed starts the next


@dataclass
class MemberTree:
    """One federation's tree state: leaves of active members, revoked leaves with the epoch they apply from."""

    federation_id: int
    epoch: int = 0
    assigned: int = 0
    leaves: dict[str, int] = field(default_factory=dict)  # active member -> leaf
    revoked: dict[int, int] = field(default_factory=dict)  # leaf -> first epoch it is revoked in
    joined_block: dict[str, int] = field(default_factory=dict)  # active member -> block of its latest join
    block: int = -1  # last block replayed
    generation: int = GENERATION  # the tree generation keys and covers are for now
    bundle: bytes | None = None  # digest of the current generation's key bundle (None for the first)
    refreshed_block: int = -1  # block of the refresh that started the current generation
    past: dict[int, "MemberTree"] = field(default_factory=dict)  # earlier generations as they ended
    height: int = FIRST_HEIGHT  # of the current generation (2**height leaves)
    waiting: list[str] = field(default_factory=list)  # active members added while the tree was full

    @property
    def capacity(self) -> int:
        """Leaves of the current generation."""
        return 1 << self.height

    @property
    def full(self) -> bool:
        """No free leaf: the next join needs a refresh first (TrustedAuthority.ensure_room)."""
        return self.assigned >= self.capacity

    def refresh_order(self) -> list[str]:
        """The active members in the order a refresh now would give them leaves 0..m-1."""
        return sorted(self.leaves, key=self.leaves.get) + list(self.waiting)

    def _refresh(self, bundle: bytes, block: int) -> None:
        """A new generation: the active members keep their order (waiting ones last) and take leaves
        0..m-1 of a tree of ``generation_height(m)``; nothing revoked."""
        import copy

        self.past[self.generation] = copy.copy(self)
        self.past[self.generation].past = {}
        order = self.refresh_order()
        self.leaves = {node: i for i, node in enumerate(order)}
        self.assigned, self.revoked, self.waiting = len(order), {}, []
        self.height = generation_height(len(order))
        self.generation, self.bundle, self.refreshed_block = self.generation + 1, bundle, block

    def apply(self, events: Iterable) -> "MemberTree":
        """Replay FogFed events (any federations, in chain order) onto this state."""
        for e in events:
            if e.args.get("federationId") != self.federation_id:
                continue
            if e.name == "MemberAdded":
                self.joined_block[e.args["node"]] = e.block_number
                if self.full:
                    self.waiting.append(e.args["node"])
                    continue
                self.leaves[e.args["node"]] = self.assigned
                self.assigned += 1
            elif e.name == "MemberRemoved":
                self.joined_block.pop(e.args["node"], None)
                if e.args["node"] in self.waiting:
                    self.waiting.remove(e.args["node"])
                leaf = self.leaves.pop(e.args["node"], None)
                if leaf is not None:
                    self.revoked[leaf] = self.epoch + 1  # the removal's own EpochAdvanced follows
            elif e.name == "EpochAdvanced":
                self.epoch = e.args["epoch"]
            elif e.name == "TreeRefreshed":  # after its own EpochAdvanced, in the same transaction
                self._refresh(e.args["bundle"], e.block_number)
        return self

    def sync(self, fed) -> "MemberTree":
        """Replay the events since the last call from ``fed`` (a FogFed wrapper)."""
        end = fed.chain.block_number()
        if end > self.block:
            start = fed.deploy_block if self.block < 0 else self.block + 1
            self.apply(fed.events(start, end, TREE_EVENTS))
            self.block = end
        return self

    def revoked_at(self, epoch: int) -> list[int]:
        """Leaves revoked at ``epoch``."""
        return sorted(leaf for leaf, since in self.revoked.items() if since <= epoch)

    def cover(self, epoch: int | None = None, assigned: int | None = None, *, open_: bool = False) -> list[int]:
        """The cover nodes of the leaves that may read at ``epoch`` (default: now).

        Backward secrecy on (default): only leaves assigned so far (or the first
        ``assigned``); ``open_``: also the unassigned leaves (later newcomers read the file).
        """
        epoch = self.epoch if epoch is None else epoch
        n = None if open_ else (self.assigned if assigned is None else assigned)
        return cs.cover(self.height, self.revoked_at(epoch), n, root=False)

    def clause(self, epoch: int | None = None, assigned: int | None = None, *, open_: bool = False) -> str:
        """The policy clause (OR of the cover's tree attributes)."""
        return cover_clause(self.federation_id, self.generation,
                            self.cover(epoch, assigned, open_=open_))

    def descriptor(self, *, open_: bool = False) -> tuple[int, int, int, bool]:
        """(generation, epoch, assigned, open) of the current cover, for the registered policy text."""
        return (self.generation, self.epoch, self.assigned, open_)


_DESCRIPTOR = re.compile(r"^\((?P<policy>.*)\) and cover\((?P<parts>[0-9:a-z ]+)\)$", re.S)
_PART = re.compile(r"^(\d+):(\d+):(\d+):(\d+)(:open)?$")


def parse_descriptor(text: str) -> tuple[str, dict[int, tuple[int, int, int, bool]]]:
    """(user policy, {federation: (generation, epoch, assigned, open)}) from a registered policy text."""
    m = _DESCRIPTOR.match(text) if isinstance(text, str) else None
    if not m:
        raise InputError(f"not a cover descriptor: {text!r:.120}")
    return str(check_user_policy(m.group("policy"))), _parts(m.group("parts"))


_COVERS = re.compile(r" and cover\((?P<parts>[0-9:a-z ]+)\)$")


def descriptor_covers(text: str) -> dict[int, tuple[int, int, int, bool]]:
    """Only the covers a registered text names (the auditor's view: the user policy is not checked)."""
    m = _COVERS.search(text) if isinstance(text, str) else None
    if not m:
        raise InputError(f"no cover descriptor in {text!r:.120}")
    return _parts(m.group("parts"))


def _parts(text: str) -> dict[int, tuple[int, int, int, bool]]:
    parts = {}
    for part in text.split():
        pm = _PART.match(part)
        if not pm:
            raise InputError(f"malformed cover descriptor part {part!r:.60}")
        parts[int(pm.group(1))] = (int(pm.group(2)), int(pm.group(3)), int(pm.group(4)), bool(pm.group(5)))
    return parts


def expand_descriptor(text: str, trees: dict[int, MemberTree]) -> str:
    """The full CP-ABE policy a registered descriptor stands for, from the replayed trees."""
    policy, parts = parse_descriptor(text)
    clauses = []
    for fid, (gen, epoch, assigned, open_) in sorted(parts.items()):
        tree = trees[fid] if gen == trees[fid].generation else trees[fid].past.get(gen)
        if tree is None:
            raise InputError(f"descriptor names generation {gen} of federation {fid}, which the chain does not have")
        clauses.append(tree.clause(epoch, assigned, open_=open_))
    return f"({policy}) and ({' or '.join(clauses)})"


__all__ = ["GENERATION", "MemberTree", "TREE_EVENTS", "descriptor_covers", "expand_descriptor",
           "parse_descriptor"]
