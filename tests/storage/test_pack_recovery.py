"""The embedded store after a reboot: an index commit an operating-system crash took is rebuilt from the packs.

An add fsyncs its pack (blocks and a trailer naming them and the pin) and only
then commits the index without an fsync of its own. A power loss can take
that commit; these tests take it by hand (the rows deleted, the recorded boot
id changed, as after a reboot) and check what the next open puts back, and
what it refuses to.
"""

from __future__ import annotations

import io
import os
import sqlite3

import pytest

from fogfed.storage import embedded
from fogfed.storage.embedded import TRAILER_MAGIC, EmbeddedStore
from tests.storage.helpers import CHUNK, prng_bytes


def lose_commit(store: EmbeddedStore, cid: str) -> None:
    """What a power loss after the add's (unsynced) commit leaves: no rows for it, another boot."""
    key = str(cid)
    with sqlite3.connect(store.root / "index.sqlite3") as db:
        packs = [p for (p,) in db.execute(
            "SELECT DISTINCT b.pack FROM blocks b JOIN pin_blocks p ON p.key = b.key WHERE p.root = ?", (key,))]
        db.execute("DELETE FROM pin_blocks WHERE root = ?", (key,))
        db.execute("DELETE FROM pins WHERE root = ?", (key,))
        for pack in packs:
            db.execute("DELETE FROM blocks WHERE pack = ?", (pack,))
        db.execute("UPDATE meta SET value = 'an-earlier-boot' WHERE key = 'boot_id'")
    store.close()


def watch_commits(monkeypatch) -> list[int]:
    """The ``synchronous`` mode (1 NORMAL, 2 FULL) of every index transaction from now on."""
    modes: list[int] = []
    real = embedded._transaction

    def watched(db):
        modes.append(db.execute("PRAGMA synchronous").fetchone()[0])
        return real(db)

    monkeypatch.setattr(embedded, "_transaction", watched)
    return modes


def only_pack(store: EmbeddedStore):
    (path,) = sorted((store.root / "packs").iterdir())
    return path


@pytest.fixture
def data():
    return prng_bytes(3 * CHUNK + 1234, seed=7)


def test_every_pack_ends_with_a_trailer_naming_its_pin(tmp_path, data):
    store = EmbeddedStore(tmp_path / "s")
    cid = store.add(io.BytesIO(data))
    described = embedded._read_trailer(only_pack(store))
    assert described is not None and described["pin"] == cid and described["order"][-1] == cid
    assert only_pack(store).read_bytes().endswith(TRAILER_MAGIC)
    assert b"".join(store.cat(cid)) == data  # the trailer is after the blocks: reads are unchanged


def test_a_lost_index_commit_is_rebuilt_at_the_first_open_after_a_reboot(tmp_path, data):
    store = EmbeddedStore(tmp_path / "s")
    cid = store.add(io.BytesIO(data))
    lose_commit(store, cid)
    with sqlite3.connect(store.root / "index.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM pins").fetchone()[0] == 0  # the crash took the pin
    again = EmbeddedStore(store.root)
    assert again.has(cid) and b"".join(again.cat(cid)) == data
    assert again.collect_garbage() == 0  # the pack is named again: not garbage


def test_without_a_reboot_nothing_is_scanned(tmp_path, data, monkeypatch):
    store = EmbeddedStore(tmp_path / "s")
    store.add(io.BytesIO(data))
    calls = []
    monkeypatch.setattr(EmbeddedStore, "recover", lambda self: calls.append(self) or 0)
    EmbeddedStore(store.root)
    assert calls == []


def test_a_torn_trailer_is_not_recovered_and_stays_garbage(tmp_path, data):
    store = EmbeddedStore(tmp_path / "s")
    cid = store.add(io.BytesIO(data))
    pack = only_pack(store)
    lose_commit(store, cid)
    with open(pack, "r+b") as f:
        f.truncate(os.path.getsize(pack) - 5)  # the crash cut the pack's last write
    again = EmbeddedStore(store.root)
    assert not again.has(cid)
    assert again.collect_garbage() == 1 and not pack.exists()


def test_a_block_the_crash_tore_is_not_recovered(tmp_path, data):
    store = EmbeddedStore(tmp_path / "s")
    cid = store.add(io.BytesIO(data))
    pack = only_pack(store)
    lose_commit(store, cid)
    with open(pack, "r+b") as f:  # the trailer is whole, a block's page was not written
        f.seek(100)
        byte = f.read(1)[0]
        f.seek(100)
        f.write(bytes([byte ^ 0xFF]))
    assert not EmbeddedStore(store.root).has(cid)


def test_a_hostile_trailer_cannot_point_outside_the_pack(tmp_path, data):
    store = EmbeddedStore(tmp_path / "s")
    cid = store.add(io.BytesIO(data))
    pack = only_pack(store)
    lose_commit(store, cid)
    blocks = pack.read_bytes()
    described = embedded._read_trailer(pack)
    described["fresh"][0][1] = 10**12  # a forged offset, with a trailer digest that matches it
    body = embedded._trailer(described)
    end = len(blocks) - len(embedded._trailer(embedded._read_trailer(pack)))
    pack.write_bytes(blocks[:end] + body)
    assert not EmbeddedStore(store.root).has(cid)


def test_without_a_boot_id_every_commit_is_synchronous(tmp_path, data, monkeypatch):
    monkeypatch.setattr(embedded, "_boot_id", lambda: None)
    modes = watch_commits(monkeypatch)
    store = EmbeddedStore(tmp_path / "s")
    store.add(io.BytesIO(data))
    assert modes == [2]  # FULL


def test_with_a_boot_id_an_add_commits_without_waiting_but_a_removal_waits(tmp_path, data, monkeypatch):
    store = EmbeddedStore(tmp_path / "s")
    modes = watch_commits(monkeypatch)
    cid = store.add(io.BytesIO(data))
    store.add(io.BytesIO(data))  # nothing new: no pack describes it, so its commit is synchronous
    store.remove(cid)
    assert modes == [1, 2, 2]  # NORMAL, FULL, FULL
