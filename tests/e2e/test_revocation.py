"""Removal and revocation as attacks, on Anvil and the real IPFS node (a system of its own: it removes nodes)."""

from __future__ import annotations

import pytest

from fogfed import abe
from fogfed.node import AccessDenied
from fogfed.node.client import NotMember
from fogfed.protocol.files import cid_of_file_id, encsk_aad
from fogfed.protocol.ledger import TxReverted


@pytest.fixture(scope="module")
def system(anvil_system):
    return anvil_system


def encsk_of(system, file_id: bytes) -> bytes:
    """The public encrypted file key, as anyone can read it: chain record -> content store."""
    record = system.tas.ledger.call("file", file_id)
    return b"".join(system.store.cat(cid_of_file_id(record[1])))


def removed(system, node) -> None:
    if system.tas.ledger.call("member", node.address)[1]:
        system.tas.remove(node.address, reason="rogue")


def test_removed_node_cannot_decrypt_files_uploaded_after_its_removal(system, plain, tmp_path):
    n0, n1, rogue = system.nodes[0], system.nodes[1], system.nodes[2]
    before = n0.upload(plain)
    aad = encsk_aad(rogue.ledger.chain_id, rogue.ledger.address, before.file_id)
    stolen = rogue.keyring.candidates()  # every key the rogue node ever held
    assert len(stolen) == 1 and len(abe.decrypt(rogue.public_key(), stolen[0], encsk_of(system, before.file_id),
                                                aad=aad)) == 32
    epoch = system.tas.ledger.call("federation", 1)[2]
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
                        aad=encsk_aad(rogue.ledger.chain_id, rogue.ledger.address, after.file_id))
    assert rogue.refresh_keys() == 0 and rogue.keyring.get(1, epoch + 1) is None
    with pytest.raises(AccessDenied, match="removed"):
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
    aad = encsk_aad(n0.ledger.chain_id, n0.ledger.address, up.file_id)
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
    with pytest.raises(TxReverted, match="NotActiveMember"):
        rogue.ledger.send("announceCache", mine.file_id, 2**40)
    with pytest.raises(TxReverted, match="NotActiveMember"):
        rogue.ledger.send("registerFile", 1, b"\x01" * 32, 0, b"\x02" * 32, b"\x03" * 32, 0, "ff:1")
    with pytest.raises(AccessDenied, match="removed"):
        rogue.fetch(mine.file_id, tmp_path / "y.bin")


def test_automatic_removal_is_rekeyed_by_sync(system, plain, tmp_path):
    n0, n3 = system.nodes[0], system.nodes[3]
    up = n0.upload(plain, policy="loc:riyadh")  # federation A only
    epoch_b = system.tas.ledger.call("federation", 2)[2]
    threshold = system.tas.ledger.call("settings")[3]
    for _ in range(threshold):  # each refused access by another federation's member is a false claim
        with pytest.raises(AccessDenied):
            n3.fetch(up.file_id, tmp_path / "no.bin")
    assert not system.tas.ledger.call("member", n3.address)[1]  # removed by the contract itself
    assert system.tas.ledger.call("federation", 2)[2] == epoch_b + 1
    assert system.tas.status()["pending_rekey"] == [2]
    results = system.tas.sync()
    assert [(r.federation_id, r.epoch, r.nodes) for r in results] == [(2, epoch_b + 1, ())]
    assert system.tas.sync() == [] and system.tas.status()["pending_rekey"] == []
