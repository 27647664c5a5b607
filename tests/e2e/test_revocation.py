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


def test_removed_node_cannot_decrypt_files_uploaded_after_its_removal(system, plain, tmp_path):
    n0, n1, rogue = system.nodes[0], system.nodes[1], system.nodes[2]
    before = n0.upload(plain)
    aad = encsk_aad(rogue.chain_id, rogue.fed.address, before.file_id)
    stolen = rogue.keyring.candidates()  # every key the rogue node ever held
    assert len(stolen) == 1 and len(abe.decrypt(rogue.public_key(), stolen[0], encsk_of(system, before.file_id),
                                                aad=aad)) == 32
    epoch = system.tas.fed.federation(1).epoch
    removal = system.tas.remove(rogue.address, reason="rogue")
    assert removal.new_epoch == epoch + 1
    assert set(removal.rekey.nodes) == {n0.address, n1.address}
    after = n0.upload(plain)  # n0 picks its new key up by itself
    assert after.epoch == epoch + 1 and f"ep:1:{epoch + 1}" in after.policy
    # The attack: all old keys, the public chain data and the public encrypted key blob.
    encsk = encsk_of(system, after.file_id)
    for sk in stolen:
        with pytest.raises(abe.PolicyNotSatisfied):
            abe.decrypt(rogue.public_key(1), sk, encsk,
                        aad=encsk_aad(rogue.chain_id, rogue.fed.address, after.file_id))
    assert rogue.refresh_keys() == 0 and rogue.keyring.get(1, epoch + 1) is None
    with pytest.raises(NotMember, match="removed"):
        rogue.fetch(after.file_id, tmp_path / "x.bin")
    assert not (tmp_path / "x.bin").exists()
    # the remaining members read new and old files with no manual step
    assert n1.fetch(after.file_id, tmp_path / "new.bin").plaintext_sha256 == after.plaintext_sha256
    assert n1.fetch(before.file_id, tmp_path / "old.bin").plaintext_sha256 == before.plaintext_sha256


def test_colluding_removed_node_and_outside_federation_cannot_decrypt(system, plain):
    n0, rogue, other = system.nodes[0], system.nodes[2], system.nodes[3]
    removed(system, rogue)
    up = n0.upload(plain)  # default policy: federation A at its current epoch
    encsk = encsk_of(system, up.file_id)
    aad = encsk_aad(n0.chain_id, n0.fed.address, up.file_id)
    # B's member holds no ff:1 attribute, the rogue no current epoch: neither key alone decrypts
    for sk in rogue.keyring.candidates() + other.keyring.candidates():
        with pytest.raises(abe.PolicyNotSatisfied):
            abe.decrypt(n0.public_key(), sk, encsk, aad=aad)


def test_removed_member_cannot_upload_announce_or_fetch(system, plain, tmp_path):
    rogue = system.nodes[2]
    removed(system, rogue)
    mine = system.nodes[0].upload(plain)
    with pytest.raises(NotMember, match="removed"):
        rogue.upload(plain)
    assert_cannot_write(rogue, mine.file_id)
    with pytest.raises(NotMember, match="removed"):
        rogue.fetch(mine.file_id, tmp_path / "y.bin")


def test_automatic_removal_is_rekeyed_by_sync(system, plain, tmp_path):
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
    # n3 was federation 2's only member: the chain shows no active member without its key, so
    # there is nothing to deliver (pending = active members lacking the current epoch's key)
    assert system.tas.status()["pending_rekey"] == []
    assert system.tas.sync() == [] and system.tas.status()["pending_rekey"] == []
