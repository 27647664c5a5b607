"""Member trees sized to their federation: heights derived by replay, refresh before a join into a full tree.

Generation 0 of a federation has FIRST_HEIGHT (16 leaves); filling it makes the
next join start a new generation first (one bumpEpoch, keys in a bundle), of
``generation_height(m)``. Every role derives that height from the events: the
TAS (keys it issues), the nodes (covers they encrypt to) and the auditor.
Attacks from the removed node's side: after the automatic refresh it holds no
key that opens a new file, whatever keys it pools.
"""

from __future__ import annotations

import os

import pytest

from fogfed import abe, audit
from fogfed.chain import connect
from fogfed.keys import NodeIdentity
from fogfed.node import AccessDenied
from fogfed.protocol.attributes import FIRST_HEIGHT, generation_height
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.protocol.files import cid_of_file_id, encsk_aad
from fogfed.protocol.membertree import MemberTree
from fogfed.storage import EmbeddedStore
from fogfed.tas.revocation import RefreshPolicy
from tests.e2e.conftest import build_system

PLACEHOLDER_KEY = bytes(range(1, 33))


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("growth")
    s = build_system(connect(None), EmbeddedStore(root / "store"), root)  # riyadh: n0, n1, n2; jeddah: n3
    yield s
    s.close()


def _fill(tas, fid: int) -> None:
    """Fill the current generation with batch members (another operator's raw addMembers: no TAS check)."""
    tree = tas.trees.get(fid)
    free = tree.capacity - tree.assigned
    tas.fed.add_members(tas.account, fid, ["0x" + os.urandom(20).hex() for _ in range(free)],
                        [PLACEHOLDER_KEY] * free)
    assert tas.trees.get(fid).full


def _encsk(system, file_id):
    return b"".join(system.store.cat(cid_of_file_id(system.tas.fed.file(file_id).enc_sk_ref)))


def test_join_into_a_full_tree_refreshes_first_and_everyone_reads_what_they_may(system, tmp_path):
    tas, (n0, n1, rogue) = system.tas, system.nodes[:3]
    assert tas.trees.get(1).height == FIRST_HEIGHT
    plain = tmp_path / "p.bin"
    plain.write_bytes(b"before the growth" * 100)
    tas.remove(rogue.address)
    old = n0.upload(plain)
    _fill(tas, 1)
    head = system.chain.block_number()
    late = system.new_node("late", system.accounts[7])
    res = tas.enroll(late.enrollment_request("riyadh", "health"), approve=True)
    # one refresh (bumpEpoch) before addMember and the newcomer's one key delivery: no gas per member
    assert set(res.gas) == {"bumpEpoch", "addMember", "deliverKey"}
    assert system.chain.block_number() == head + 3
    assert len(tas.fed.events(head + 1, names=["TreeRefreshed"])) == 1
    assert [e.args["node"] for e in tas.fed.events(head + 1, names=["KeyDelivered"])] == [late.address]
    tree = tas.trees.get(1)
    m = 2 + (16 - 3)  # n0, n1 and the batch members (rogue revoked)
    assert (tree.generation, tree.height, tree.assigned) == (1, generation_height(m), m + 1) == (1, 5, 16)
    assert res.leaf == m and len([a for a in res.attributes if a.startswith("ct:1:1:")]) == tree.height
    assert late.refresh_keys() == 1
    new = n0.upload(plain)
    assert new.descriptor.endswith(f"cover(1:1:{tree.epoch}:{m + 1})")
    # the newcomer and the old members read the new file; the old members still read the old one
    for node, name in ((late, "late"), (n1, "n1")):
        assert node.fetch(new.file_id, tmp_path / f"new-{name}").plaintext_hash == new.plaintext_hash
    assert n1.fetch(old.file_id, tmp_path / "old-n1").plaintext_hash == old.plaintext_hash
    with pytest.raises(AccessDenied):  # backward secrecy across the refresh
        late.fetch(old.file_id, tmp_path / "old-late")
    # the removed node, from its side: every key it ever held, against the new file's key ciphertext
    encsk, aad = _encsk(system, new.file_id), encsk_aad(rogue.chain_id, rogue.fed.address, new.file_id)
    assert rogue.keyring.candidates()
    for sk in rogue.keyring.candidates():
        with pytest.raises(abe.PolicyNotSatisfied):
            abe.decrypt(rogue.public_key(1), sk, encsk, aad=aad)
    # even pooled with a key of another federation's member (n3, jeddah), which is not allowed either
    pooled = {a for sk in rogue.keyring.candidates() + system.nodes[3].keyring.candidates() for a in sk.attributes}
    forged = tas.issue_key(sorted(pooled))  # the union of their attributes in one key: stronger than collusion
    with pytest.raises(abe.PolicyNotSatisfied):
        abe.decrypt(rogue.public_key(1), forged, encsk, aad=aad)


