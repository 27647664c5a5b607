"""A refresh killed (SIGKILL) at each step, then retried or synced: exactly one new generation, every
member's entry in the committed bundle opens, nothing left unfinished.

Real ``fogfed`` processes on one persistent embedded chain and embedded store (fogfed._faults). The
"sent, not mined yet" case is the kill after the bundle is stored with the commit then mined by the
dead process's transaction before the retry (the retry must see it, not start a second generation).
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from fogfed.chain import connect
from fogfed.keys import NodeIdentity
from fogfed.protocol.enrollment import EnrollmentRequest
from fogfed.protocol.files import cid_of_file_id
from fogfed.protocol.keydelivery import open_node_key
from fogfed.protocol.refresh import Bundle
from fogfed.storage import EmbeddedStore
from fogfed.tas import TrustedAuthority
from tests.cli.helpers import PASSPHRASE
from tests.tas.test_faults import LIGHT, fogfed


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("refresh-faults")
    chain = connect(f"embedded:{root / 'chain'}")
    tas = TrustedAuthority.init(root / "tas", chain, PASSPHRASE, account=chain.dev_accounts()[0], kdf=LIGHT)
    tas.use_store(EmbeddedStore(root / "store"))  # the CLI's default store in this FOGFED_HOME
    return root, chain, tas


def _federation(tas: TrustedAuthority, location: str, n: int = 3) -> tuple[int, list[NodeIdentity]]:
    idents = [NodeIdentity.generate() for _ in range(n)]
    for ident in idents:
        res = tas.enroll(EnrollmentRequest.create(ident, location, "health", chain_id=tas.chain_id,
                                                  contract=tas.contract_address), approve=True)
    return res.federation_id, idents


def _check_one_generation(tas: TrustedAuthority, fid: int, idents: list[NodeIdentity], generation: int) -> None:
    """Exactly ``generation`` refreshes on chain; the last bundle holds every member, each entry opens."""
    refreshes = tas.fed.events(names=["TreeRefreshed"], where={"federationId": fid})
    assert len(refreshes) == generation
    tree = tas.trees.get(fid)
    assert tree.generation == generation and tree.bundle == refreshes[-1].args["bundle"]
    bundle = Bundle.from_bytes(b"".join(tas.store.cat(cid_of_file_id(tree.bundle))))
    assert [n for n, _ in bundle.entries] == [i.address for i in idents]
    for leaf, ident in enumerate(idents):
        sk = open_node_key(ident, bundle.entries[leaf][1], tas.public_key, chain_id=tas.chain_id,
                           contract=tas.contract_address, federation_id=fid, epoch=bundle.epoch,
                           is_operator=tas.fed.is_operator)
        assert sorted(a for a in sk.attributes if a.startswith("ct:")) == sorted(
            f"ct:{fid}:{generation}:{((1 << tree.height) + leaf) >> i}" for i in range(tree.height))
    assert tas.journal.unfinished() == [] and tas.trees.missing_keys(fid) == []


@pytest.mark.parametrize("finish", ["retry", "sync"])
@pytest.mark.parametrize("kill_at", ["refresh:stored", "refresh:mined"])
def test_refresh_killed_at_any_step_makes_one_generation(world, kill_at: str, finish: str) -> None:
    root, chain, tas = world
    fid, idents = _federation(tas, f"{kill_at.split(':')[1]}{finish}")
    killed = fogfed(root, "tas", "refresh", str(fid), kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert tas.journal.unfinished("refresh")  # the entry is what the next run finishes
    again = fogfed(root, "tas", *(("refresh", str(fid)) if finish == "retry" else ("sync",)), "--json")
    assert again.returncode == 0, again.stderr
    if finish == "retry":
        assert json.loads(again.stdout)["generation"] == 1
    _check_one_generation(tas, fid, idents, 1)
    # a fresh refresh afterwards is a new, second generation (the journal entry is done)
    assert tas.refresh(fid).generation == 2
    _check_one_generation(tas, fid, idents, 2)


def test_commit_sent_by_the_killed_process_is_found_not_repeated(world) -> None:
    root, chain, tas = world
    fid, idents = _federation(tas, "sentcommit")
    assert fogfed(root, "tas", "refresh", str(fid), kill_at="refresh:stored").returncode == -signal.SIGKILL
    [entry] = tas.journal.unfinished("refresh")
    # the dead process's transaction, mined after it died: the same epoch and bundle digest
    tas.fed.bump_epoch(tas.account, fid, entry.data["epoch"], bytes.fromhex(entry.data["digest"]))
    head = chain.block_number()
    res = tas.refresh(fid)
    assert chain.block_number() == head and res.generation == 1  # nothing sent again
    _check_one_generation(tas, fid, idents, 1)


def test_a_removal_between_kill_and_retry_rebuilds_the_bundle_without_the_removed_node(world) -> None:
    root, chain, tas = world
    fid, idents = _federation(tas, "removedmeanwhile")
    assert fogfed(root, "tas", "refresh", str(fid), kill_at="refresh:stored").returncode == -signal.SIGKILL
    tas.remove(idents[0].address)
    res = tas.refresh(fid)
    assert res.members == 2
    _check_one_generation(tas, fid, idents[1:], 1)


def test_join_into_a_full_tree_killed_during_its_refresh_is_finished_by_the_retry(world) -> None:
    root, chain, tas = world
    fid, idents = _federation(tas, "fulljoin", 2)
    tree = tas.trees.get(fid)
    free = tree.capacity - tree.assigned
    fillers = ["0x" + os.urandom(20).hex() for _ in range(free)]
    tas.fed.add_members(tas.account, fid, fillers, [bytes(range(1, 33))] * free)
    late = NodeIdentity.generate()
    req = root / "late.json"
    req.write_text(EnrollmentRequest.create(late, "fulljoin", "health", chain_id=tas.chain_id,
                                            contract=tas.contract_address).to_json())
    killed = fogfed(root, "tas", "enroll", str(req), "--approve", kill_at="refresh:stored")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not tas.fed.member(late.address).active  # the join waits for its refresh
    again = fogfed(root, "tas", "enroll", str(req), "--approve", "--json")
    assert again.returncode == 0, again.stderr
    tree = tas.trees.get(fid)
    assert len(tas.fed.events(names=["TreeRefreshed"], where={"federationId": fid})) == 1
    assert tree.generation == 1 and tree.leaves[late.address] == tree.assigned - 1
    assert tas.trees.missing_keys(fid) == [] and tas.journal.unfinished() == []
    [delivery] = tas.fed.events(names=["KeyDelivered"], where={"node": late.address})
    assert delivery.block_number > tree.refreshed_block  # its key is for the new generation
