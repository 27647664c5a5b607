"""Removal and revocation as attacks, on Anvil and the real IPFS node (a system of its own: it removes nodes)."""

from __future__ import annotations

import pytest

from fogfed import abe
from fogfed.node import AccessDenied
from fogfed.node.client import NotMember
from fogfed.protocol.files import cid_of_file_id, encsk_aad
from tests.e2e.conftest import assert_cannot_write


@pytest.fixture(scope="module")
def system(anvil_system):
    return anvil_system


def encsk_of(system, file_id: bytes) -> bytes:
    """The public encrypted file key, as anyone can read it: chain record -> content store."""
    record = system.tas.fed.file(file_id)
    return b"".join(system.store.cat(cid_of_file_id(record.enc_sk_ref)))


def removed(system, node) -> None:
    if system.tas.fed.member(node.address).active:
        system.tas.remove(node.address, reason="rogue")


def attempt(node_pk, keys, encsk, file_id, chain_id, address) -> None:
    """The attacker's side: every key it holds against the public encrypted key blob."""
    for sk in keys:
        with pytest.raises(abe.PolicyNotSatisfied):
            abe.decrypt(node_pk, sk, encsk, aad=encsk_aad(chain_id, address, file_id))


def test_removed_node_cannot_decrypt_files_uploaded_after_its_removal(system, plain, tmp_path):
    n0, n1, rogue = system.nodes[0], system.nodes[1], system.nodes[2]
    before = n0.upload(plain)
    aad = encsk_aad(rogue.chain_id, rogue.fed.address, before.file_id)
    stolen = rogue.keyring.candidates()  # every key the rogue node ever held
    assert len(stolen) == 1 and len(abe.decrypt(rogue.public_key(), stolen[0], encsk_of(system, before.file_id),
                                                aad=aad)) == 32
    epoch = system.tas.fed.federation(1).epoch
    head = system.tas.fed.chain.block_number()
    keys_before = {n.address: len(n.keyring) for n in (n0, n1)}
    removal = system.tas.remove(rogue.address, reason="rogue")
    # one transaction, no key delivered to anyone
    assert removal.new_epoch == epoch + 1 and removal.rekey is None and list(removal.gas) == ["removeMember"]
    assert system.tas.fed.chain.block_number() == head + 1
    assert system.tas.fed.events(head + 1, names=["KeyDelivered"]) == []
    after = n0.upload(plain)
    assert after.epoch == epoch + 1 and after.descriptor.endswith(f"cover(1:0:{epoch + 1}:3)")
    # The attack: all old keys, the public chain data and the public encrypted key blob.
    encsk = encsk_of(system, after.file_id)
    attempt(rogue.public_key(1), stolen, encsk, after.file_id, rogue.chain_id, rogue.fed.address)
    assert rogue.refresh_keys() == 0
    with pytest.raises(NotMember, match="removed"):
        rogue.fetch(after.file_id, tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()
    # the remaining members read new and old files with the keys they already had
    assert n1.fetch(after.file_id, tmp_path / "new.bin").plaintext_hash == after.plaintext_hash
    assert n1.fetch(before.file_id, tmp_path / "old.bin").plaintext_hash == before.plaintext_hash
    assert {n.address: len(n.keyring) for n in (n0, n1)} == keys_before


def test_colluding_removed_node_and_outside_federation_cannot_decrypt(system, plain):
    n0, rogue, other = system.nodes[0], system.nodes[2], system.nodes[3]
    removed(system, rogue)
    up = n0.upload(plain)  # default policy: federation A and its cover
    encsk = encsk_of(system, up.file_id)
    attempt(n0.public_key(), rogue.keyring.candidates() + other.keyring.candidates(), encsk, up.file_id,
            n0.chain_id, n0.fed.address)
    # stronger than collusion resistance: even the union of their attributes misses the cover
    pooled = {a for sk in rogue.keyring.candidates() + other.keyring.candidates() for a in sk.attributes}
    assert not abe.parse_policy(up.policy).satisfied_by(sorted(pooled))


def test_newcomer_cannot_read_files_uploaded_before_it_joined(system, plain, tmp_path):
    n0 = system.nodes[0]
    old = n0.upload(plain)
    late = system.new_node("late", system.accounts[8])
    system.tas.enroll(late.enrollment_request("riyadh", "health"), approve=True)
    assert late.refresh_keys() == 1
    attempt(late.public_key(), late.keyring.candidates(), encsk_of(system, old.file_id), old.file_id,
            late.chain_id, late.fed.address)
    with pytest.raises(AccessDenied, match="none of this node's keys"):
        late.fetch(old.file_id, tmp_path / "old.bin")
    new = n0.upload(plain)  # later files: it reads them with its one key
    assert late.fetch(new.file_id, tmp_path / "new.bin").plaintext_hash == new.plaintext_hash


def test_removed_node_that_reenrolls_cannot_read_what_was_uploaded_while_it_was_out(system, plain, tmp_path):
    """Issue 10 item 7: the returning node gets a fresh leaf; its old one stays revoked."""
    n0, back = system.nodes[0], system.nodes[1]
    removed(system, back)
    missed = n0.upload(plain)
    system.tas.enroll(back.enrollment_request("riyadh", "health"), approve=True)
    assert back.refresh_keys() == 1
    keys = back.keyring.candidates()  # old key and new key
    assert len(keys) == 2
    attempt(back.public_key(), keys, encsk_of(system, missed.file_id), missed.file_id, back.chain_id,
            back.fed.address)
    pooled = {a for sk in keys for a in sk.attributes}
    assert not abe.parse_policy(missed.policy).satisfied_by(sorted(pooled))
    with pytest.raises(AccessDenied):
        back.fetch(missed.file_id, tmp_path / "missed.bin")
    later = n0.upload(plain)
    assert back.fetch(later.file_id, tmp_path / "later.bin").plaintext_hash == later.plaintext_hash


def test_removed_member_cannot_upload_announce_or_fetch(system, plain, tmp_path):
    rogue = system.nodes[2]
    removed(system, rogue)
    mine = system.nodes[0].upload(plain)
    with pytest.raises(NotMember, match="removed"):
        rogue.upload(plain)
    assert_cannot_write(rogue, mine.file_id)
    with pytest.raises(NotMember, match="removed"):
        rogue.fetch(mine.file_id, tmp_path / "y.bin")


def test_automatic_removal_needs_no_rekey(system, plain, tmp_path):
    n0, n3 = system.nodes[0], system.nodes[3]
    up = n0.upload(plain, policy="loc:riyadh")  # federation A only
    epoch_b = system.tas.fed.federation(2).epoch
    threshold = system.tas.fed.settings().false_claim_threshold
    with pytest.raises(AccessDenied, match="no transaction was sent"):
        n3.fetch(up.file_id, tmp_path / "no.bin")  # an honest node refuses itself
    for _ in range(threshold):  # each recorded access by another federation's member is a false claim
        assert n3.fed.record_access(n3.account, up.file_id).value is False
    assert not system.tas.fed.member(n3.address).active  # removed by the contract itself
    assert system.tas.fed.federation(2).epoch == epoch_b + 1
    assert system.tas.status()["pending_keys"] == []
    assert system.tas.sync() == []  # nothing to re-key: its leaf is revoked by the event log
    shared = n0.upload(plain, policy="svc:health")  # for every health federation: B's cover excludes n3
    assert "cover(1:" in shared.descriptor and " 2:" not in shared.descriptor  # B has no member left
    attempt(n3.public_key(2), n3.keyring.candidates(), encsk_of(system, shared.file_id), shared.file_id,
            n3.chain_id, n3.fed.address)