def test_heights_replayed_by_every_role_equal_the_tas_s(system):
    tas = system.tas
    fed = tas.fed
    for fid in (1, 2):
        node_view = MemberTree(fid).sync(fed)  # what an uploader or fetcher replays, from scratch
        tas_view = tas.trees.get(fid)
        assert (node_view.generation, node_view.height, node_view.leaves) == \
            (tas_view.generation, tas_view.height, tas_view.leaves)
        for gen, past in node_view.past.items():
            assert past.height == tas_view.past[gen].height
    # the TAS's keys of generation 1 hold exactly the replayed height's path (minus the root)
    tree = tas.trees.get(1)
    late = system.named["late"]
    [sk] = [k for k in late.keyring.candidates() if any(a.startswith("ct:1:1:") for a in k.attributes)]
    leaf = tree.leaves[late.address]
    assert sorted(a for a in sk.attributes if a.startswith("ct:")) == \
        sorted(f"ct:1:1:{(1 << tree.height) + leaf >> i}" for i in range(tree.height))
    # the auditor, replaying the raw events on its own, derives the same heights and checks the covers
    result = audit.replay(system.chain.w3, tas.contract_address, system.root / "audit.sqlite")
    fed1 = result.rebuild.data["federations"]["1"]
    assert fed1["tree"]["height"] == tree.height and fed1["tree"]["heights"] == {"0": FIRST_HEIGHT, "1": tree.height}
    assert [r["height"] for r in fed1["refreshes"]] == [tree.height]
    assert all(f["covers"]["1"]["height"] in (FIRST_HEIGHT, tree.height)
               for f in result.rebuild.data["files"].values() if "1" in f.get("covers", {}))
    kinds = {s["kind"] for s in result.rebuild.data["signals"]}
    assert "uncovered_file" not in kinds and "tree_full_join" not in kinds  # the TAS never joins into a full tree
    assert audit.verify(system.chain.w3, tas.contract_address, result.rebuild.data, result.head) == []


def test_a_member_added_to_a_full_tree_by_another_operator_waits_and_the_next_refresh_places_it(system, tmp_path):
    tas, n0 = system.tas, system.nodes[0]
    _fill(tas, 1)
    outsider = "0x" + os.urandom(20).hex()
    tas.fed.add_members(tas.account, 1, [outsider], [PLACEHOLDER_KEY])  # beyond the last leaf
    tree = tas.trees.get(1)
    assert tree.waiting == [tas.fed.member(outsider).address] and tree.assigned == tree.capacity
    assert "hold no leaf" in RefreshPolicy().reason(tree)
    assert tas.refreshes_due() == {1: RefreshPolicy().reason(tree)}
    plain = tmp_path / "w.bin"
    plain.write_bytes(b"while one waits" * 10)
    assert n0.upload(plain).descriptor.endswith(f":{tree.capacity})")  # uploads go on; the waiting one is outside
    [r] = tas.refresh_due()
    tree = tas.trees.get(1)
    assert r.generation == tree.generation == 2 and tree.waiting == [] and not tas.refreshes_due()
    assert tree.leaves[tas.fed.member(outsider).address] == tree.assigned - 1  # placed last
    assert tree.height == generation_height(tree.assigned)
    # the auditor flags the raw join into the full tree
    result = audit.replay(system.chain.w3, tas.contract_address, system.root / "audit2.sqlite")
    assert any(s["kind"] == "tree_full_join" for s in result.rebuild.data["signals"])


def test_refresh_policy_cover_and_revoked_thresholds(system):
    tree = MemberTree(9, epoch=1, assigned=12, leaves={f"n{i}": i for i in range(12) if i % 2},
                      revoked={i: 1 for i in range(0, 12, 2)})
    assert len(tree.cover()) == 6  # the six odd leaves, one node each
    assert RefreshPolicy().reason(tree) is None
    assert "cover has 6 nodes" in RefreshPolicy(max_cover_nodes=5).reason(tree)
    assert "6 of 12 leaves revoked" in RefreshPolicy(max_revoked_fraction=0.4).reason(tree)
    assert "full" in RefreshPolicy().reason(MemberTree(9, assigned=16, leaves={"a": 15}))
    assert RefreshPolicy().reason(MemberTree(9, assigned=3, revoked={0: 1, 1: 1, 2: 1})) is None  # nobody left
    tas = system.tas
    assert tas.refreshes_due() == {}
    tas.remove(system.nodes[1].address)
    tas.set_refresh_policy(RefreshPolicy(max_cover_nodes=64, max_revoked_fraction=0.01))
    assert tas.refresh_policy() == RefreshPolicy(64, 0.01)
    assert "leaves revoked" in tas.refreshes_due()[1]
    tas.set_refresh_policy(RefreshPolicy())
    assert tas.refreshes_due() == {}
    for bad in ({"max_cover_nodes": 0}, {"max_revoked_fraction": 0}, {"max_revoked_fraction": 1.5}):
        with pytest.raises(Exception, match="must be"):
            RefreshPolicy(**bad)
