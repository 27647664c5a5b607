"""Issue 10's attacks, from the attacker's side, on Anvil: raw transactions, hostile files.

The system runs on Anvil with the embedded content store (so a test can alter stored
blocks, as a rogue storage provider would). Federation A: n0, n1, n2; B: n3; n4 outsider.
"""

from __future__ import annotations

import os

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector

from fogfed.chain import connect
from fogfed.node import AccessDenied, FetchFailed
from fogfed.protocol.files import file_id_for
from fogfed.storage import EmbeddedStore
from tests.e2e.conftest import build_system

ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def system(anvil_url, tmp_path_factory):
    root = tmp_path_factory.mktemp("fogfed-attacks")
    system = build_system(connect(anvil_url), EmbeddedStore(root / "store"), root)
    yield system
    system.close()


def raw_tx(system, sender, signature: str, types: list[str], args: list, *, tip: int = 0) -> dict:
    """Sign and send a transaction by hand (no wrapper, no gas estimate); its receipt."""
    w3 = system.chain.w3
    data = function_signature_to_4byte_selector(signature) + encode(types, args)
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    tx = {"to": system.tas.fed.address, "data": data, "gas": 300_000, "chainId": w3.eth.chain_id,
          "nonce": w3.eth.get_transaction_count(sender.address), "maxFeePerGas": 2 * base + tip + 10**9,
          "maxPriorityFeePerGas": tip + 10**9}
    signed = Account.sign_transaction(tx, sender.key)
    return w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))


def members_of_b(system, n: int):
    """``n`` fresh funded accounts enrolled in federation B (the attacker's federation)."""
    tas = system.tas
    accounts = [Account.create() for _ in range(n)]
    for a in accounts:
        system.chain.fund(a.address, 10**18, system.accounts[0])
    tas.fed.add_members(system.accounts[0], 2, [a.address for a in accounts], [os.urandom(32) for _ in accounts])
    return accounts


def test_item1_framing_by_false_claim_reports_removes_nobody(system):
    """Three members of another federation accuse an honest member that never asked them anything."""
    victim = system.nodes[1]
    before = system.tas.fed.member(victim.address)
    epoch = system.tas.fed.federation(1).epoch
    for attacker in members_of_b(system, 3):
        raw_tx(system, attacker, "reportFalseClaim(address,bytes32)", ["address", "bytes32"],
               [victim.address, os.urandom(32)])
    after = system.tas.fed.member(victim.address)
    assert after.active and after.false_claims == before.false_claims == 0
    assert system.tas.fed.federation(1).epoch == epoch  # no re-key was forced on its federation


def test_item2_a_copied_pending_registration_neither_takes_over_nor_blocks(system, plain):
    """A member of B copies n0's pending registerFile (same digest, higher tip) and lands first."""
    n0, n1 = system.nodes[0], system.nodes[1]
    [squatter] = members_of_b(system, 1)
    digest, ph, ref = os.urandom(32), os.urandom(32), os.urandom(32)
    epoch_a, epoch_b = (system.tas.fed.federation(f).epoch for f in (1, 2))
    sig = "registerFile(uint32,bytes32,uint32,bytes32,bytes32,uint32,string)"
    types = ["uint32", "bytes32", "uint32", "bytes32", "bytes32", "uint32", "string"]
    copied = raw_tx(system, squatter, sig, types, [2, digest, 0, ph, ref, epoch_b, "ff:2"], tip=10**10)
    honest = raw_tx(system, n0.account, sig, types, [1, digest, 0, ph, ref, epoch_a, "ff:1"])
    assert honest["status"] == 1  # the original is not blocked
    mine = system.tas.fed.file(file_id_for(n0.address, digest))
    assert (mine.uploader, mine.federation_id) == (n0.address, 1)  # and not taken over
    if copied["status"] == 1:  # the copy names the squatter's own file, in its own federation
        theirs = system.tas.fed.file(file_id_for(squatter.address, digest))
        assert (theirs.uploader, theirs.federation_id) == (squatter.address, 2)
    # n0's colleagues read n0's file with no false claim counted
    assert system.tas.fed.has_access(n1.address, mine.file_id)
    assert n1.fed.record_access(n1.account, mine.file_id).value is True
    assert system.tas.fed.member(n1.address).false_claims == 0


