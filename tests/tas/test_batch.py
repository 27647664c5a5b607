"""Batch enrollment: checks before gas, addMembers per federation, one bundle commitment; replay; kills.

The kill tests run real ``fogfed tas enroll`` processes on one persistent
embedded chain, SIGKILLed at every step (``FOGFED_KILL_AT``), then finished by
the same command or ``tas sync``; checked against the chain: every node added
once, funded once, one refresh per federation, each node opens its entry.
"""

from __future__ import annotations

import json

import pytest

from fogfed.chain import connect
from fogfed.keys import NodeIdentity
from fogfed.protocol.enrollment import EnrollmentRejected, EnrollmentRequest
from fogfed.protocol.files import cid_of_file_id
from fogfed.protocol.keydelivery import open_node_key
from fogfed.protocol.refresh import Bundle
from fogfed.storage import EmbeddedStore
from fogfed.tas import TrustedAuthority
from fogfed.tas.batch import BatchRejected
from tests.cli.helpers import PASSPHRASE, run_embedded
from tests.e2e.conftest import build_system

FUND = 10**16


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    s = build_system(connect(None), EmbeddedStore(root / "store"), root, layout=("A",))
    yield s
    s.close()


def test_a_batch_is_one_add_per_federation_and_one_commitment_each(system, tmp_path):
    s = system
    nodes = [s.new_node(f"b{i}", s.accounts[2 + i]) for i in range(4)]
    reqs = [n.enrollment_request("riyadh" if i < 3 else "jeddah", "health") for i, n in enumerate(nodes)]
    plain = tmp_path / "p.bin"
    plain.write_bytes(b"before the batch" * 64)
    before = s.nodes[0].upload(plain)
    head, balances = s.chain.block_number(), [s.chain.balance(n.address) for n in nodes]
    res = s.tas.enroll_batch(reqs, approve=True, fund_wei=FUND)
    # createFederation (jeddah), addMembers x2, 4 transfers, bumpEpoch x2; no per-member key delivery
    assert s.chain.block_number() - head == res.transactions == 9
    assert s.tas.fed.events(head + 1, names=["KeyDelivered"]) == []
    assert len(s.tas.fed.events(head + 1, names=["TreeRefreshed"])) == 2
    assert set(res.gas) == {"createFederation", "addMembers", "fund", "bumpEpoch"}
    assert [s.chain.balance(n.address) - b for n, b in zip(nodes, balances)] == [FUND] * 4
    assert [(m["federation_id"], m["leaf"], m["generation"]) for m in res.members] == [
        (1, 1, 1), (1, 2, 1), (1, 3, 1), (2, 0, 1)]
    for n in nodes:  # each finds and checks its own entry in the bundle the chain committed to
        assert n.refresh_keys() == 0 and n.pull_refreshes(n.membership()[0]) == 1
    after = s.nodes[0].upload(plain)  # the old member pulled its fresh key of generation 1
    assert nodes[1].fetch(after.file_id, tmp_path / "a").plaintext_hash == after.plaintext_hash
    with pytest.raises(Exception, match="none of this node's keys"):  # backward secrecy holds
        nodes[1].fetch(before.file_id, tmp_path / "b")
    assert s.tas.pending() == []
    # the same batch again does nothing; one of its requests alone is a replay
    head = s.chain.block_number()
    again = s.tas.enroll_batch(reqs, approve=True, fund_wei=FUND)
    assert again.resumed and again.transactions == 0 and s.chain.block_number() == head
    with pytest.raises(EnrollmentRejected, match="replay"):
        s.tas.enroll(reqs[0], approve=True)


def test_every_request_is_checked_before_any_gas(system):
    s = system
    good = [NodeIdentity.generate() for _ in range(2)]
    reqs = [EnrollmentRequest.create(i, "mecca", "health", chain_id=s.tas.chain_id, contract=s.tas.contract_address)
            for i in good]
    member = s.nodes[0].enrollment_request("riyadh", "health")  # already an active member (free view)
    other_chain = EnrollmentRequest.create(NodeIdentity.generate(), "mecca", "health", chain_id=999,
                                           contract=s.tas.contract_address)
    head = s.chain.block_number()
    with pytest.raises(BatchRejected) as info:
        s.tas.enroll_batch([*reqs, member, other_chain, reqs[0]], approve=True,
                           labels=["a", "b", "member", "chain", "twice"])
    assert [label for label, _ in info.value.rejections] == ["member", "chain", "twice"]
    assert s.chain.block_number() == head and not any(s.tas.nonce_used(r.nonce) for r in reqs)
    with pytest.raises(BatchRejected, match="refused"):  # no approval: the verifier refuses them all
        s.tas.enroll_batch(reqs)
    res = s.tas.enroll_batch([*reqs, member], approve=True, skip_rejected=True)
    assert [m["node"] for m in res.members] == [i.address for i in good]
    assert [r["label"] for r in res.rejected] == [member.address]
    assert s.chain.block_number() - head == 3  # createFederation, addMembers, bumpEpoch (no funding)


