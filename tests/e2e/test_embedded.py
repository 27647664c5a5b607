"""A fast subset on the in-process chain and the embedded store, plus tampering with stored blocks."""

from __future__ import annotations

import hashlib

import pytest

from fogfed.node import FetchFailed
from fogfed.storage.importer import import_file


@pytest.fixture(scope="module")
def system(embedded_system):
    return embedded_system


def test_upload_peer_fetch_and_storage_fetch(system, plain, tmp_path):
    n0, n1, n2 = system.nodes[:3]
    n0.serve()
    up = n0.upload(plain)
    assert n1.fetch(up.file_id, tmp_path / "a").source == f"peer:{n0.address}"
    assert n0.evict(up.file_id) and n1.evict(up.file_id)
    assert n2.fetch("0x" + up.file_id.hex(), tmp_path / "b").source == "storage"
    assert (tmp_path / "b").read_bytes() == plain.read_bytes()


def test_tampered_storage_is_reported_and_never_returned(system, plain, tmp_path):
    n0, n1 = system.nodes[0], system.nodes[1]
    up = n0.upload(plain)
    with n0.cache.open(up.file_id) as f:
        leaf = next(iter(import_file(f)))  # the first 256 KiB chunk of the ciphertext
    assert n0.evict(up.file_id)
    path, offset, length = system.store.block_location(str(leaf.cid))
    with open(path, "r+b") as f:
        f.seek(offset + length - 10)
        byte = f.read(1)[0]
        f.seek(offset + length - 10)
        f.write(bytes([byte ^ 1]))
    with pytest.raises(FetchFailed, match="no intact copy"):
        n1.fetch(up.file_id, tmp_path / "u.bin")
    assert not (tmp_path / "u.bin").exists()
    assert not [p for p in tmp_path.iterdir() if p.name != "plain.bin"]
    damaged = [e.args for e in system.tas.fed.events(names=["FileDamaged"], where={"fileId": up.file_id})]
    assert [(d["holder"], d["reporter"], d["reason"]) for d in damaged] == [("0x" + "00" * 20, n1.address, 2)]
    assert system.tas.fed.file(up.file_id).damaged_at > 0  # the stored copy is marked damaged


def test_plaintext_hash_mismatch_is_reported(system, tmp_path):
    """A member registers a file whose recorded plaintext hash is false: readers detect and report it."""
    n0, n1 = system.nodes[0], system.nodes[1]
    src = tmp_path / "liar.bin"
    src.write_bytes(b"the truth" * 100)
    up = n0.upload(src)
    # the same ciphertext registered again under a wrong plaintext hash is impossible (FileExists),
    # so the lie is the uploader's own record: re-register another upload with a false hash
    from fogfed.node.datapath import encrypt_and_store
    from fogfed import abe
    from fogfed.protocol.files import encsk_aad, file_id_for, file_id_of_cid
    import io, os
    key = os.urandom(32)
    cid, info, _ = encrypt_and_store(system.store, src, key, io.BytesIO())
    digest = file_id_of_cid(cid)
    fid = file_id_for(n0.address, digest)
    epoch = n0.fed.federation(1).epoch
    assert epoch == up.epoch  # nobody was removed since: the same cover still applies
    encsk = abe.encrypt(n0.public_key(), up.policy, key, aad=encsk_aad(n0.chain_id, n0.fed.address, fid))
    ref = file_id_of_cid(system.store.add(io.BytesIO(encsk)))
    assert n0.fed.register_file(n0.account, 1, digest, hashlib.sha256(b"a lie").digest(), ref, up.descriptor,
                                epoch).value == fid
    with pytest.raises(FetchFailed):
        n1.fetch(fid, tmp_path / "lie.bin")
    assert not (tmp_path / "lie.bin").exists()
    damaged = [e.args for e in system.tas.fed.events(names=["FileDamaged"], where={"fileId": fid})]
    assert [d["reason"] for d in damaged] == [1]


def test_a_format_1_upload_is_still_fetched_and_checked_with_its_sha256(system, tmp_path, monkeypatch):
    """Files uploaded before stream format 2 registered SHA-256 plaintext hashes: readers still check them."""
    import functools

    import fogfed.node.upload as upload_mod

    n0, n1 = system.nodes[0], system.nodes[1]
    src = tmp_path / "old.bin"
    src.write_bytes(b"uploaded by an older fogfed " * 20_000)
    monkeypatch.setattr(upload_mod, "encrypt_and_store",
                        functools.partial(upload_mod.encrypt_and_store, version=1))
    up = n0.upload(src)
    monkeypatch.undo()
    assert up.plaintext_hash == hashlib.sha256(src.read_bytes()).digest()  # what the chain records
    assert system.tas.fed.file(up.file_id).plaintext_hash == up.plaintext_hash
    assert n0.evict(up.file_id)
    got = n1.fetch(up.file_id, tmp_path / "back.bin")
    assert got.source == "storage" and (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert got.plaintext_hash == up.plaintext_hash
    new = n0.upload(tmp_path / "back.bin")  # the same bytes uploaded now: format 2, BLAKE3
    assert new.plaintext_hash != up.plaintext_hash and len(new.plaintext_hash) == 32
