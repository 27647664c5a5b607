"""Members (paper Algorithms 7, 10, 3): enrolment, removal, key delivery, false claims, verification."""

from __future__ import annotations

import pytest

from fogfed.chain import ContractRevert, InvalidArgument, attributes_hash, deploy
from tests.chain.helpers import enc_key, new_account

NON_TAS = ["member", "other", "removed", "outsider"]


@pytest.mark.parametrize("kind", NON_TAS)
def test_only_tas_adds_and_removes(chain, cast, kind):
    caller, newcomer = cast.callers()[kind], new_account(chain, cast.tas, 0)
    for call in (lambda: cast.fed.add_member(caller, cast.fid, newcomer.address, enc_key(newcomer)),
                 lambda: cast.fed.add_members(caller, cast.fid, [newcomer.address], [enc_key(newcomer)]),
                 lambda: cast.fed.remove_member(caller, cast.member.address),
                 lambda: cast.fed.deliver_key(caller, cast.member.address, cast.fid, 0, b"\x01")):
        with pytest.raises(ContractRevert) as err:
            call()
        assert err.value.error_name == "NotTas"
    assert cast.fed.is_active_member(cast.member.address, cast.fid)


def test_add_member_records_and_event(chain, cast):
    node = new_account(chain, cast.tas, 0)
    result = cast.fed.add_member(cast.tas, cast.fid, node.address, enc_key(node))
    assert result.event("MemberAdded").args == {"node": node.address, "federationId": cast.fid,
                                                "encryptionKey": enc_key(node), "generation": 1}
    m = cast.fed.member(node.address)
    assert (m.federation_id, m.active, m.false_claims, m.generation, m.encryption_key) == \
        (cast.fid, True, 0, 1, enc_key(node))
    assert cast.fed.is_active_member(node.address, cast.fid)
    assert not cast.fed.is_active_member(node.address, cast.other_fid)


def test_add_member_refusals(chain, cast):
    node = new_account(chain, cast.tas, 0)
    cases = [
        ((cast.fid, cast.member.address, enc_key(cast.member)), "AlreadyMember"),
        ((cast.other_fid, cast.member.address, enc_key(cast.member)), "AlreadyMember"),
        ((10**9, node.address, enc_key(node)), "UnknownFederation"),
        ((cast.fid, "0x" + "00" * 20, enc_key(node)), "ZeroAddress"),
        ((cast.fid, node.address, b"\x00" * 32), "InvalidEncryptionKey"),
    ]
    for fn_args, error in cases:
        with pytest.raises(ContractRevert) as err:
            cast.fed._transact(cast.tas, "addMember", *fn_args)
        assert err.value.error_name == error, fn_args


def test_batch_add_is_all_or_nothing(chain, cast):
    nodes = [new_account(chain, cast.tas, 0) for _ in range(3)]
    with pytest.raises(ContractRevert) as err:  # the last one is already a member
        cast.fed.add_members(cast.tas, cast.fid, [n.address for n in nodes] + [cast.member.address],
                             [enc_key(n) for n in nodes] + [enc_key(cast.member)])
    assert err.value.error_name == "AlreadyMember"
    assert not any(cast.fed.member(n.address).active for n in nodes)
    with pytest.raises(ContractRevert) as err:
        cast.fed._transact(cast.tas, "addMembers", cast.fid, [nodes[0].address], [])
    assert err.value.error_name == "LengthMismatch"
    result = cast.fed.add_members(cast.tas, cast.fid, [n.address for n in nodes], [enc_key(n) for n in nodes])
    assert result.value == 3
    assert [e.args["node"] for e in result.events if e.name == "MemberAdded"] == [n.address for n in nodes]


def test_remove_keeps_history_and_advances_epoch(chain, cast):
    fed, before = cast.fed, cast.fed.federation(cast.fid).epoch
    result = fed.remove_member(cast.tas, cast.member.address, "served tampered copies — twice")
    assert result.value == before + 1 == fed.federation(cast.fid).epoch
    assert [e.name for e in result.events][:2] == ["RemovalNoted", "MemberRemoved"]
    assert result.event("RemovalNoted").args == {"node": cast.member.address, "note": "served tampered copies — twice"}
    assert result.event("MemberRemoved").args == {"node": cast.member.address, "federationId": cast.fid,
                                                  "reason": 1, "by": cast.tas.address}
    assert result.event("EpochAdvanced").args == {"federationId": cast.fid, "epoch": before + 1, "reason": 1}
    m = fed.member(cast.member.address)
    assert (m.federation_id, m.active, m.generation) == (cast.fid, False, 1)
    for who in (cast.member, cast.outsider):
        with pytest.raises(ContractRevert) as err:
            fed.remove_member(cast.tas, who.address)
        assert err.value.error_name == "NotActiveMember"
    # only the TAS re-enrols, and it starts a new generation
    again = fed.add_member(cast.tas, cast.other_fid, cast.member.address, enc_key(cast.member))
    assert again.event("MemberAdded").args["generation"] == 2
    assert fed.is_active_member(cast.member.address, cast.other_fid)


