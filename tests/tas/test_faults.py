"""The TAS killed (SIGKILL) at every step of enrollment and removal, then retried or synced; several
TAS processes at once; tampered local files. Checked against the chain: nothing lost, nothing
duplicated, every member holds a key it can open, local records equal to the chain.

The kill is injected at named steps (``FOGFED_KILL_AT``, fogfed._faults), in real ``fogfed`` processes
on one persistent embedded chain.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from fogfed.chain import connect
from fogfed.keys import NodeIdentity
from fogfed.keys.keystore import KdfParams
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.protocol.keydelivery import open_node_key
from fogfed.tas import TrustedAuthority
from fogfed.tas.state import TasStateError
from tests.cli.helpers import FOGFED, PASSPHRASE, env_for, run_embedded

LIGHT = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
FUND = 10**16  # --fund 0.01


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    chain = connect(f"embedded:{root / 'chain'}")
    tas = TrustedAuthority.init(root / "tas", chain, PASSPHRASE, account=chain.dev_accounts()[0], kdf=LIGHT)
    return root, chain, tas


fogfed = run_embedded


def new_request(root: Path, tas: TrustedAuthority, location: str) -> tuple[NodeIdentity, Path]:
    ident = NodeIdentity.generate()
    req = EnrollmentRequest.create(ident, location, "health", chain_id=tas.chain_id, contract=tas.contract_address)
    path = root / f"{location}-{ident.address}.json"
    path.write_text(req.to_json())
    return ident, path


def check_member(tas: TrustedAuthority, ident: NodeIdentity, location: str) -> None:
    """On chain: one federation for the location, the node active in it, exactly one key for its
    current epoch which the node opens, funded exactly once; the TAS lists it (from chain)."""
    fed = tas.fed
    fid = fed.federation_by_attributes(location, "health")
    created = [e for e in fed.events(names=["FederationCreated"]) if e.args["location"] == location]
    assert len(created) == 1 and fid == created[0].args["federationId"]
    member = fed.member(ident.address)
    assert member.active and member.federation_id == fid
    assert len(fed.events(names=["MemberAdded"], where={"node": ident.address})) == 1
    # one key per membership (covers: nobody is re-keyed by later removals), delivered exactly once
    deliveries = fed.events(names=["KeyDelivered"], where={"node": ident.address})
    assert len(deliveries) == 1
    epoch = deliveries[0].args["epoch"]
    sk = open_node_key(ident, deliveries[0].args["sealedKey"], tas.public_key, chain_id=tas.chain_id,
                       contract=tas.contract_address, federation_id=fid, epoch=epoch, is_operator=fed.is_operator)
    assert f"ff:{fid}" in sk.attributes and any(a.startswith(f"ct:{fid}:0:") for a in sk.attributes)
    assert fed.chain.balance(ident.address) == FUND
    assert ident.address in tas.active_members(fid)
    assert fid in [f.federation_id for f in tas.federations()]


STEPS = ["enroll:journal", "enroll:federation", "enroll:addMember", "enroll:fund-recorded", "enroll:fund-sent",
         "enroll:fund", "deliverKey", "enroll:deliverKey"]


@pytest.mark.parametrize("finish", ["retry", "sync"])
@pytest.mark.parametrize("kill_at", STEPS)
def test_enrollment_killed_at_any_step_is_finished_once(world, kill_at: str, finish: str) -> None:
    root, chain, tas = world
    location = f"{kill_at.replace(':', '').replace('-', '')}{finish}".lower()
    ident, req = new_request(root, tas, location)
    killed = fogfed(root, "tas", "enroll", str(req), "--approve", "--fund", "0.01", kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if finish == "retry":
        again = fogfed(root, "tas", "enroll", str(req), "--approve", "--fund", "0.01", "--json")
        assert again.returncode == 0, again.stderr
    else:  # in this process (a CLI `tas sync` is the same call; its process costs ~2 s)
        TrustedAuthority.open(root / "tas", chain, PASSPHRASE).sync()
    check_member(tas, ident, location)
    status = tas.status()
    assert status["unfinished"] == [] and status["pending_keys"] == []
    # and once more: nothing is sent twice
    block = chain.block_number()
    assert tas.enroll(EnrollmentRequest.from_json(req.read_text()), approve=True).gas == {}
    assert tas.sync() == []
    assert chain.block_number() == block


REMOVE_STEPS = ["remove:journal", "sent:removeMember", "remove:removeMember", "remove:done"]


def check_removed(tas: TrustedAuthority, gone: NodeIdentity, reason: str) -> None:
    """On chain: exactly one removal of the node (by this TAS, with the reason), nothing unfinished or owed."""
    removals = tas.fed.events(names=["MemberRemoved"], where={"node": gone.address})
    assert [(e.args["reason"], e.args["by"]) for e in removals] == [(1, tas.address)]
    assert [e.args["note"] for e in tas.fed.events(names=["RemovalNoted"], where={"node": gone.address})] == [reason]
    assert not tas.fed.member(gone.address).active
    assert tas.status()["unfinished"] == [] and tas.pending() == []


@pytest.mark.parametrize("kill_at, finish", [(s, "retry") for s in REMOVE_STEPS]
                         + [("remove:journal", "sync"), ("remove:removeMember", "sync")])
def test_removal_killed_at_any_step_is_finished_once(world, kill_at: str, finish: str) -> None:
    root, chain, tas = world
    location = "removals"  # one federation for every case: `tas watch` below syncs every federation
    members = [new_request(root, tas, location) for _ in range(2)]
    for ident, req in members:
        tas.enroll(EnrollmentRequest.from_json(req.read_text()), approve=True, fund_wei=FUND)
    (gone, _), (stays, _) = members
    killed = fogfed(root, "tas", "remove", gone.address, "--reason", "rogue", kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if finish == "retry":
        again = fogfed(root, "tas", "remove", gone.address, "--reason", "rogue", "--json")
        assert again.returncode == 0, again.stderr
        # the removal was sent by the killed run from sent:removeMember on; before that, by this one
        assert json.loads(again.stdout)["status"] == ("already removed" if kill_at == "remove:done"
                                                      else "finished")
        assert ("removeMember" in json.loads(again.stdout)["gas"]) == (kill_at == "remove:journal")
    else:
        synced = fogfed(root, "tas", "sync", "--json")
        assert synced.returncode == 0, synced.stderr
    check_removed(tas, gone, "rogue")
    check_member(tas, stays, location)
    block = chain.block_number()
    third = fogfed(root, "tas", "remove", gone.address)  # and again: said, nothing sent
    assert third.returncode == 0 and "already removed" in third.stdout and "nothing sent" in third.stdout, third
    assert tas.sync() == [] and chain.block_number() == block


def test_removal_of_a_non_member_is_bad_input_and_sends_nothing(world) -> None:
    root, chain, tas = world
    block = chain.block_number()
    stranger = NodeIdentity.generate().address
    proc = fogfed(root, "tas", "remove", stranger)
    assert proc.returncode == 2 and "not a member of any federation of this TAS" in proc.stderr, proc.stderr
    assert chain.block_number() == block and tas.status()["unfinished"] == []


def test_concurrent_tas_processes_lose_no_member(world) -> None:
    root, chain, tas = world
    reqs = [new_request(root, tas, f"together{i % 2}") for i in range(4)]
    env = env_for(root, FOGFED_RPC=f"embedded:{root / 'chain'}")
    procs = [subprocess.Popen([str(FOGFED), "tas", "enroll", str(req), "--approve", "--fund", "0.01"],
                              env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _, req in reqs]
    procs.append(subprocess.Popen([str(FOGFED), "tas", "watch", "--count", "6", "--interval", "0.5"], env=env,
                                  cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    for i, (ident, _) in enumerate(reqs):
        check_member(tas, ident, f"together{i % 2}")
    listed = {m for f in json.loads(fogfed(root, "tas", "status", "--json").stdout)["federations"]
              for m in f["members"]}
    assert {ident.address for ident, _ in reqs} <= listed


def test_tampered_state_file_is_refused_and_keys_go_to_the_chains_x25519_key(world) -> None:
    """Issue 10 item 4, from the attacker's side: whoever can write the TAS's files cannot make it
    seal a member's next key to a key of theirs."""
    root, chain, tas = world
    ident, req = new_request(root, tas, "tamper")
    assert fogfed(root, "tas", "enroll", str(req), "--approve", "--fund", "0.01").returncode == 0
    state = root / "tas" / "state.json"
    original = state.read_text()
    attacker = NodeIdentity.generate()
    doc = json.loads(original)
    # the first design's layout, with the member's X25519 key replaced by the attacker's
    doc.update(version=1, members={ident.address: {"federation_id": 1, "location": "tamper", "service": "health",
                                                   "enc_public_key": attacker.enc_public_key.hex()}})
    doc.pop("mac")
    for tampered in (dict(json.loads(original), contract="0x" + "11" * 20), {**json.loads(original), "extra": 1}):
        state.write_text(json.dumps(tampered))
        proc = fogfed(root, "tas", "status")
        assert proc.returncode == 1 and "state.json" in proc.stderr and "Traceback" not in proc.stderr
        with pytest.raises(TasStateError):
            TrustedAuthority.open(root / "tas", chain, PASSPHRASE)
    # a version-1 file (the first design, members inside) is a downgrade in a converted home: refused
    state.write_text(json.dumps(doc))
    with pytest.raises(TasStateError, match="version-1"):
        TrustedAuthority.open(root / "tas", chain, PASSPHRASE)
    state.write_text(original)
    fid = tas.fed.member(ident.address).federation_id
    assert TrustedAuthority.open(root / "tas", chain, PASSPHRASE).reissue(ident.address) > 0
    delivery = tas.fed.events(names=["KeyDelivered"], where={"node": ident.address})[-1]
    sk = open_node_key(ident, delivery.args["sealedKey"], tas.public_key, chain_id=tas.chain_id,
                       contract=tas.contract_address, federation_id=fid, epoch=delivery.args["epoch"],
                       is_operator=tas.fed.is_operator)
    assert any(a.startswith(f"ct:{fid}:0:") for a in sk.attributes)


