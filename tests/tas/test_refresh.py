"""Member-tree refresh: one transaction committing to a bundle of every member's new key (attacks included)."""

from __future__ import annotations

import pytest

from fogfed import abe
from fogfed.chain import ContractRevert, connect
from fogfed.node import AccessDenied
from fogfed.protocol.files import cid_of_file_id, encsk_aad
from fogfed.protocol.refresh import Bundle
from fogfed.storage import EmbeddedStore
from tests.e2e.conftest import build_system


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    root = tmp_path_factory.mktemp("refresh")
    s = build_system(connect(None), EmbeddedStore(root / "store"), root)
    yield s
    s.close()


def _encsk(system, file_id):
    return b"".join(system.store.cat(cid_of_file_id(system.tas.fed.file(file_id).enc_sk_ref)))


def test_refresh_is_one_transaction_and_members_read_old_and_new_files(system, tmp_path):
    n0, n1, rogue = system.nodes[0], system.nodes[1], system.nodes[2]
    plain = tmp_path / "p.bin"
    plain.write_bytes(b"refresh me" * 200)
    system.tas.remove(rogue.address)
    old = n0.upload(plain)
    assert len(system.tas.trees.get(1).cover()) == 1 and system.tas.trees.get(1).revoked
    head = system.chain.block_number()
    res = system.tas.refresh(1)
    assert system.chain.block_number() == head + 1 and res.gas_used <= 150_000  # one transaction
    assert system.tas.fed.events(head + 1, names=["KeyDelivered"]) == []  # no gas per member
    assert (res.generation, res.members) == (1, 2)
    tree = system.tas.trees.get(1)
    assert (tree.generation, tree.assigned, tree.revoked, tree.leaves) == (1, 2, {}, {n0.address: 0, n1.address: 1})
    new = n0.upload(plain)
    assert new.descriptor.endswith(f"cover(1:1:{res.epoch}:2)")
    assert n1.fetch(new.file_id, tmp_path / "new").plaintext_hash == new.plaintext_hash  # pulled its entry
    assert n1.fetch(old.file_id, tmp_path / "old").plaintext_hash == old.plaintext_hash  # older key kept
    # the removed node: no entry in the bundle, and none of its keys opens the new file
    bundle = Bundle.from_bytes(b"".join(system.store.cat(cid_of_file_id(tree.bundle))))
    assert bundle.entry(rogue.address) is None and [n for n, _ in bundle.entries] == [n0.address, n1.address]
    for sk in rogue.keyring.candidates():
        with pytest.raises(abe.PolicyNotSatisfied):
            abe.decrypt(rogue.public_key(1), sk, _encsk(system, new.file_id),
                        aad=encsk_aad(rogue.chain_id, rogue.fed.address, new.file_id))
    # a bundle entry is sealed to its member: another member cannot open it
    from fogfed.protocol.keydelivery import KeyDeliveryError, open_node_key
    with pytest.raises(KeyDeliveryError):
        open_node_key(n0.identity, bundle.entries[1][1], n0.public_key(1), chain_id=n0.chain_id,
                      contract=n0.fed.address, federation_id=1, epoch=res.epoch, is_operator=n0.fed.is_operator)


def test_newcomer_after_a_refresh_gets_a_leaf_of_the_new_generation(system, tmp_path):
    n0 = system.nodes[0]
    plain = tmp_path / "q.bin"
    plain.write_bytes(b"before the newcomer" * 50)
    before = n0.upload(plain)
    late = system.new_node("late", system.accounts[8])
    res = system.tas.enroll(late.enrollment_request("riyadh", "health"), approve=True)
    assert res.leaf == 2 and any(a.startswith("ct:1:1:") for a in res.attributes)
    assert late.refresh_keys() == 1
    with pytest.raises(AccessDenied, match="none of this node's keys"):
        late.fetch(before.file_id, tmp_path / "b")
    after = n0.upload(plain)
    assert late.fetch(after.file_id, tmp_path / "a").plaintext_hash == after.plaintext_hash


def test_a_refresh_built_before_a_removal_is_refused(system):
    """The contract refuses the commit when the epoch moved (a removal the bundle does not know about)."""
    tas = system.tas
    epoch = tas.fed.federation(1).epoch
    tas.remove(system.nodes[1].address)
    with pytest.raises(ContractRevert, match="StaleEpoch"):
        tas.fed.bump_epoch(tas.account, 1, epoch, b"\x05" * 32)
    assert tas.refresh(1).members == 2  # rebuilt from the chain: n0 and the newcomer
