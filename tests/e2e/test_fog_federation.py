"""The fog federation end to end on Anvil and a real IPFS node: retrieval, revocation, attacks."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import threading
import urllib.parse

import pytest

from fogfed.node import AccessDenied, FetchFailed
from fogfed.node.client import NotMember
from fogfed.node.peer import PeerRefused, send_request
from fogfed.node.peer_protocol import sign_request
from tests.e2e.conftest import assert_cannot_write

ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def system(anvil_system):
    return anvil_system


def sha(path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


def chain_events(system, name, **where):
    return [e.args for e in system.tas.fed.events(names=[name], where=where)]


# -- the paper's three retrieval scenarios (Algorithm 9) ---------------------------------------

def test_retrieval_from_a_peer_cache_then_own_cache(system, plain, tmp_path):
    n0, n1 = system.nodes[0], system.nodes[1]
    up = n0.upload(plain)
    assert up.announced and n0.cache.get(up.file_id) is not None
    n0.serve()
    phases: list[tuple[str, int | None]] = []
    bar = type("Bar", (), {"phase": lambda self, name, total: phases.append((name, total)),
                           "__call__": lambda self, done: None})()
    first = n1.fetch(up.file_id, tmp_path / "a.bin", progress=bar)
    assert first.source == f"peer:{n0.address}" and sha(tmp_path / "a.bin") == sha(plain)
    total = system.store.size(up.cid)  # the ciphertext's size as the DAG declares it
    assert phases == [("fetching from peer", total), ("verifying", total), ("decrypting", total)]
    # the uploader's cache entry is the store's copy where the store is local (not this module's IPFS)
    assert (n0.cache.get(up.file_id).sha256 is None) == system.store.local
    assert n1.cache.get(up.file_id).sha256 is not None  # a peer's bytes are kept as a blob of its own
    assert first.plaintext_hash == up.plaintext_hash and not first.damage_reports
    again = n1.fetch(up.file_id, tmp_path / "b.bin")
    assert again.source == "cache" and sha(tmp_path / "b.bin") == sha(plain)


def test_retrieval_from_storage_when_no_fresh_cache(system, plain, tmp_path):
    n0, n2 = system.nodes[0], system.nodes[2]
    up = n0.upload(plain)
    assert n0.evict(up.file_id)  # on_evict withdraws the announcement
    assert system.tas.fed.cache_expiry(up.file_id, n0.address) == 0
    got = n2.fetch(up.file_id, tmp_path / "c.bin")
    assert got.source == "storage" and sha(tmp_path / "c.bin") == sha(plain)
    # the fetcher now caches and announces its own copy
    assert system.tas.fed.cache_expiry(up.file_id, n2.address) > 0


def test_outsider_cannot_upload_announce_or_fetch(system, plain, tmp_path):
    outsider, n0 = system.nodes[4], system.nodes[0]
    up = n0.upload(plain)
    with pytest.raises(NotMember, match="enroll"):
        outsider.upload(plain)
    assert_cannot_write(outsider, up.file_id)
    with pytest.raises(NotMember, match="enroll"):
        outsider.fetch(up.file_id, tmp_path / "z.bin")
    assert not (tmp_path / "z.bin").exists()


def test_member_of_another_federation_is_refused_unless_shared(system, plain, tmp_path):
    n0, other = system.nodes[0], system.nodes[3]
    private = n0.upload(plain, policy="loc:riyadh")
    assert private.shared_with == ()
    with pytest.raises(AccessDenied, match="another federation"):
        other.fetch(private.file_id, tmp_path / "p.bin")
    shared = n0.upload(plain, policy="svc:health")
    assert shared.shared_with == (2,)
    got = other.fetch(shared.file_id, tmp_path / "s.bin")
    assert sha(tmp_path / "s.bin") == sha(plain) and got.source in ("storage", f"peer:{n0.address}")


# -- tampering ----------------------------------------------------------------------------------

def test_tampered_peer_cache_is_reported_and_storage_used(system, plain, tmp_path):
    n0, n1 = system.nodes[0], system.nodes[1]
    n0.serve()
    up = n0.upload(plain)
    # n0 turns rogue on its own machine: writes an altered copy as its cached blob (its cache entry
    # referred to the store's copy) and fixes up its index to match
    blob = n0.cache.root / "blobs" / up.file_id.hex()
    with n0.cache.open(up.file_id) as f:
        data = bytearray(f.read())
    data[1000] ^= 0xFF
    blob.write_bytes(data)
    db = sqlite3.connect(n0.cache.root / "index.sqlite3")
    with db:
        db.execute("UPDATE blobs SET sha256 = ? WHERE file_id = ?", (hashlib.sha256(data).digest(), up.file_id))
    db.close()
    got = n1.fetch(up.file_id, tmp_path / "t.bin")
    assert got.source == "storage" and sha(tmp_path / "t.bin") == sha(plain)
    assert any(r.startswith(f"peer:{n0.address}") and "reported" in r for r in got.damage_reports)
    damaged = chain_events(system, "FileDamaged", fileId=up.file_id)
    assert [(d["holder"], d["reporter"]) for d in damaged] == [(n0.address, n1.address)]
    # one report ends nothing on chain (the reporter may be the liar); fetchers try n0 last from now on
    assert system.tas.fed.cache_expiry(up.file_id, n0.address) > 0


# -- peer protocol attacks ------------------------------------------------------------------------

def test_replayed_peer_request_is_refused(system, plain):
    n0, n1 = system.nodes[0], system.nodes[1]
    server = n0.serve()
    up = n0.upload(plain)
    request = sign_request(n1.identity.account, chain_id=n1.chain_id, contract_address=n1.fed.address,
                           audience=n0.address, file_id=up.file_id)
    port = urllib.parse.urlsplit(server.url).port
    first = io.BytesIO()
    send_request("127.0.0.1", port, request, first, timeout=10)
    assert first.getvalue() == n0.cache.open(up.file_id).read()
    with pytest.raises(PeerRefused, match="replay"):
        send_request("127.0.0.1", port, request, io.BytesIO(), timeout=10)


def test_refused_peer_request_is_refused_and_accuses_nobody_on_chain(system, plain):
    n0, other = system.nodes[0], system.nodes[3]
    server = n0.serve()
    up = n0.upload(plain)  # federation A only
    with pytest.raises(PeerRefused, match="may not read"):
        other.peer_client.fetch(server.url, n0.address, up.file_id, io.BytesIO())
    # a peer's word is not evidence the contract can check: only recordAccess counts false claims
    assert chain_events(system, "FalseClaimCounted", suspect=other.address) == []


# -- concurrency ----------------------------------------------------------------------------------

def test_concurrent_uploads_lose_or_duplicate_nothing(system, tmp_path):
    uploaders = [system.nodes[0], system.nodes[1], system.nodes[3]]
    files = []
    for i in range(len(uploaders)):
        p = tmp_path / f"c{i}.bin"
        p.write_bytes(f"concurrent file {i} ".encode() * 5000)
        files.append(p)
    results, errors = [None] * 3, []

    def run(i):
        try:
            results[i] = uploaders[i].upload(files[i])
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ids = [r.file_id for r in results]
    assert len(set(ids)) == 3
    for r, node in zip(results, uploaders):
        registered = chain_events(system, "FileRegistered", fileId=r.file_id)
        assert len(registered) == 1 and registered[0]["uploader"] == node.address
