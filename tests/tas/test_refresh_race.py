"""A join mined between the building of a refresh bundle and its commit, by a second TAS process.

The TAS lock serialises one home; two homes of the same TAS account (or two
operators) do not share it, and the contract does not refuse the commit (a
join does not move the epoch). The newcomer is the unlucky side: the new
generation gives it a leaf the bundle has no entry for, so without a fix it
could read no file uploaded after the refresh. Here the second process is a
real ``fogfed tas enroll`` run while the first TAS sits between "bundle
stored" and ``bumpEpoch``; the refresh itself, or a later ``tas sync`` from
either home, must deliver the newcomer its key of the new generation.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from fogfed._faults import at_step
from fogfed.chain import connect
from fogfed.protocol.refresh import Bundle
from fogfed.protocol.files import cid_of_file_id
from fogfed.storage import EmbeddedStore
from tests.cli.helpers import FOGFED, env_for
from tests.e2e.conftest import PASS, build_system


class Killed(Exception):
    """The first TAS process dies right after its commit (in-process stand-in for SIGKILL)."""


@pytest.fixture
def race(tmp_path):
    root = tmp_path
    system = build_system(connect(f"embedded:{root / 'chain'}"), EmbeddedStore(root / "store"), root,
                          layout=("A", "A"))
    shutil.copytree(root / "tas", root / "tas2")  # the same TAS account and keys, a second home and lock
    yield root, system
    system.close()


def second_tas(root, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(FOGFED), *args, "--home", str(root / "tas2")], capture_output=True, text=True,
                          env=env_for(root, FOGFED_RPC=f"embedded:{root / 'chain'}", FOGFED_PASSPHRASE=PASS), cwd=root, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def join_during_refresh(root, system, after_commit=None):
    """Refresh federation 1 in this process; a newcomer is enrolled by the second home meanwhile."""
    late = system.new_node("late", system.accounts[len(system.nodes) + 1])
    (root / "late.json").write_text(late.enrollment_request("riyadh", "health").to_json())

    def enroll_elsewhere():
        second_tas(root, "tas", "enroll", str(root / "late.json"), "--approve", "--fund", "0")

    with at_step("refresh:stored", enroll_elsewhere):
        if after_commit is None:
            return late, system.tas.refresh(1)
        with at_step("refresh:mined", after_commit), pytest.raises(Killed):
            system.tas.refresh(1)
    return late, None


def assert_reads_after_refresh(system, late, tmp_path) -> None:
    tree = system.tas.trees.get(1)
    bundle = Bundle.from_bytes(b"".join(system.store.cat(cid_of_file_id(tree.bundle))))
    assert tree.generation == 1 and late.address in tree.leaves
    assert bundle.entry(late.address) is None  # the race did happen: the bundle has no entry for it
    plain = tmp_path / "after.bin"
    plain.write_bytes(b"uploaded after the refresh" * 40)
    up = system.nodes[0].upload(plain)
    got = late.fetch(up.file_id, tmp_path / "got")  # pulls its delivered key of generation 1
    assert got.plaintext_hash == up.plaintext_hash
    assert system.tas.pending() == []


def test_refresh_delivers_the_key_of_a_node_that_joined_while_it_was_built(race, tmp_path):
    root, system = race
    late, res = join_during_refresh(root, system)
    assert res.late == (late.address,) and res.members == 2  # the bundle was built before the join
    assert_reads_after_refresh(system, late, tmp_path)
    # exactly one delivery of the new generation (the second home delivered one of the old one)
    deliveries = system.tas.fed.events(names=["KeyDelivered"], where={"node": late.address})
    assert [d.args["epoch"] for d in deliveries] == [res.epoch - 1, res.epoch]


def test_tas_sync_from_the_other_home_delivers_it_when_the_refresher_died(race, tmp_path):
    root, system = race

    def die():
        raise Killed()

    late, _ = join_during_refresh(root, system, after_commit=die)
    assert system.tas.pending() == [1]  # seen from chain: a member without a key of generation 1
    out = second_tas(root, "tas", "sync", "--json")
    assert late.address in out.stdout
    assert_reads_after_refresh(system, late, tmp_path)
    second_tas(root, "tas", "sync")  # nothing twice
    assert len(system.tas.fed.events(names=["KeyDelivered"], where={"node": late.address})) == 2


def test_a_join_that_changes_the_new_generations_height_is_refreshed_again_by_tas_sync(tmp_path):
    """7 members: the bundle is built for a height-4 tree; the 8th, enrolled meanwhile, makes the chain's
    new generation height 5, so every key in the bundle is for the wrong tree. The refresher dies after
    its commit; `tas sync` from the other home sees the bundle's size and the generation's height disagree."""
    root = tmp_path
    system = build_system(connect(f"embedded:{root / 'chain'}"), EmbeddedStore(root / "store"), root,
                          layout=("A",) * 7)
    shutil.copytree(root / "tas", root / "tas2")
    try:
        def die():
            raise Killed()

        late, _ = join_during_refresh(root, system, after_commit=die)
        tree = system.tas.trees.get(1)
        assert tree.generation == 1 and tree.height == 5 and len(tree.leaves) == 8
        assert system.tas.pending() == [1]  # seen from chain: the bundle's keys are for a height-4 tree
        second_tas(root, "tas", "sync")
        tree = system.tas.trees.get(1)
        assert tree.generation == 2 and tree.height == 5
        bundle = Bundle.from_bytes(b"".join(system.store.cat(cid_of_file_id(tree.bundle))))
        assert late.address in [n for n, _ in bundle.entries] and len(bundle.entries) == 8
        plain = tmp_path / "after.bin"
        plain.write_bytes(b"uploaded after the second refresh" * 40)
        up = system.nodes[0].upload(plain)
        for reader in (late, system.nodes[6]):
            assert reader.fetch(up.file_id, tmp_path / f"got-{reader.address}").plaintext_hash == up.plaintext_hash
        assert system.tas.pending() == []
    finally:
        system.close()
