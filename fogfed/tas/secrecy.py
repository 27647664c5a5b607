"""Backward secrecy for newcomers (a join or a move in), per federation, set on the mobility contract.

On (the contract's default): before a newcomer's key is delivered the
destination's epoch is bumped and its members re-keyed, so files uploaded
before it arrived need an epoch attribute it never gets. Off: no bump; the
newcomer also receives one history key for the destination's past epochs,
posted sealed with ``deliverHistoryKey``. Without a mobility contract neither
happens (paper Algorithm 2: the newcomer gets the current epoch's key only).

Both functions work through the TAS's public methods only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fogfed.chain.mobility import FogFedMobility
from fogfed.protocol.attributes import node_attributes
from fogfed.protocol.move import history_attributes, seal_history_key
from fogfed.tas.results import RekeyResult

if TYPE_CHECKING:
    from fogfed.tas.authority import TrustedAuthority

GAS_NEWCOMER_REKEY = "bumpEpoch + deliverKey (destination)"
GAS_HISTORY = "deliverHistoryKey"


def keep_out_of_the_past(tas: "TrustedAuthority", mobility: FogFedMobility, federation_id: int,
                         gas: dict[str, int]) -> RekeyResult | None:
    """Backward secrecy on and members present: bump the epoch and re-key them before the newcomer arrives."""
    if not mobility.backward_secrecy(federation_id) or not tas.active_members(federation_id):
        return None
    result = tas.rekey(federation_id)
    gas[GAS_NEWCOMER_REKEY] = result.gas_used
    return result


def grant_history(tas: "TrustedAuthority", mobility: FogFedMobility, node: str, federation_id: int, epoch: int,
                  gas: dict[str, int]) -> tuple[int, int] | None:
    """Backward secrecy off: one key for epochs 0..epoch-1 of the destination, sealed on chain."""
    if epoch == 0 or mobility.backward_secrecy(federation_id):
        return None
    rec = tas.enrolled_member(node)
    base = [a for a in node_attributes(rec["location"], rec["service"], federation_id, epoch)
            if a.startswith(("loc:", "svc:"))]
    sk = tas.issue_key(history_attributes(base, federation_id, 0, epoch - 1))
    sealed = seal_history_key(tas.account, bytes.fromhex(rec["enc_public_key"]), sk, chain_id=tas.chain_id,
                              mobility=mobility.address, node=node, federation_id=federation_id,
                              from_epoch=0, to_epoch=epoch - 1)
    gas[GAS_HISTORY] = mobility.deliver_history_key(tas.account, node, federation_id, 0, epoch - 1,
                                                    sealed).gas_used
    return (0, epoch - 1)