def test_item5_one_rogue_damage_report_does_not_end_an_honest_announcement(system, plain, tmp_path):
    n0, n1, rogue = system.nodes[0], system.nodes[1], system.nodes[2]
    n0.serve()
    up = n0.upload(plain)
    expires = system.tas.fed.cache_expiry(up.file_id, n0.address)
    raw_tx(system, rogue.account, "reportDamage(bytes32,address,uint8)", ["bytes32", "address", "uint8"],
           [up.file_id, n0.address, 1])
    assert system.tas.fed.cache_expiry(up.file_id, n0.address) == expires
    assert [h.holder for h in system.tas.fed.fresh_cache_holders(up.file_id)] == [n0.address]
    # a reported holder is still used (last among peers) when it serves an intact copy
    assert n1.fetch(up.file_id, tmp_path / "a.bin").source == f"peer:{n0.address}"


def test_item5_an_intact_copy_clears_a_false_damage_mark(system, plain, tmp_path):
    n0, n1, rogue = system.nodes[0], system.nodes[1], system.nodes[2]
    up = n0.upload(plain)
    raw_tx(system, rogue.account, "reportDamage(bytes32,address,uint8)", ["bytes32", "address", "uint8"],
           [up.file_id, ZERO, 1])
    assert system.tas.fed.file(up.file_id).damaged
    n0.evict(up.file_id)
    got = n1.fetch(up.file_id, tmp_path / "b.bin")
    assert got.source == "storage" and "reportIntact" in got.gas
    assert not system.tas.fed.file(up.file_id).damaged


def test_item5_announcements_are_renewed_from_the_chain_not_the_local_index(system, plain):
    n0 = system.nodes[0]
    up = n0.upload(plain)
    n0.fed.withdraw_cache(n0.account, up.file_id)  # ended on chain; the local index still says fresh
    assert system.tas.fed.cache_expiry(up.file_id, n0.address) == 0
    assert n0.refresh_announcements() >= 1
    assert system.tas.fed.cache_expiry(up.file_id, n0.address) > 0


def test_item10_honest_node_is_refused_locally_and_never_strikes(system, plain, tmp_path):
    """A member of B fetching A's file (a typo'd id, a moved node's old file) sends nothing."""
    n0, n3 = system.nodes[0], system.nodes[3]
    up = n0.upload(plain, policy="loc:riyadh")
    w3 = system.chain.w3
    sent = w3.eth.get_transaction_count(n3.address)
    for _ in range(system.tas.fed.settings().false_claim_threshold + 1):
        with pytest.raises(AccessDenied, match="another federation.*no transaction was sent.*0 of 3"):
            n3.fetch(up.file_id, tmp_path / "x.bin")
    with pytest.raises(AccessDenied, match="no file"):
        n3.fetch(os.urandom(32), tmp_path / "x.bin")
    assert w3.eth.get_transaction_count(n3.address) == sent
    assert system.tas.fed.member(n3.address).active and system.tas.fed.member(n3.address).false_claims == 0


def test_item11_a_corrupted_encrypted_key_is_reported_as_damage(system, plain, tmp_path):
    """A hostile store alters the encrypted file key's block: the fetch fails and the damage is on chain."""
    n0, n1 = system.nodes[0], system.nodes[1]
    up = n0.upload(plain)
    ref = system.tas.fed.file(up.file_id).enc_sk_ref
    from fogfed.protocol.files import cid_of_file_id
    path, offset, length = system.store.block_location(cid_of_file_id(ref))
    with open(path, "r+b") as f:
        f.seek(offset + length - 5)
        byte = f.read(1)[0]
        f.seek(offset + length - 5)
        f.write(bytes([byte ^ 0xFF]))
    with pytest.raises(FetchFailed, match="encrypted key"):
        n1.fetch(up.file_id, tmp_path / "k.bin")
    assert not (tmp_path / "k.bin").exists()
    damaged = [e.args for e in system.tas.fed.events(names=["FileDamaged"], where={"fileId": up.file_id})]
    assert [(d["holder"], d["reporter"], d["reason"]) for d in damaged] == [(ZERO, n1.address, 2)]


