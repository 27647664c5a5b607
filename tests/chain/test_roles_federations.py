"""Roles, settings and federations (paper Algorithm 6) against every kind of caller."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from fogfed.chain import ContractRevert, attributes_hash
from tests.chain.helpers import new_account, unique_attrs

NON_TAS = ["member", "other", "removed", "outsider"]


@pytest.mark.parametrize("kind", NON_TAS)
def test_only_tas_creates_federations(cast, kind):
    caller = cast.callers()[kind]
    with pytest.raises(ContractRevert) as err:
        cast.fed.create_federation(caller, *unique_attrs(), b"\x01" * 32)
    assert err.value.error_name == "NotTas" and err.value.error_args == {}
    assert caller.address in err.value.sentence  # msg.sender, named from the sending account


def test_create_federation_event_and_record(fed, tas):
    loc, svc = unique_attrs()
    ffpk = bytes(range(256)) * 5
    before = fed.settings().federation_count
    result = fed.create_federation(tas, loc, svc, ffpk)
    fid = result.value
    assert fid == before + 1 == fed.settings().federation_count
    event = result.event("FederationCreated")
    assert event.args == {"federationId": fid, "attrsHash": attributes_hash(loc, svc), "parent": 0,
                          "location": loc, "service": svc, "publicKeyCommitment": keccak(ffpk)[:24],
                          "publicKey": ffpk}
    record = fed.federation(fid)
    assert (record.public_key_commitment, record.parent, record.epoch) == (keccak(ffpk)[:24], 0, 0)
    assert fed.federation_by_attributes(loc, svc) == fid
    assert fed.federation_public_key(fid) == ffpk


def test_child_federation_and_unknown_parent(fed, tas):
    parent = fed.create_federation(tas, *unique_attrs(), b"\x01").value
    child = fed.create_federation(tas, *unique_attrs(), b"\x02", parent=parent)
    assert fed.federation(child.value).parent == parent
    missing = fed.settings().federation_count + 5
    with pytest.raises(ContractRevert) as err:
        fed.create_federation(tas, *unique_attrs(), b"\x03", parent=missing)
    assert err.value.error_name == "UnknownFederation" and err.value.error_args == {"federationId": missing}


def test_duplicate_attributes_refused(fed, tas):
    loc, svc = unique_attrs()
    fid = fed.create_federation(tas, loc, svc, b"\x01").value
    with pytest.raises(ContractRevert) as err:
        fed.create_federation(tas, loc, svc, b"\x02")
    assert err.value.error_name == "FederationExists"
    assert err.value.error_args == {"attrsHash": attributes_hash(loc, svc), "federationId": fid}
    assert fed.federation_by_attributes(loc, "other-" + svc) == 0


@pytest.mark.parametrize("location,service,key,error", [
    ("", "svc", b"\x01", "InvalidAttribute"),
    ("l" * 65, "svc", b"\x01", "InvalidAttribute"),
    ("loc", "", b"\x01", "InvalidAttribute"),
    ("loc", "svc", b"", "InvalidPublicKey"),
    ("loc", "svc", b"\x01" * 8193, "InvalidPublicKey"),
])
def test_contract_checks_federation_input(fed, tas, location, service, key, error):
    # Straight to the contract (the wrapper would refuse first): the contract trusts no caller.
    with pytest.raises(ContractRevert) as err:
        fed._transact(tas, "createFederation", location, service, key, 0)
    assert err.value.error_name == error


def test_unknown_federation_view(fed):
    with pytest.raises(ContractRevert) as err:
        fed.federation(4_000_000_000)
    assert err.value.error_name == "UnknownFederation"


@pytest.mark.parametrize("kind", NON_TAS)
def test_only_tas_bumps_epoch(cast, kind):
    with pytest.raises(ContractRevert) as err:
        cast.fed.bump_epoch(cast.callers()[kind], cast.fid, 0, b"\x07" * 32)
    assert err.value.error_name == "NotTas"


def test_bump_epoch(cast):
    before = cast.fed.federation(cast.fid).epoch
    with pytest.raises(ContractRevert) as err:  # built at an older epoch: a removal came in between
        cast.fed.bump_epoch(cast.tas, cast.fid, before + 1, b"\x07" * 32)
    assert err.value.error_name == "StaleEpoch"
    result = cast.fed.bump_epoch(cast.tas, cast.fid, before, b"\x07" * 32)
    assert result.value == before + 1 == cast.fed.federation(cast.fid).epoch
    assert result.event("EpochAdvanced").args == {"federationId": cast.fid, "epoch": before + 1, "reason": 2}
    assert result.event("TreeRefreshed").args == {"federationId": cast.fid, "bundle": b"\x07" * 32}
    with pytest.raises(ContractRevert) as err:
        cast.fed.bump_epoch(cast.tas, 0, 0, b"\x07" * 32)
    assert err.value.error_name == "UnknownFederation"
    with pytest.raises(Exception, match="bundle digest"):  # refused before sending
        cast.fed.bump_epoch(cast.tas, cast.fid, before + 1, b"\x00" * 32)


@pytest.mark.parametrize("kind", NON_TAS)
def test_only_admin_manages_operators(cast, kind):
    with pytest.raises(ContractRevert) as err:
        cast.fed.set_operator(cast.callers()[kind], cast.outsider.address, True)
    assert err.value.error_name == "NotAdmin"


def test_operator_grant_and_revoke(chain, cast):
    fed, op = cast.fed, new_account(chain, cast.tas)
    granted = fed.set_operator(cast.tas, op.address, True)
    assert granted.event("OperatorChanged").args == {"account": op.address, "enabled": True, "by": cast.tas.address}
    assert fed.is_operator(op.address)
    fid = fed.create_federation(op, *unique_attrs(), b"\x01").value
    assert fed.set_operator(cast.tas, op.address, True).events == []  # no change, no event
    fed.set_operator(cast.tas, op.address, False)
    assert not fed.is_operator(op.address)
    with pytest.raises(ContractRevert) as err:
        fed.bump_epoch(op, fid, fed.federation(fid).epoch, b"\x07" * 32)
    assert err.value.error_name == "NotTas"


def test_admin_two_step_handover(chain, tas):
    from fogfed.chain import deploy

    fed = deploy(chain, tas)
    heir, stranger = new_account(chain, tas), new_account(chain, tas)
    with pytest.raises(ContractRevert) as err:
        fed.accept_admin(heir)
    assert err.value.error_name == "NotPendingAdmin"
    started = fed.begin_admin_transfer(tas, heir.address)
    assert started.event("AdminTransferStarted").args == {"admin": tas.address, "pendingAdmin": heir.address}
    assert fed.settings().admin == tas.address and fed.settings().pending_admin == heir.address
    with pytest.raises(ContractRevert) as err:
        fed.accept_admin(stranger)
    assert err.value.error_name == "NotPendingAdmin"
    done = fed.accept_admin(heir)
    assert done.event("AdminTransferred").args == {"previousAdmin": tas.address, "newAdmin": heir.address}
    assert fed.settings().admin == heir.address and fed.settings().pending_admin is None
    with pytest.raises(ContractRevert) as err:
        fed.set_operator(tas, stranger.address, True)
    assert err.value.error_name == "NotAdmin"
    fed.set_operator(heir, stranger.address, True)
    # cancelling: name someone, then clear it
    fed.begin_admin_transfer(heir, stranger.address)
    fed.begin_admin_transfer(heir, None)
    with pytest.raises(ContractRevert):
        fed.accept_admin(stranger)


def test_configure(chain, tas):
    from fogfed.chain import deploy

    fed = deploy(chain, tas)
    result = fed.configure(tas, 5, 600)
    assert result.event("SettingsChanged").args == {"falseClaimThreshold": 5, "maxCacheLifetime": 600,
                                                    "by": tas.address}
    s = fed.settings()
    assert (s.false_claim_threshold, s.max_cache_lifetime) == (5, 600)
    for threshold, lifetime, error in [(0, 600, "InvalidThreshold"), (3, 0, "InvalidCacheLifetime")]:
        with pytest.raises(ContractRevert) as err:
            fed.configure(tas, threshold, lifetime)
        assert err.value.error_name == error
    with pytest.raises(ContractRevert) as err:
        fed.configure(new_account(chain, tas), 3, 60)
    assert err.value.error_name == "NotTas"
