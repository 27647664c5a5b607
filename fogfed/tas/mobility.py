"""The TAS side of mobility: handover verified by on-chain records, join with backward secrecy.

Move (the second source paper's handover): the node's signed MoveRequest is
checked, then the mobility contract's ``checkHandover`` view looks the node's
record up from the destination towards the root. On success one
``moveMember`` transaction closes the old membership (its leaf of the old
federation's member tree is revoked and that epoch advances: forward secrecy,
nobody re-keyed) and opens the new one with the same device keys (a fresh
leaf of the destination's tree); the TAS delivers the node one key for the
destination. On failure nothing changes on chain and :class:`HandoverRefused`
tells the node to make a fresh identity and enroll.

Backward secrecy comes with the covers: the node's new leaf was unassigned
when the destination's earlier files were uploaded, so no earlier cover holds
it. There is no switch to turn it off.

This module works through the TAS's public methods only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fogfed.chain.mobility import FogFedMobility
from fogfed.errors import InputError
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.protocol.move import MoveRejected, MoveRequest
from fogfed.tas.authority import TasError, TrustedAuthority
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
    old_rekey: RekeyResult | None  # None: the old leaf is revoked on chain, nobody is re-keyed
    newcomer_rekey: RekeyResult | None  # None: backward secrecy needs no re-key with covers
    history_epochs: tuple[int, int] | None  # None (no history keys with covers)
    gas: dict[str, int] = field(default_factory=dict)


class MobilityAuthority:
    """Mobility operations of ``tas`` through the mobility contract ``mobility``.

    The contract is recorded as the TAS's own (:meth:`TrustedAuthority.use_mobility`) on the first
    move, secrecy change or join through this object; a TAS refuses a second, different one.
    """

    def __init__(self, tas: TrustedAuthority, mobility: FogFedMobility) -> None:
        tas.check_mobility(mobility)
        self.tas, self.mobility = tas, mobility

    def move(self, request: MoveRequest) -> MoveResult:
        """Hand a node over to another federation, verified by its on-chain record (no device re-key)."""
        if not isinstance(request, MoveRequest):
            raise InputError("move needs a MoveRequest", "parse it with MoveRequest.from_json")
        tas = self.tas
        request.verify(chain_id=tas.chain_id, contract=tas.contract_address, mobility=self.mobility.address)
        if tas.nonce_used(request.nonce):
            raise MoveRejected("this move request was already used (replay)", "create a fresh request")
        if tas.created_federation(request.to_federation) is None:
            raise TasError(f"federation {request.to_federation} was not created by this TAS",
                           "create it first (fogfed tas federation create)")
        check = self.mobility.check_handover(request.address, request.to_federation, request.enc_public_key)
        if not check.ok:
            raise HandoverRefused(request.address, check.reason)
        if tas.enrolled_member(request.address) is None:
            raise HandoverRefused(request.address, "the record was not made by this TAS")
        tas.use_mobility(self.mobility)
        gas: dict[str, int] = {}
        refreshed = tas.ensure_room(request.to_federation)  # a full tree: one refresh first, the move never fails
        if refreshed is not None:
            gas["bumpEpoch"] = refreshed.gas_used
        moved = self.mobility.move_member(tas.account, request.address, request.to_federation,
                                          request.enc_public_key)
        gas["moveMember"] = moved.gas_used
        tas.record_move(request.address, request.to_federation, request.nonce)
        epoch = self.mobility.fed.federation(request.to_federation).epoch
        gas["deliverKey"] = tas.deliver_keys(request.to_federation, epoch, [request.address])
        return MoveResult(request.address, check.from_federation, request.to_federation, check.level, epoch,
                          None, None, None, gas)

    def enroll(self, request: EnrollmentRequest, **kwargs) -> EnrollmentResult:
        """``tas.enroll`` with this mobility contract recorded in the TAS's settings."""
        self.tas.use_mobility(self.mobility)
        return self.tas.enroll(request, **kwargs)