def test_first_design_home_is_converted_once(tmp_path: Path) -> None:
    """A version-1 state.json and a keystore without a MAC key: opened, nonces kept, converted."""
    from fogfed.keys.keystore import load_keystore, save_keystore
    from fogfed.tas.state import MAC_SECRET

    chain = connect(None)
    tas = TrustedAuthority.init(tmp_path, chain, PASSPHRASE, account=chain.dev_accounts()[0], kdf=LIGHT)
    secrets = load_keystore(tmp_path / "tas.json", PASSPHRASE)
    secrets.pop(MAC_SECRET)
    save_keystore(tmp_path / "tas.json", secrets, PASSPHRASE, kind="tas", overwrite=True, kdf=LIGHT)
    old = {"format": "fogfed-tas-state", "version": 1, "contract": tas.contract_address,
           "deploy_block": tas.fed.deploy_block, "chain_id": tas.chain_id, "address": tas.address,
           "federations": {"1": {"location": "x", "service": "y", "parent": 0}}, "members": {}, "delivered": {},
           "nonces": ["ab" * 16]}
    (tmp_path / "state.json").write_text(json.dumps(old))
    reopened = TrustedAuthority.open(tmp_path, chain, PASSPHRASE)
    assert reopened.nonce_used(bytes.fromhex("ab" * 16)) and reopened.federations() == []
    assert json.loads((tmp_path / "state.json").read_text())["version"] == 2
    assert MAC_SECRET in load_keystore(tmp_path / "tas.json", PASSPHRASE)
    assert TrustedAuthority.open(tmp_path, chain, PASSPHRASE).nonce_used(bytes.fromhex("ab" * 16))


