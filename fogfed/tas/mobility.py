"""The TAS side of mobility: handover verified by on-chain records, join with backward secrecy.

Move (the second source paper's handover): the node's signed MoveRequest is
checked, then the mobility contract's ``checkHandover`` view looks the node's
record up from the destination towards the root. On success one
``moveMember`` transaction closes the old membership (the old federation's
epoch advances: forward secrecy) and opens the new one with the same device
keys; the TAS re-keys the old federation's remaining members and delivers the
node a key for the destination. On failure nothing changes on chain and
:class:`HandoverRefused` tells the node to make a fresh identity and enroll.

Backward secrecy (per federation, default on, read from the mobility
contract): before a newcomer's key is delivered the destination's epoch is
bumped and its members re-keyed, so the newcomer cannot read what was
uploaded before it arrived. Off: the newcomer also gets a history key for the
destination's past epochs.

This module works through the TAS's own methods and state (``_deliver``,
``_rekey_to``, the member records), because it adds operations to the same
authority rather than a second one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fogfed import abe
from fogfed.chain.mobility import FogFedMobility
from fogfed.errors import InputError
from fogfed.protocol.attributes import node_attributes
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.protocol.move import MoveRejected, MoveRequest, history_attributes, seal_history_key
from fogfed.tas.authority import MAX_NONCES, TasError, TrustedAuthority
from fogfed.tas.results import EnrollmentResult, RekeyResult


class HandoverRefused(TasError):
    """The node's record does not verify for this move; it must re-key and enroll from scratch."""

    def __init__(self, node: str, reason: str) -> None:
        super().__init__(f"handover of {node} refused: {reason}",
                         "create a fresh identity (fogfed node init in a new home) and enroll from scratch "
                         "(fogfed node request, then fogfed tas enroll)")
        self.reason = reason


@dataclass(frozen=True)
class MoveResult:
    """A completed handover."""

    node: str
    from_federation: int
    to_federation: int
    level: int  # 0: record found in the destination's subtree itself, k: in its k-th ancestor
    epoch: int  # the destination epoch of the delivered key
    old_rekey: RekeyResult  # forward secrecy: the old federation's remaining members
    newcomer_rekey: RekeyResult | None  # backward secrecy: the destination's members, before the key
    history_epochs: tuple[int, int] | None  # backward secrecy off: the past epochs granted
    gas: dict[str, int] = field(default_factory=dict)


