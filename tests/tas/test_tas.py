"""The TAS on the in-process chain: setup, keystore, enrollment checks as attacks, removal, re-keying."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fogfed.chain import ContractRevert, FogFed, connect
from fogfed.errors import FogfedError, InputError
from fogfed.keys import NodeIdentity, WrongPassphrase
from fogfed.keys.cover import key_path
from fogfed.keys.keystore import KdfParams
from fogfed.protocol.attributes import FIRST_HEIGHT
from fogfed.protocol.enrollment import EnrollmentRejected, EnrollmentRequest
from fogfed.protocol.files import cid_of_file_id
from fogfed.protocol.keydelivery import KeyDeliveryError, open_node_key, referenced_digest
from fogfed.storage import EmbeddedStore
from fogfed.tas import OperatorApproval, TasError, TrustedAuthority, Verdict

LIGHT = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
PASS = "tas passphrase"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    chain = connect(None)
    home = tmp_path_factory.mktemp("tas")
    tas = TrustedAuthority.init(home, chain, PASS, account=chain.dev_accounts()[0], kdf=LIGHT)
    return chain, home, tas


def request(tas, identity=None, location="riyadh", service="health", **kw):
    identity = identity or NodeIdentity.generate()
    return EnrollmentRequest.create(identity, location, service, chain_id=tas.chain_id,
                                    contract=tas.contract_address, **kw), identity


def test_open_with_wrong_passphrase_is_a_clear_error(world):
    chain, home, tas = world
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        TrustedAuthority.open(home, chain, "not the passphrase")
    reopened = TrustedAuthority.open(home, chain, PASS)
    assert reopened.public_key == tas.public_key and reopened.address == tas.address


def test_init_refuses_to_overwrite_and_master_key_is_not_in_plain_text(world):
    chain, home, tas = world
    with pytest.raises(TasError, match="already initialised"):
        TrustedAuthority.init(home, chain, PASS, account=chain.dev_accounts()[0], kdf=LIGHT)
    msk = tas._msk.to_bytes()
    for f in home.iterdir():
        content = f.read_bytes()
        assert msk not in content and msk.hex().encode() not in content


def test_enrollment_creates_federation_and_delivers_a_sealed_key(world):
    chain, home, tas = world
    req, ident = request(tas, location="Medina", service="Traffic")
    res = tas.enroll(req, approve=True)
    fid = res.federation_id
    assert res.federation_created and res.leaf == 0
    assert res.attributes == tuple(sorted([f"ff:{fid}", "loc:medina", "svc:traffic"]
                                          + [f"ct:{fid}:0:{n}" for n in key_path(0, FIRST_HEIGHT)]))
    block = tas.fed.peer_blocks(ident.address)[0]
    [delivery] = [e.args for e in tas.fed.events(block, block, ["KeyDelivered"], where={"node": ident.address})]
    sk = open_node_key(ident, delivery["sealedKey"], tas.public_key, chain_id=tas.chain_id,
                       contract=tas.contract_address, federation_id=res.federation_id, epoch=0,
                       is_operator=tas.fed.is_operator)
    assert set(sk.attributes) == set(res.attributes)
    # the box is bound to its recipient, epoch and sender
    with pytest.raises(KeyDeliveryError):
        open_node_key(NodeIdentity.generate(), delivery["sealedKey"], tas.public_key, chain_id=tas.chain_id,
                      contract=tas.contract_address, federation_id=res.federation_id, epoch=0,
                      is_operator=lambda a: True)
    with pytest.raises(KeyDeliveryError):
        open_node_key(ident, delivery["sealedKey"], tas.public_key, chain_id=tas.chain_id,
                      contract=tas.contract_address, federation_id=res.federation_id, epoch=1,
                      is_operator=lambda a: True)
    with pytest.raises(KeyDeliveryError, match="not a TAS operator"):
        open_node_key(ident, delivery["sealedKey"], tas.public_key, chain_id=tas.chain_id,
                      contract=tas.contract_address, federation_id=res.federation_id, epoch=0,
                      is_operator=lambda a: False)
    second = tas.enroll(request(tas, location="medina", service="traffic")[0], approve=True)
    assert second.federation_id == res.federation_id and not second.federation_created and second.leaf == 1


def test_keys_by_reference_through_the_content_store(world, tmp_path):
    """With a content store the box goes there and a 36-byte reference on chain: join + delivery <= 200,000 gas."""
    _, _, tas = world
    tas.use_store(EmbeddedStore(tmp_path / "store"))
    try:
        req, ident = request(tas, location="medina", service="water")
        res = tas.enroll(req, approve=True)
    finally:
        tas.use_store(None)
    assert res.gas["addMember"] + res.gas["deliverKey"] <= 200_000
    block = tas.fed.peer_blocks(ident.address)[0]
    [delivery] = [e.args for e in tas.fed.events(block, block, ["KeyDelivered"], where={"node": ident.address})]
    digest = referenced_digest(delivery["sealedKey"])
    assert len(delivery["sealedKey"]) == 36 and digest is not None
    box = b"".join(EmbeddedStore(tmp_path / "store").cat(cid_of_file_id(digest)))
    sk = open_node_key(ident, box, tas.public_key, chain_id=tas.chain_id, contract=tas.contract_address,
                       federation_id=res.federation_id, epoch=res.epoch, is_operator=tas.fed.is_operator)
    assert set(sk.attributes) == set(res.attributes)


def test_unapproved_request_is_refused(world):
    _, _, tas = world
    with pytest.raises(EnrollmentRejected, match="not on the allowlist"):
        tas.enroll(request(tas)[0])


def test_allowlist_accepts_only_the_listed_attributes(world, tmp_path):
    _, _, tas = world
    req, ident = request(tas, location="abha", service="health")
    allow = tmp_path / "allow.json"
    allow.write_text(json.dumps({ident.address: {"location": "abha", "service": "video"}}))
    with pytest.raises(EnrollmentRejected, match="not for location"):
        tas.enroll(req, verifier=OperatorApproval(allowlist=allow))
    allow.write_text(json.dumps({ident.address: [{"location": "ABHA", "service": "health"}]}))
    assert tas.enroll(req, verifier=OperatorApproval(allowlist=allow)).node == ident.address


def test_custom_verifier_is_used(world):
    _, _, tas = world

    class Never:
        def verify(self, request):
            return Verdict(False, "attestation missing")
    with pytest.raises(EnrollmentRejected, match="attestation missing"):
        tas.enroll(request(tas)[0], verifier=Never(), approve=True)


@pytest.mark.parametrize("change", ["location", "address", "timestamp", "enc_public_key"])
def test_altered_request_is_refused(world, change):
    _, _, tas = world
    req, _ = request(tas)
    doc = json.loads(req.to_json())
    doc[change] = {"location": "jeddah", "address": NodeIdentity.generate().address,
                   "timestamp": doc["timestamp"] - 1, "enc_public_key": "11" * 32}[change]
    with pytest.raises(EnrollmentRejected, match="not signed by"):
        tas.enroll(EnrollmentRequest.from_json(json.dumps(doc)), approve=True)


def test_replayed_stale_and_foreign_requests_are_refused(world):
    _, _, tas = world
    req, _ = request(tas, location="tabuk", service="grid")
    first = tas.enroll(req, approve=True)
    # the same request again while its member stands: nothing is sent, the enrollment is reported
    block = tas.fed.chain.block_number()
    again = tas.enroll(req, approve=True)
    assert again.gas == {} and again.federation_id == first.federation_id and "already enrolled" in again.verdict
    assert tas.fed.chain.block_number() == block
    # after a removal it is a replay: the node does not come back with an old request
    tas.remove(req.address)
    with pytest.raises(EnrollmentRejected, match="already used"):
        tas.enroll(req, approve=True)
    stale, _ = request(tas, now=time.time() - 3 * 24 * 3600)
    with pytest.raises(EnrollmentRejected, match="not within"):
        tas.enroll(stale, approve=True)
    ident = NodeIdentity.generate()
    foreign = EnrollmentRequest.create(ident, "riyadh", "health", chain_id=tas.chain_id + 1,
                                       contract=tas.contract_address)
    with pytest.raises(EnrollmentRejected, match="for chain"):
        tas.enroll(foreign, approve=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300),
                 st.dictionaries(st.text(max_size=12), st.one_of(st.integers(), st.text(max_size=20), st.none()))))
def test_garbage_requests_are_clear_errors(garbage):
    text = json.dumps(garbage) if isinstance(garbage, dict) else garbage
    with pytest.raises(EnrollmentRejected):
        EnrollmentRequest.from_json(text)


@pytest.mark.parametrize("location", ["", "new york", "x" * 65, "loc:x", "ü"])
def test_bad_attributes_are_refused_at_creation(world, location):
    _, _, tas = world
    with pytest.raises(Exception) as err:
        request(tas, location=location)
    assert "location" in str(err.value)


def test_remove_is_one_transaction_with_no_delivery_and_refuses_unknown(world):
    _, _, tas = world
    a, ia = request(tas, location="hail", service="water")
    b, ib = request(tas, location="hail", service="water")
    fid = tas.enroll(a, approve=True).federation_id
    tas.enroll(b, approve=True)
    delivered = tas.fed.peer_blocks(ib.address)[0]
    head = tas.fed.chain.block_number()
    for bad in ("x" * 257, "tab\there"):  # refused before anything is sent
        with pytest.raises(InputError, match="removal reason"):
            tas.remove(ia.address, reason=bad)
    assert tas.fed.chain.block_number() == head
    res = tas.remove(ia.address, reason="served <b>tampered</b> copies")
    assert (res.federation_id, res.new_epoch, res.rekey) == (fid, 1, None)
    [noted] = tas.fed.events(head + 1, names=["RemovalNoted"])
    assert noted.args == {"node": ia.address, "note": "served <b>tampered</b> copies"}
    assert list(res.gas) == ["removeMember"] and res.gas["removeMember"] <= 60_000
    assert tas.fed.chain.block_number() == head + 1  # one transaction
    assert tas.fed.events(head + 1, names=["KeyDelivered"]) == []  # nobody re-keyed
    assert tas.fed.peer_blocks(ib.address)[0] == delivered
    tree = tas.trees.get(fid)
    assert tree.leaves == {ib.address: 1} and tree.revoked_at(1) == [0] and tree.cover() == [(1 << FIRST_HEIGHT) + 1]
    again = tas.remove(ia.address)  # removed already: said so, nothing sent
    assert (again.status, again.gas, again.reason, again.removed_by) == ("already removed", {},
                                                                         "served <b>tampered</b> copies", tas.address)
    assert tas.fed.chain.block_number() == head + 1
    with pytest.raises(InputError, match="not a member of any federation of this TAS"):
        tas.remove("0x" + "12" * 20)
    with pytest.raises(Exception, match="not an Ethereum address"):
        tas.remove("0x1234")
    assert tas.sync() == []


def test_sync_finishes_a_join_interrupted_before_its_key_delivery(world):
    _, _, tas = world
    req, ident = request(tas, location="hail", service="power")
    fid = tas.enroll(req, approve=True).federation_id
    other = NodeIdentity.generate()  # the TAS crashed after addMember, before deliverKey
    tas.fed.add_member(tas.account, fid, other.address, other.enc_public_key)
    [done] = tas.sync()
    assert (done.federation_id, done.nodes) == (fid, (other.address,))
    assert tas.sync() == []


def test_non_operator_cannot_act_as_tas(world, tmp_path):
    chain, _, tas = world
    other = TrustedAuthority.init(tmp_path / "rogue-tas", chain, PASS, account=chain.dev_accounts()[3],
                                  kdf=LIGHT, fed=None)  # deploys its own contract: fine
    assert other.contract_address != tas.contract_address
    with pytest.raises(TasError, match="not a TAS operator"):
        TrustedAuthority.init(tmp_path / "rogue2", chain, PASS, account=chain.dev_accounts()[4], kdf=LIGHT,
                              fed=tas.contract_address)
    rogue = FogFed.at(chain, tas.contract_address)
    with pytest.raises(ContractRevert, match="NotTas"):
        rogue.create_federation(chain.dev_accounts()[4], "x", "y", b"pk", 0)


def test_without_a_mobility_contract_a_join_keeps_the_epoch(world):
    """The documented default: no mobility contract, no re-key at join (paper Algorithm 2)."""
    chain, home, tas = world
    first = tas.enroll(request(tas, location="tabuk", service="water")[0], approve=True)
    second = tas.enroll(request(tas, location="tabuk", service="water")[0], approve=True)
    assert second.federation_id == first.federation_id and (first.epoch, second.epoch) == (0, 0)
    assert set(second.gas) == {"addMember", "deliverKey"}  # nobody re-keyed, no history key
    assert not {"newcomer_rekey", "history_epochs"} & set(vars(second))  # gone with the member trees
    assert tas.mobility is None and tas.status()["mobility"] is None


def test_a_tas_keeps_one_mobility_contract(tmp_path):
    from fogfed.chain.mobility import deploy_mobility
    from fogfed.tas.mobility import MobilityAuthority

    chain = connect(None)
    tas = TrustedAuthority.init(tmp_path / "tas", chain, PASS, account=chain.dev_accounts()[0], kdf=LIGHT)
    first, second = (deploy_mobility(chain, tas.account, tas.fed) for _ in range(2))
    MobilityAuthority(tas, second)  # not used yet: records nothing
    assert tas.mobility is None
    assert tas.use_mobility(first.address).address == first.address
    with pytest.raises(TasError, match="already uses the mobility contract"):
        tas.use_mobility(second)
    with pytest.raises(TasError, match="already uses the mobility contract"):
        MobilityAuthority(tas, second)
    reopened = TrustedAuthority.open(tmp_path / "tas", chain, PASS)
    assert reopened.mobility.address == first.address and reopened.status()["mobility"] == first.address
    with pytest.raises(FogfedError, match="not this fogfed's FogFedMobility"):
        tas.use_mobility(tas.contract_address)  # FogFed itself is no mobility contract
    other = TrustedAuthority.init(tmp_path / "other", chain, PASS, account=chain.dev_accounts()[0], kdf=LIGHT)
    with pytest.raises(FogfedError, match="serves FogFed"):
        other.use_mobility(first.address)