@pytest.mark.parametrize("damage", ["not json", "[]", '{"format": "fogfed-tas-state", "version": 2}'])
def test_damaged_state_file_names_the_file(world, damage: str) -> None:
    root, chain, _ = world
    state = root / "tas" / "state.json"
    saved = state.read_text()
    try:
        state.write_text(damage)
        proc = fogfed(root, "tas", "status")
        assert proc.returncode == 1 and str(state) in proc.stderr and "hint:" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        state.write_text(saved)


def test_a_cache_row_deleted_hides_no_member_after_rebuild(world) -> None:
    """tas.sqlite is a cache: a member dropped from it is found again by `tas sync --rebuild`."""
    import sqlite3

    root, chain, tas = world
    ident, req = new_request(root, tas, "cachecheck")
    assert fogfed(root, "tas", "enroll", str(req), "--approve", "--fund", "0.01").returncode == 0
    db = sqlite3.connect(root / "tas" / "tas.sqlite")
    db.execute("DELETE FROM nodes WHERE address = ?", (ident.address,))
    db.commit()
    db.close()
    fid = tas.fed.member(ident.address).federation_id
    assert ident.address not in tas.active_members(fid)
    assert fogfed(root, "tas", "sync", "--rebuild").returncode == 0
    assert ident.address in tas.active_members(fid)
