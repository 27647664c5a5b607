"""The node side of mobility: the signed move request (the new key comes like any delivered key)."""

from __future__ import annotations

from fogfed.chain.mobility import FogFedMobility
from fogfed.node.client import FogNode
from fogfed.protocol.move import MoveRequest


def move_request(node: FogNode, mobility: FogFedMobility, to_federation: int) -> MoveRequest:
    """A signed request to be handed over to ``to_federation`` with this node's current device keys."""
    return MoveRequest.create(node.identity, to_federation, chain_id=mobility.chain.chain_id,
                              contract=mobility.fed.address, mobility=mobility.address)
