"""Records of moved and departed nodes stay visible to the auditor's rebuild from events."""

from __future__ import annotations

from fogfed import audit
from fogfed.node.mobility import move_request


def test_auditor_sees_the_closed_old_membership_and_the_new_one(world, tmp_path):
    mover = world.named["mover"]
    world.authority.move(move_request(mover, world.mobility, world.feds["B"]))
    world.tas.remove(world.named["a1"].address)  # departed for good
    state = audit.replay(world.chain.w3, world.tas.contract_address, tmp_path / "audit.sqlite").state
    kinds = [(h["kind"], h.get("federation_id")) for h in state["members"][mover.address]["history"]
             if h["kind"] in ("joined", "removed")]
    assert kinds[0] == ("joined", world.feds["A"]) and kinds[-1] == ("joined", world.feds["B"])
    assert [k for k, _ in kinds] == ["joined", "removed", "joined"]
    departed = state["members"][world.named["a1"].address]
    assert departed["history"][-1]["kind"] == "removed"
    assert world.mobility.events(["MemberMoved"], node=mover.address)[0].args["fromFederation"] == world.feds["A"]
