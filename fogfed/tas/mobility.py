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

from fogfed._faults import step
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
    gas: dict[str, int] = field(default_factory=dict)
    status: str = "moved"  # "finished": an interrupted earlier run completed now; "already moved": nothing sent


class MobilityAuthority:
    """Mobility operations of ``tas`` through the mobility contract ``mobility``.

    The contract is recorded as the TAS's own (:meth:`TrustedAuthority.use_mobility`) on the first
    move, secrecy change or join through this object; a TAS refuses a second, different one.
    """

    def __init__(self, tas: TrustedAuthority, mobility: FogFedMobility) -> None:
        tas.check_mobility(mobility)
        self.tas, self.mobility = tas, mobility

    def move(self, request: MoveRequest) -> MoveResult:
        """Hand a node over to another federation, verified by its on-chain record (no device re-key).

        Idempotent and resumable: the accepted request is journalled (keyed by its nonce, spent in the
        same SQLite transaction) before the first transaction; the same request again, or ``tas sync``,
        finishes a move interrupted at any step (:meth:`TrustedAuthority.finish_move`: each step checked
        on chain first, nothing sent twice), and a completed one is reported ("already moved") while
        the node is still where it moved. Any other reuse of a nonce is a replay.
        """
        if not isinstance(request, MoveRequest):
            raise InputError("move needs a MoveRequest", "parse it with MoveRequest.from_json")
        tas = self.tas
        key = request.nonce.hex()
        with tas.locked():
            tas.fed.chain.settle(tas.account)  # a moveMember a killed run left in the mempool is mined first
            entry = tas.journal.get(key)
            if entry is None:
                entry = self._accept(request)
                status = "moved"
            elif entry.kind != "move" or entry.data.get("request") != request.to_json():
                raise MoveRejected("this move request was already used (replay)", "create a fresh request")
            elif entry.done:
                return self._completed(request, entry)
            else:
                status = "finished"  # an earlier run accepted it and was interrupted
            step("move:journal")
            try:
                gas, epoch = tas.finish_move(entry)
            except TasError:
                if "refused" in entry.data:
                    raise HandoverRefused(request.address, entry.data["refused"]) from None
                raise
        d = entry.data
        return MoveResult(request.address, d["from_federation"], request.to_federation, d["level"], epoch,
                          None, gas, status)

    def _accept(self, request: MoveRequest):
        """Check a new request (signature, freshness, replay, the contract's handover view) and journal it."""
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
        member = tas.fed.member(request.address)
        return tas.journal.begin(request.nonce.hex(), "move", {
            "address": request.address, "from_federation": check.from_federation,
            "to_federation": request.to_federation, "level": check.level,
            "enc_public_key": request.enc_public_key.hex(), "generation": member.generation,
            "mobility": self.mobility.address, "request": request.to_json()})

    def _completed(self, request: MoveRequest, entry) -> MoveResult:
        """A finished move asked for again: reported while the node is still the member it made, else a replay."""
        d = entry.data
        if "refused" in d:
            raise HandoverRefused(request.address, d["refused"])
        member = self.tas.fed.member(request.address)
        if not (member.active and member.federation_id == request.to_federation
                and member.generation == d["generation"] + 1):
            raise MoveRejected("this move request was already used (replay)", "create a fresh request")
        epoch = self.tas.fed.federation(request.to_federation).epoch
        return MoveResult(request.address, d["from_federation"], request.to_federation, d["level"], epoch,
                          None, {}, "already moved")

    def enroll(self, request: EnrollmentRequest, **kwargs) -> EnrollmentResult:
        """``tas.enroll`` with this mobility contract recorded in the TAS's settings."""
        self.tas.use_mobility(self.mobility)
        return self.tas.enroll(request, **kwargs)