def test_a_batch_larger_than_the_tree_gets_leaves_from_its_refresh(system):
    s = system
    idents = [NodeIdentity.generate() for _ in range(20)]
    reqs = [EnrollmentRequest.create(i, "tabuk", "health", chain_id=s.tas.chain_id, contract=s.tas.contract_address)
            for i in idents]
    res = s.tas.enroll_batch(reqs, approve=True)
    (fed,) = res.federations
    tree = s.tas.trees.get(fed["federation_id"])
    assert tree.past[0].capacity < 20 and tree.past[0].waiting  # generation 0 was too small for the batch
    assert tree.waiting == [] and sorted(tree.leaves.values()) == list(range(20)) and tree.capacity >= 20
    assert fed["refresh"]["members"] == 20 and s.tas.pending() == []


# -- killed at every step (real processes, persistent chain) ------------------------------------------

STEPS = ["batch:journal", "batch:federation", "batch:addMembers", "batch:fund-recorded", "batch:fund-sent",
         "batch:fund", "refresh:stored", "refresh:mined", "refresh:late", "batch:deliver"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch-faults")
    chain = connect(f"embedded:{root / 'chain'}")
    from tests.tas.test_faults import LIGHT

    tas = TrustedAuthority.init(root / "tas", chain, PASSPHRASE, account=chain.dev_accounts()[0], kdf=LIGHT)
    tas.use_store(EmbeddedStore(root / "store"))
    return root, tas


fogfed = run_embedded


@pytest.mark.parametrize("kill_at", STEPS)
def test_batch_killed_at_any_step_is_finished_once(world, kill_at: str) -> None:
    root, tas = world
    where = root / kill_at.replace(":", "-")
    where.mkdir()
    idents = [NodeIdentity.generate() for _ in range(3)]
    location = "k" + kill_at.replace(":", "").replace("-", "").lower()[-20:]
    for i, ident in enumerate(idents):
        req = EnrollmentRequest.create(ident, location, "health", chain_id=tas.chain_id,
                                       contract=tas.contract_address)
        (where / f"{i}.json").write_text(req.to_json())
    args = ("tas", "enroll", "--batch", str(where), "--approve", "--fund", "0.01", "--chunk", "2")
    killed = fogfed(root, *args, kill_at=kill_at)
    assert killed.returncode == -9, killed.stderr
    finish = fogfed(root, *args, "--json") if STEPS.index(kill_at) % 2 else fogfed(root, "tas", "sync")
    assert finish.returncode == 0, finish.stderr
    if "--json" in finish.args:
        assert json.loads(finish.stdout)["resumed"] is True
    fed = tas.fed
    fid = fed.federation_by_attributes(location, "health")
    assert len([e for e in fed.events(names=["FederationCreated"]) if e.args["location"] == location]) == 1
    refreshes = fed.events(names=["TreeRefreshed"], where={"federationId": fid})
    assert len(refreshes) == 1
    bundle = Bundle.from_bytes(b"".join(tas.store.cat(cid_of_file_id(refreshes[0].args["bundle"]))))
    for ident in idents:
        assert fed.member(ident.address).active
        assert len(fed.events(names=["MemberAdded"], where={"node": ident.address})) == 1
        assert fed.events(names=["KeyDelivered"], where={"node": ident.address}) == []
        assert fed.chain.balance(ident.address) == FUND
        leaf, sealed = bundle.entry(ident.address)
        sk = open_node_key(ident, sealed, tas.public_key, chain_id=tas.chain_id, contract=tas.contract_address,
                           federation_id=fid, epoch=bundle.epoch, is_operator=fed.is_operator)
        assert f"ff:{fid}" in sk.attributes and any(a.startswith(f"ct:{fid}:1:") for a in sk.attributes)
    assert tas.pending() == [] and tas.journal.unfinished() == []
