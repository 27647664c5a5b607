"""The node side of mobility: the signed move request and history keys of federations that share their past."""

from __future__ import annotations

from fogfed.chain.mobility import FogFedMobility
from fogfed.node.client import FogNode
from fogfed.protocol.move import MoveRequest, open_history_key


def move_request(node: FogNode, mobility: FogFedMobility, to_federation: int) -> MoveRequest:
    """A signed request to be handed over to ``to_federation`` with this node's current device keys."""
    return MoveRequest.create(node.identity, to_federation, chain_id=mobility.chain.chain_id,
                              contract=mobility.fed.address, mobility=mobility.address)


def pull_history_keys(node: FogNode, mobility: FogFedMobility) -> int:
    """Store the history keys the TAS posted for this node (backward secrecy off); how many were new.

    A history key covering epochs a..b is kept under (federation, b): the keyring tries every key
    it holds when decrypting, and b is an epoch the node otherwise never gets a key for."""
    added = 0
    for event in mobility.events(["HistoryKeyDelivered"], node=node.address):
        fid, lo, hi = event.args["federationId"], event.args["fromEpoch"], event.args["toEpoch"]
        if node.keyring.get(fid, hi) is not None:
            continue
        sk = open_history_key(node.identity, event.args["sealedKey"], node.public_key(fid),
                              chain_id=mobility.chain.chain_id, mobility=mobility.address, federation_id=fid,
                              from_epoch=lo, to_epoch=hi, is_operator=mobility.fed.is_operator)
        added += node.keyring.add(fid, hi, sk)
    return added
