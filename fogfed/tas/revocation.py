"""The TAS's view of the federations' member trees (revocation inside the policy) and when to refresh them.

The trees are replayed from FogFed's events (fogfed.protocol.membertree), so
nothing here is local state: after a crash the TAS rebuilds them from the
chain. A removal needs nothing from the TAS beyond its one transaction;
``missing_keys`` finds members whose join was interrupted between
``addMember`` and ``deliverKey`` (``tas sync`` then delivers their one key).
:class:`RefreshPolicy` says when a federation's tree is worth a new
generation (``tas sync``/``tas watch`` start it, ``tas remove`` hints at it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass

from fogfed.chain import FogFed
from fogfed.errors import FogfedError, InputError
from fogfed.protocol.membertree import MemberTree

#: Defaults of :class:`RefreshPolicy`.
MAX_COVER_NODES = 64
MAX_REVOKED_FRACTION = 0.5


@dataclass(frozen=True)
class RefreshPolicy:
    """When the TAS starts a new tree generation for a federation (besides a join into a full tree).

    ``max_cover_nodes``: the cover of the next upload (backward secrecy on)
    has more nodes than this: every file then carries that many OR rows (about
    105 bytes and one exponentiation each at encryption; benchmarks/mobility.py). ``max_revoked_fraction``:
    more than this share of the assigned leaves is revoked (the tree fills up
    with dead leaves). A refresh costs one transaction and a keygen per member
    (and every member reads the bundle once), so the defaults are lenient.
    """

    max_cover_nodes: int = MAX_COVER_NODES
    max_revoked_fraction: float = MAX_REVOKED_FRACTION

    def __post_init__(self) -> None:
        if type(self.max_cover_nodes) is not int or self.max_cover_nodes < 1:
            raise InputError(f"max cover nodes must be an integer >= 1, got {self.max_cover_nodes!r:.40}")
        f = self.max_revoked_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise InputError(f"max revoked fraction must be a number in (0, 1], got {f!r:.40}")

    def reason(self, tree: MemberTree) -> str | None:
        """Why ``tree`` needs a refresh now, or None (never for a federation without active members)."""
        if not (tree.leaves or tree.waiting):
            return None
        if tree.waiting:
            return f"{len(tree.waiting)} member(s) added while the tree was full hold no leaf"
        if tree.full:
            return f"the tree is full ({tree.assigned} of {tree.capacity} leaves assigned)"
        if tree.assigned and len(tree.revoked) > self.max_revoked_fraction * tree.assigned:
            return (f"{len(tree.revoked)} of {tree.assigned} leaves revoked "
                    f"(more than {self.max_revoked_fraction:g})")
        nodes = len(tree.cover())
        if nodes > self.max_cover_nodes:
            return f"the cover has {nodes} nodes (more than {self.max_cover_nodes})"
        return None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RefreshPolicy":
        doc = json.loads(text)
        return cls(int(doc["max_cover_nodes"]), float(doc["max_revoked_fraction"]))


class MemberTrees:
    """Member trees of every federation of one FogFed, replayed on demand from its events.

    ``read_bundle(digest)`` (optional) returns the nodes of a refresh bundle, so
    that members a refresh carried without an entry (joined while it was built)
    are found by :meth:`missing_keys`.
    """

    def __init__(self, fed: FogFed, read_bundle: Callable[[bytes], set[str] | None] | None = None) -> None:
        self.fed = fed
        self._trees: dict[int, MemberTree] = {}
        self._read_bundle = read_bundle
        self._bundles: dict[bytes, set[str] | None] = {}

    def get(self, federation_id: int) -> MemberTree:
        """The federation's tree, synced to the latest block."""
        tree = self._trees.setdefault(federation_id, MemberTree(federation_id))
        return tree.sync(self.fed)

    def leaf(self, federation_id: int, node: str) -> int:
        """The leaf the chain assigned to ``node``'s current membership of the federation."""
        tree = self.get(federation_id)
        if node not in tree.leaves:
            if node in tree.waiting:
                raise FogfedError(f"{node} was added to federation {federation_id} while its tree was full and "
                                  "holds no leaf yet", "refresh the federation (fogfed tas refresh); its key "
                                  "then comes in the bundle")
            raise FogfedError(f"{node} holds no leaf of federation {federation_id}'s member tree "
                              "(not an active member there)")
        return tree.leaves[node]

    def summary(self, federation_id: int) -> dict:
        """Height, leaves assigned and revoked, and the size of the current cover (for status and reports)."""
        tree = self.get(federation_id)
        return {"tree_generation": tree.generation, "tree_height": tree.height, "leaves_assigned": tree.assigned,
                "leaves_total": tree.capacity, "leaves_revoked": len(tree.revoked),
                "members_waiting": len(tree.waiting), "cover_nodes": len(tree.cover()) if tree.leaves else 0}

    def bundle_nodes(self, tree: MemberTree) -> set[str] | None:
        """The nodes with an entry in the current generation's bundle (None: unknown, no reader)."""
        if tree.bundle is None or self._read_bundle is None:
            return None
        if tree.bundle not in self._bundles:
            try:
                self._bundles[tree.bundle] = self._read_bundle(tree.bundle)
            except FogfedError:  # the store is unreachable: assume every carried member has its entry
                return None
        return self._bundles[tree.bundle]

    def missing_keys(self, federation_id: int, only: Collection[str] | None = None) -> list[str]:
        """Active members (of ``only``, if given) holding a leaf but no key for it (:func:`missing_keys`)."""
        tree = self.get(federation_id)
        return missing_keys(self.fed, tree, self.bundle_nodes(tree), only)


def missing_keys(fed: FogFed, tree: MemberTree, bundle: set[str] | None = None,
                 only: Collection[str] | None = None) -> list[str]:
    """Active members with a leaf whose key for the current generation was never delivered.

    A member has one if a key delivery follows its latest join (and the
    refresh that started this generation, if that came after the join), or if
    that refresh's bundle holds its entry (``bundle``; None: assume it does).
    Members waiting for a leaf are not listed: a refresh gives them one.
    A member of a refreshed generation without an entry joined while the
    bundle was built (e.g. enrolled by a second TAS process). ``only``: look
    at these members only (one view call each).
    """
    out = []
    for node, joined in sorted(tree.joined_block.items()):
        if node not in tree.leaves or (only is not None and node not in only):
            continue
        refreshed = tree.refreshed_block if tree.refreshed_block > joined else -1
        if refreshed >= 0 and (bundle is None or node in bundle):
            continue
        key_block = fed.peer_blocks(node)[0]
        if key_block < joined or (refreshed >= 0 and key_block <= refreshed):
            out.append(node)
    return out