# -- item 3: a rogue member's peer endpoint --------------------------------------------------------

def rogue_holder(system, rogue, file_id, body):
    """``rogue`` (a member of the file's federation) announces a copy and points its endpoint at a
    hostile server; returns the server."""
    from tests.node.hostile import HostilePeer
    peer = HostilePeer(body)
    rogue.fed.set_endpoint(rogue.account, peer.url)
    rogue.fed.announce_cache(rogue.account, file_id, system.chain.now() + 3600)
    return peer


def test_item3_a_flood_from_a_rogue_holder_is_cut_at_the_declared_size(system, plain, tmp_path):
    n0, n1, rogue = system.nodes[0], system.nodes[1], system.nodes[2]
    up = n0.upload(plain)
    n0.evict(up.file_id)  # only the rogue and storage hold it

    def flood():  # 64 MiB for a 600 KiB file
        for _ in range(1024):
            yield b"\xaa" * 65536

    peer = rogue_holder(system, rogue, up.file_id, flood)
    try:
        got = n1.fetch(up.file_id, tmp_path / "f.bin")
    finally:
        peer.close()
    assert got.source == "storage" and (tmp_path / "f.bin").read_bytes() == plain.read_bytes()
    assert any(r.startswith(f"peer:{rogue.address}") and "reported" in r for r in got.damage_reports)
    # the fetcher hung up after the declared size (plus what socket buffers held), not after 64 MiB
    assert peer.sent < 16 << 20


def test_item3_a_trickle_from_a_rogue_holder_is_ended_by_the_deadline(system, plain, tmp_path, monkeypatch):
    import time
    n0, n1, rogue = system.nodes[0], system.nodes[1], system.nodes[2]
    up = n0.upload(plain)
    n0.evict(up.file_id)

    def trickle():  # one byte every 0.3 s for a minute: every socket read succeeds
        for _ in range(200):
            yield b"x"
            time.sleep(0.3)

    monkeypatch.setattr(n1.peer_client, "timeout", 2.0)
    monkeypatch.setattr(n1.peer_client, "min_rate", 10**8, raising=False)  # deadline ~2 s for this file
    peer = rogue_holder(system, rogue, up.file_id, trickle)
    started = time.monotonic()
    try:
        got = n1.fetch(up.file_id, tmp_path / "t.bin")
    finally:
        peer.close()
    assert time.monotonic() - started < 20
    assert got.source == "storage" and any("too slow" in r or "longer than" in r for r in got.damage_reports)


def test_item3_a_reported_holder_is_tried_after_the_others(system, plain, tmp_path):
    """The rogue re-announces at once after a report: it must not be first in line again."""
    n0, n1, rogue = system.nodes[0], system.nodes[1], system.nodes[2]
    up = n0.upload(plain)
    n0.evict(up.file_id)

    def garbage():
        yield os.urandom(1000)

    peer = rogue_holder(system, rogue, up.file_id, garbage)  # the rogue announces first
    try:
        first = n1.fetch(up.file_id, tmp_path / "1.bin")
        assert any(r.startswith(f"peer:{rogue.address}") and "reported" in r for r in first.damage_reports)
        rogue.fed.announce_cache(rogue.account, up.file_id, system.chain.now() + 3600)  # re-announces at once
        n1.serve()  # n1 now holds an intact copy (announced) and serves it
        before = peer.connections
        second = n0.fetch(up.file_id, tmp_path / "2.bin")  # n0 evicted its own copy above
    finally:
        peer.close()
    assert second.source == f"peer:{n1.address}"  # the unreported holder first
    assert peer.connections == before  # the reported one was not even asked
