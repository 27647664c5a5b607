"""The TAS's view of the federations' member trees (revocation inside the policy).

The trees are replayed from FogFed's events (fogfed.protocol.membertree), so
nothing here is local state: after a crash the TAS rebuilds them from the
chain. A removal needs nothing from the TAS beyond its one transaction;
``missing_keys`` finds members whose join was interrupted between
``addMember`` and ``deliverKey`` (``tas sync`` then delivers their one key).
"""

from __future__ import annotations

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


def missing_keys(fed: FogFed, tree: MemberTree) -> list[str]:
    """Active members of the tree whose latest key delivery is older than their latest join."""
    out = []
    for node, block in sorted(tree.joined_block.items()):
        if node in tree.leaves and fed.peer_blocks(node)[0] < block:
            out.append(node)
    return out