def test_deliver_key(cast):
    fed, epoch = cast.fed, cast.fed.federation(cast.fid).epoch
    box = b"\x5a" * 700
    result = fed.deliver_key(cast.tas, cast.member.address, cast.fid, epoch, box)
    assert result.event("KeyDelivered").args == {"node": cast.member.address, "federationId": cast.fid,
                                                 "epoch": epoch, "sealedKey": box}
    cases = [((cast.removed.address, cast.fid, epoch, box), "NotActiveMember"),
             ((cast.outsider.address, cast.fid, epoch, box), "NotActiveMember"),
             ((cast.other.address, cast.fid, epoch, box), "NotFederationMember"),
             ((cast.member.address, cast.fid, epoch + 1, box), "StaleEpoch"),
             ((cast.member.address, cast.fid, epoch, b""), "InvalidSealedKey"),
             ((cast.member.address, cast.fid, epoch, b"\x01" * 8193), "InvalidSealedKey")]
    for fn_args, error in cases:
        with pytest.raises(ContractRevert) as err:
            fed._transact(cast.tas, "deliverKey", *fn_args)
        assert err.value.error_name == error, fn_args


def test_observed_false_claims_reset_with_a_new_membership(chain, tas):
    fed = deploy(chain, tas)
    fed.configure(tas, 1, 3600)
    fid = fed.create_federation(tas, "a", "b", b"\x01").value
    other = fed.create_federation(tas, "c", "d", b"\x01").value
    suspect, uploader = new_account(chain, tas), new_account(chain, tas)
    fed.add_member(tas, fid, uploader.address, enc_key(uploader))
    fed.add_member(tas, other, suspect.address, enc_key(suspect))
    file_id = fed.register_file(uploader, fid, b"\x05" * 32, b"\x06" * 32, b"\x07" * 32, "ff:1", 0).value
    assert fed.record_access(suspect, file_id).event("MemberRemoved").args["reason"] == 2
    fed.add_member(tas, other, suspect.address, enc_key(suspect))  # re-enrolled: a clean slate
    assert fed.member(suspect.address).false_claims == 0
    assert fed.record_access(suspect, file_id).event("FalseClaimCounted").args["count"] == 1


@pytest.mark.parametrize("kind,expected", [("member", True), ("other", False), ("removed", False),
                                           ("outsider", False), ("tas", False)])
def test_verify_member_view_and_transaction(cast, kind, expected):
    node = cast.callers()[kind]
    assert cast.fed.member_has_attributes(node.address, cast.location, cast.service) is expected
    result = cast.fed.verify_member(cast.outsider, node.address, cast.location, cast.service)
    assert result.value is expected
    assert result.event("MemberVerified").args == {"node": node.address,
                                                   "attrsHash": attributes_hash(cast.location, cast.service),
                                                   "result": expected, "verifier": cast.outsider.address}


def test_unknown_attributes_never_verify(cast):
    assert not cast.fed.member_has_attributes(cast.member.address, cast.location, "no-such-service")


def test_removal_note_is_bounded_on_chain_and_checked_locally(chain, cast):
    fed, node = cast.fed, cast.member.address
    for bad in ("x" * 257, "\u00e9" * 129, "two\nlines", 7):
        with pytest.raises(InvalidArgument):
            fed.remove_member(cast.tas, node, bad)
    # a raw transaction past the local check: the contract's own bound
    with pytest.raises(ContractRevert) as err:
        fed._transact(cast.tas, "removeMember", node, "x" * 257)
    assert err.value.error_name == "InvalidNote" and list(err.value.error_args.values()) == [257]
    assert fed.is_active_member(node, cast.fid)
    result = fed.remove_member(cast.tas, node, "\u00e9" * 128)  # exactly 256 bytes
    assert result.event("RemovalNoted").args["note"] == "\u00e9" * 128 and result.gas_used <= 60_000
