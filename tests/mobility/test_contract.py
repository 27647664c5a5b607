"""FogFedMobility on the in-process chain: handover check through the tree, moves, settings, as attacks."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fogfed.chain import ContractRevert, FogFed, InvalidArgument, NotFogFedContract, connect, deploy
from fogfed.chain.mobility import FogFedMobility, deploy_mobility

FFPK = b"\x01" * 64


@pytest.fixture(scope="module")
def world():
    chain = connect(None)
    tas, n1, n2, n3, outsider = chain.dev_accounts()[:5]
    fed = deploy(chain, tas)
    mob = deploy_mobility(chain, tas, fed)
    # region 1 over federations 2 and 3; 4 is a child of 2; 5 is another root (no common ancestor)
    ids = {}
    for name, loc, parent in (("R", "region", 0), ("A", "a", 1), ("B", "b", 1), ("D", "d", 2), ("X", "x", 0)):
        ids[name] = fed.create_federation(tas, loc, "health", FFPK, parent).value
    keys = {acct.address: os.urandom(32) for acct in (n1, n2, n3)}
    for acct in (n1, n2, n3):
        fed.add_member(tas, ids["A"], acct.address, keys[acct.address])
    return chain, fed, mob, ids, keys, (tas, n1, n2, n3, outsider)


def test_record_found_in_the_local_or_a_higher_federation(world):
    chain, fed, mob, ids, keys, (tas, n1, *_ ) = world
    key = keys[n1.address]
    assert (mob.check_handover(n1.address, ids["B"], key).ok, mob.check_handover(n1.address, ids["B"], key).level) \
        == (True, 1)  # sibling: found in the parent region
    assert mob.check_handover(n1.address, ids["D"], key).level == 1  # child of A: A is D's parent
    assert mob.check_handover(n1.address, ids["R"], key).level == 0  # the region itself holds A
    assert mob.check_handover(n1.address, ids["X"], key).reason == "no common ancestor federation in reach"


def test_refusals_name_the_reason(world):
    chain, fed, mob, ids, keys, (tas, n1, n2, n3, outsider) = world
    assert mob.check_handover(outsider.address, ids["B"], os.urandom(32)).status == 1
    assert mob.check_handover(n1.address, ids["B"], os.urandom(32)).status == 3
    assert mob.check_handover(n1.address, 99, keys[n1.address]).status == 5
    assert mob.check_handover(n1.address, ids["A"], keys[n1.address]).status == 6
    with pytest.raises(ContractRevert, match="refused: the presented encryption key") as err:
        mob.move_member(tas, n1.address, ids["B"], os.urandom(32))
    assert err.value.error_name == "HandoverRefused" and "enroll from scratch" in err.value.hint


def test_only_tas_operators_move(world):
    chain, fed, mob, ids, keys, (tas, n1, n2, n3, outsider) = world
    with pytest.raises(ContractRevert) as err:
        mob.move_member(n1, n1.address, ids["B"], keys[n1.address])
    assert err.value.error_name == "NotTas"
    with pytest.raises(ContractRevert, match="not a TAS operator"):
        mob.move_member(outsider, n1.address, ids["B"], keys[n1.address])


def test_move_closes_the_old_membership_and_keeps_the_device_key(world):
    chain, fed, mob, ids, keys, (tas, n1, n2, n3, outsider) = world
    epoch_a = fed.federation(ids["A"]).epoch
    res = mob.move_member(tas, n2.address, ids["B"], keys[n2.address])
    assert res.value["fromFederation"] == ids["A"] and res.value["toFederation"] == ids["B"] and res.value["level"] == 1
    assert [e.name for e in res.events] == ["RemovalNoted", "MemberRemoved", "EpochAdvanced", "MemberAdded",
                                            "MemberMoved"]
    assert res.event("RemovalNoted").args["note"] == ""  # the move is described by MemberMoved
    assert fed.federation(ids["A"]).epoch == epoch_a + 1  # forward secrecy: the old federation re-keys
    m = fed.member(n2.address)
    assert (m.federation_id, m.active, m.encryption_key, m.generation) == (ids["B"], True, keys[n2.address], 2)
    assert mob.events(["MemberMoved"], node=n2.address)[0].args["toFederation"] == ids["B"]
    assert [e.args["federationId"] for e in fed.events(names=["MemberAdded"]) if e.args["node"] == n2.address] \
        == [ids["A"], ids["B"]]  # history kept


def test_removed_and_suspected_members_are_refused(world):
    chain, fed, mob, ids, keys, (tas, n1, n2, n3, outsider) = world
    x_node = chain.dev_accounts()[8]  # n3 asks for a file of X: one false claim the contract observed
    fed.add_member(tas, ids["X"], x_node.address, os.urandom(32))
    x_file = fed.register_file(x_node, ids["X"], b"\x11" * 32, b"\x12" * 32, b"\x13" * 32, "ff:5", 0).value
    fed.record_access(n3, x_file)
    assert mob.check_handover(n3.address, ids["B"], keys[n3.address]).status == 7
    fed.remove_member(tas, n3.address)
    assert mob.check_handover(n3.address, ids["B"], keys[n3.address]).status == 2


def test_move_needs_the_operator_role_in_fogfed(world):
    chain, fed, mob, ids, keys, (tas, *_ ) = world
    lone = deploy_mobility(chain, tas, fed, grant=False)
    n = chain.dev_accounts()[6]
    key = os.urandom(32)
    fed.add_member(tas, ids["A"], n.address, key)
    with pytest.raises(ContractRevert, match="not a FogFed operator") as err:
        lone.move_member(tas, n.address, ids["B"], key)
    assert "set_operator" in err.value.hint
    assert fed.member(n.address).federation_id == ids["A"]


def test_the_contract_has_no_backward_secrecy_switch_and_no_history_keys():
    """Covers give backward secrecy always: nothing on chain can promise otherwise or hand out the past."""
    from fogfed.chain.artifacts import load_artifact

    abi = load_artifact("FogFedMobility")["abi"]
    names = {(x["type"], x.get("name")) for x in abi if x["type"] in ("function", "event", "error")}
    assert {n for t, n in names if t == "function" and n[0].islower()} == {"checkHandover", "moveMember", "fogfed"}
    assert {n for t, n in names if t == "event"} == {"MemberMoved"}
    assert not {n for _, n in names} & {"setBackwardSecrecy", "backwardSecrecy", "deliverHistoryKey",
                                        "BackwardSecrecySet", "HistoryKeyDelivered", "InvalidHistoryKey"}


def test_at_checks_code_and_the_fogfed_it_serves(world):
    chain, fed, mob, ids, keys, (tas, *_ ) = world
    assert FogFedMobility.at(chain, mob.address, fed).address == mob.address
    with pytest.raises(NotFogFedContract):
        FogFedMobility.at(chain, fed.address, fed)
    other = deploy(chain, tas)
    with pytest.raises(NotFogFedContract, match="serves FogFed"):
        FogFedMobility.at(chain, mob.address, other)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(to=st.one_of(st.integers(), st.text(max_size=3), st.none()), key=st.binary(max_size=40))
def test_malformed_arguments_are_refused_before_sending(world, to, key):
    chain, fed, mob, ids, keys, (tas, n1, *_ ) = world
    if isinstance(to, int) and 0 <= to < 2**32 and len(key) == 32:
        return
    with pytest.raises(InvalidArgument):
        mob.check_handover(n1.address, to, key)