class MobilityAuthority:
    """Mobility operations of ``tas`` through the mobility contract ``mobility``."""

    def __init__(self, tas: TrustedAuthority, mobility: FogFedMobility) -> None:
        if mobility.fed.address != tas.contract_address:
            raise TasError(f"mobility contract {mobility.address} serves FogFed {mobility.fed.address}, "
                           f"not this TAS's {tas.contract_address}")
        self.tas, self.mobility = tas, mobility

    def move(self, request: MoveRequest) -> MoveResult:
        """Hand a node over to another federation, verified by its on-chain record (no device re-key)."""
        if not isinstance(request, MoveRequest):
            raise InputError("move needs a MoveRequest", "parse it with MoveRequest.from_json")
        tas, state = self.tas, self.tas._state
        request.verify(chain_id=tas.chain_id, contract=tas.contract_address, mobility=self.mobility.address)
        if request.nonce.hex() in state["nonces"]:
            raise MoveRejected("this move request was already used (replay)", "create a fresh request")
        dest = state["federations"].get(str(request.to_federation))
        if dest is None:
            raise TasError(f"federation {request.to_federation} was not created by this TAS",
                           "create it first (fogfed tas federation create)")
        check = self.mobility.check_handover(request.address, request.to_federation, request.enc_public_key)
        if not check.ok:
            raise HandoverRefused(request.address, check.reason)
        if request.address not in state["members"]:
            raise HandoverRefused(request.address, "the record was not made by this TAS")
        gas: dict[str, int] = {}
        newcomer_rekey = self._keep_out_of_the_past(request.to_federation, gas)
        moved = self.mobility.move_member(self.tas.account, request.address, request.to_federation,
                                          request.enc_public_key)
        gas["moveMember"] = moved.gas_used
        old_epoch = moved.event("EpochAdvanced").args["epoch"]
        state["members"][request.address].update(federation_id=request.to_federation, location=dest["location"],
                                                 service=dest["service"])
        state["nonces"] = (state["nonces"] + [request.nonce.hex()])[-MAX_NONCES:]
        tas._save()
        old_rekey = tas._rekey_to(check.from_federation, old_epoch)
        gas["deliverKey (old federation)"] = old_rekey.gas_used
        epoch = self.mobility.fed.federation(request.to_federation).epoch
        gas["deliverKey"] = tas._deliver(request.to_federation, epoch, [request.address])
        history = self._grant_history(request.address, request.to_federation, epoch, gas)
        return MoveResult(request.address, check.from_federation, request.to_federation, check.level, epoch,
                          old_rekey, newcomer_rekey, history, gas)

    def enroll(self, request: EnrollmentRequest, **kwargs) -> EnrollmentResult:
        """``tas.enroll`` with the destination's backward-secrecy setting applied (join = move in from nowhere)."""
        fid = self.mobility.fed.federation_by_attributes(request.location, request.service) \
            if isinstance(request, EnrollmentRequest) else 0
        gas: dict[str, int] = {}
        if fid:
            request.verify(chain_id=self.tas.chain_id, contract=self.tas.contract_address)
            self._keep_out_of_the_past(fid, gas)
        result = self.tas.enroll(request, **kwargs)
        self._grant_history(result.node, result.federation_id, result.epoch, gas)
        return EnrollmentResult(result.node, result.federation_id, result.federation_created, result.epoch,
                                result.attributes, result.verdict, {**result.gas, **gas})

    def set_backward_secrecy(self, federation_id: int, enabled: bool) -> int:
        """Change a federation's setting on chain (auditable event); gas used."""
        if str(federation_id) not in self.tas._state["federations"]:
            raise TasError(f"federation {federation_id!r} was not created by this TAS")
        return self.mobility.set_backward_secrecy(self.tas.account, federation_id, enabled).gas_used

    def _keep_out_of_the_past(self, federation_id: int, gas: dict[str, int]) -> RekeyResult | None:
        """Backward secrecy on and members present: bump the epoch and re-key them before the newcomer arrives."""
        if not self.mobility.backward_secrecy(federation_id) or not self.tas._active_members(federation_id):
            return None
        result = self.tas.rekey(federation_id)
        gas["bumpEpoch + deliverKey (destination)"] = result.gas_used
        return result

    def _grant_history(self, node: str, federation_id: int, epoch: int, gas: dict[str, int]) -> tuple[int, int] | None:
        """Backward secrecy off: one key for epochs 0..epoch-1 of the destination, sealed on chain."""
        if epoch == 0 or self.mobility.backward_secrecy(federation_id):
            return None
        tas, rec = self.tas, self.tas._state["members"][node]
        base = [a for a in node_attributes(rec["location"], rec["service"], federation_id, epoch)
                if a.startswith(("loc:", "svc:"))]
        sk = abe.keygen(tas.public_key, tas._msk, history_attributes(base, federation_id, 0, epoch - 1))
        sealed = seal_history_key(self.tas.account, bytes.fromhex(rec["enc_public_key"]), sk,
                                  chain_id=tas.chain_id, mobility=self.mobility.address, node=node,
                                  federation_id=federation_id, from_epoch=0, to_epoch=epoch - 1)
        gas["deliverHistoryKey"] = self.mobility.deliver_history_key(self.tas.account, node, federation_id, 0,
                                                                     epoch - 1, sealed).gas_used
        return (0, epoch - 1)
