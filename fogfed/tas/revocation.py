"""The TAS's view of the federations' member trees (revocation inside the policy).

The trees are replayed from FogFed's events (fogfed.protocol.membertree), so
nothing here is local state: after a crash the TAS rebuilds them from the
chain. A removal needs nothing from the TAS beyond its one transaction;
``missing_keys`` finds members whose join was interrupted between
``addMember`` and ``deliverKey``, and members a refresh's bundle left out
because they joined while it was being built (``tas sync`` then delivers their
one key).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from fogfed.chain import FogFed
from fogfed.errors import FogfedError
from fogfed.protocol.attributes import TREE_HEIGHT
from fogfed.protocol.membertree import MemberTree


class MemberTrees:
    """Member trees of every federation of one FogFed, replayed on demand from its events."""

    def __init__(self, fed: FogFed) -> None:
        self.fed = fed
        self._trees: dict[int, MemberTree] = {}

    def get(self, federation_id: int) -> MemberTree:
        """The federation's tree, synced to the latest block."""
        tree = self._trees.setdefault(federation_id, MemberTree(federation_id))
        return tree.sync(self.fed)

    def leaf(self, federation_id: int, node: str) -> int:
        """The leaf the chain assigned to ``node``'s current membership of the federation."""
        tree = self.get(federation_id)
        if node not in tree.leaves:
            raise FogfedError(f"{node} holds no leaf of federation {federation_id}'s member tree "
                              "(not an active member there)")
        return tree.leaves[node]

    def check_room(self, federation_id: int) -> None:
        """FogfedError when the federation's tree has no free leaf left (checked before any transaction)."""
        if self.get(federation_id).assigned >= 1 << TREE_HEIGHT:
            raise FogfedError(f"federation {federation_id}'s member tree is full ({1 << TREE_HEIGHT} leaves)",
                              "a new tree generation (refresh) is needed; it is not implemented yet")

    def summary(self, federation_id: int) -> dict:
        """Leaves assigned and revoked, and the size of the current cover (for status and reports)."""
        tree = self.get(federation_id)
        return {"tree_generation": tree.generation, "leaves_assigned": tree.assigned,
                "leaves_revoked": len(tree.revoked), "cover_nodes": len(tree.cover())}


def missing_keys(fed: FogFed, tree: MemberTree, bundle: BundleIndex | None = None,
                 only: Collection[str] | None = None) -> list[str]:
    """Active members of the tree who hold no key for its current generation.

    Generation 0: a member lacks its key while its latest key delivery is older
    than its latest join. A refreshed generation (``bundle``: the members, in
    leaf order, of the bundle its TreeRefreshed committed to, and the bundle's
    epoch) also counts the bundle: a member at leaf i holds its key when entry i
    is its own. Any other member (joined after the refresh, or between the
    building of the bundle and its commit, e.g. by a second TAS process) needs a
    delivery of the new generation: after its join and after the refresh.
    ``only``: look at these members only (one view call each).
    """
    if tree.bundle is not None and bundle is None:
        raise FogfedError(f"federation {tree.federation_id} was refreshed: its key bundle is needed to tell "
                          "which members hold a key")
    out = []
    for node, block in sorted(tree.joined_block.items()):
        leaf = tree.leaves.get(node)
        if leaf is None or (only is not None and node not in only):
            continue
        if bundle is not None and leaf < len(bundle.nodes) and bundle.nodes[leaf] == node:
            continue
        delivered = fed.peer_blocks(node)[0]
        if delivered < block or (bundle is not None and not _after_refresh(fed, tree, bundle, node, delivered)):
            out.append(node)
    return out


@dataclass(frozen=True)
class BundleIndex:
    """What a member check needs of a refresh's key bundle: its epoch and its members in leaf order."""

    epoch: int
    nodes: tuple[str, ...]


def _after_refresh(fed: FogFed, tree: MemberTree, bundle: BundleIndex, node: str, block: int) -> bool:
    """Whether ``node``'s latest delivery (in ``block``) is of the refreshed generation."""
    if block != tree.refreshed_block:
        return block > tree.refreshed_block
    # the same block as the refresh: the delivery's epoch tells which side of it it was
    return any(e.args["epoch"] >= bundle.epoch for e in fed.events(block, block, ["KeyDelivered"],
                                                                    where={"node": node}))
