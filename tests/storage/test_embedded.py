"""The embedded store: round trips, pins and garbage collection, tampering, bad input."""

from __future__ import annotations

import io
import random
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogfed.errors import InputError
from fogfed.storage import (ContentCorrupted, ContentNotFound, EmbeddedStore, StorageUnavailable,
                            compute_cid, open_store)
from fogfed.storage import embedded
from fogfed.storage.cids import DAG_PB, Cid, parse_cid
from fogfed.storage.importer import import_file
from tests.storage.helpers import CHUNK, prng_bytes, sizes


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(tmp_path / "store")


def packs(store):
    return sorted((store.root / "packs").iterdir())


def block_cids(data):
    return [str(b.cid) for b in import_file(io.BytesIO(data))]


def flip(store, cid, at):
    """Flip one bit of byte ``at`` of stored block ``cid`` (negative: from its end)."""
    path, offset, length = store.block_location(cid)
    with open(path, "r+b") as f:
        f.seek(offset + (at % length))
        byte = f.read(1)[0]
        f.seek(-1, io.SEEK_CUR)
        f.write(bytes([byte ^ 1]))


@sizes
def test_round_trip(store, size):
    data = prng_bytes(size, seed=size)
    cid = store.add(io.BytesIO(data))
    assert cid == compute_cid(io.BytesIO(data))
    assert store.has(cid)
    assert b"".join(store.cat(cid)) == data


def test_progress_reports_growing_totals(store):
    data = prng_bytes(3 * CHUNK + 5)
    seen_add, seen_cat = [], []
    cid = store.add(io.BytesIO(data), progress=seen_add.append)
    b"".join(store.cat(cid, progress=seen_cat.append))
    for seen in (seen_add, seen_cat):
        assert seen == sorted(seen) and seen[-1] == len(data)


def test_one_pack_per_add_and_blocks_not_written_twice(store):
    data = prng_bytes(3 * CHUNK + 9, seed=5)
    cid = store.add(io.BytesIO(data))
    (pack,) = packs(store)
    written = b"".join(b.data for b in import_file(io.BytesIO(data)))
    raw = pack.read_bytes()
    assert raw[:len(written)] == written  # the blocks back to back, each once, then the trailer
    assert embedded._read_trailer(pack)["pin"] == cid and raw.endswith(embedded.TRAILER_MAGIC)
    assert store.blocks(cid) == block_cids(data)
    for i, key in enumerate(store.blocks(cid)):
        path, offset, length = store.block_location(key)
        assert path == pack and length == len(list(import_file(io.BytesIO(data)))[i].data)
    assert store.add(io.BytesIO(data)) == cid  # everything present: no new pack
    assert packs(store) == [pack]
    longer = store.add(io.BytesIO(data[:3 * CHUNK] + b"other tail"))  # only the new tail and root are written
    (new,) = set(packs(store)) - {pack}
    assert store.block_location(store.blocks(longer)[-1])[0] == new
    assert new.stat().st_size < CHUNK


def test_remove_collects_only_unshared_blocks(store):
    shared = prng_bytes(2 * CHUNK, seed=1)
    a = store.add(io.BytesIO(shared + b"tail of a"))
    b = store.add(io.BytesIO(shared + b"tail of b"))
    pack_a, pack_b = (store.block_location(x)[0] for x in (a, b))
    assert sorted([pack_a, pack_b]) == packs(store)
    store.remove(a)
    assert not store.has(a) and store.has(b)
    for gone in block_cids(shared + b"tail of a")[2:]:
        with pytest.raises(ContentNotFound, match=gone):
            store.block_location(gone)
    assert packs(store) == sorted([pack_a, pack_b])  # pack a still holds the shared leaves
    assert b"".join(store.cat(b)) == shared + b"tail of b"
    with pytest.raises(ContentNotFound, match=a):
        store.cat(a)
    store.remove(a)  # removing twice is fine
    store.remove(b)
    assert packs(store) == []


def test_a_pack_nothing_references_is_deleted(store):
    x = store.add(io.BytesIO(prng_bytes(CHUNK + 1, seed=6)))
    y = store.add(io.BytesIO(prng_bytes(CHUNK + 1, seed=7)))
    pack_y = store.block_location(y)[0]
    store.remove(x)
    assert packs(store) == [pack_y]
    stray = store.root / "packs" / "00112233aabbccdd.pack"  # left by an add that crashed before its pin
    stray.write_bytes(b"half a block")
    store.remove(x)
    assert packs(store) == [pack_y] and store.has(y)


def test_tampered_leaf_is_detected_and_named(store):
    data = prng_bytes(3 * CHUNK, seed=2)
    cid = store.add(io.BytesIO(data))
    second_leaf = compute_cid(io.BytesIO(data[CHUNK:2 * CHUNK]))  # a one-chunk file's root is its leaf
    flip(store, second_leaf, 100)
    pieces = store.cat(cid)
    assert next(pieces) == data[:CHUNK]
    with pytest.raises(ContentCorrupted, match=second_leaf):
        next(pieces)


def test_tampered_root_is_detected_before_any_byte(store):
    cid = store.add(io.BytesIO(b"hello"))
    path, offset, length = store.block_location(cid)
    raw = path.read_bytes()
    path.write_bytes(raw[:offset] + raw[offset:offset + length].replace(b"hello", b"jello") + raw[offset + length:])
    with pytest.raises(ContentCorrupted, match=cid):
        next(store.cat(cid))


def test_truncated_pack_is_detected(store):
    data = prng_bytes(2 * CHUNK, seed=8)
    cid = store.add(io.BytesIO(data))
    path, _, _ = store.block_location(cid)
    with open(path, "r+b") as f:
        f.truncate(CHUNK + 100)  # the second leaf and the root cut short
    with pytest.raises(ContentCorrupted, match=cid):
        b"".join(store.cat(cid))


def test_re_adding_repairs_a_damaged_block(store):
    data = prng_bytes(2 * CHUNK, seed=9)
    cid = store.add(io.BytesIO(data))
    flip(store, block_cids(data)[1], -1)
    assert store.add(io.BytesIO(data)) == cid
    assert b"".join(store.cat(cid)) == data
    assert len(packs(store)) == 2  # the repair went to a new pack; the old one still holds the intact leaf


def test_unknown_cid_is_not_found(store):
    with pytest.raises(ContentNotFound, match="QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"):
        store.cat("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
    assert not store.has("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")


def test_missing_inner_block_is_reported(store):
    data = prng_bytes(2 * CHUNK, seed=3)
    first = store.add(io.BytesIO(data[:CHUNK]))  # its only block is the first leaf of the larger file
    cid = store.add(io.BytesIO(data))
    store.block_location(first)[0].unlink()
    with pytest.raises(ContentNotFound, match=first):
        b"".join(store.cat(cid))


def test_cidv1_of_a_stored_file_is_accepted(store):
    cid = store.add(io.BytesIO(b"some bytes"))
    v1 = str(Cid(1, DAG_PB, parse_cid(cid).digest))
    assert v1.startswith("bafy")
    assert store.has(v1)
    assert b"".join(store.cat(v1)) == b"some bytes"


BAD_CIDS = [
    "", " ", "Qm", "hello", "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQ",  # one character short
    "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH ", "../../etc/passwd", "Qm" + "1" * 200,
    "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",  # dag-cbor
    "bafkqaaa",  # identity hash
    "f01551220" + "00" * 31,  # digest one byte short
    "zQmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
]


@pytest.mark.parametrize("bad", BAD_CIDS)
def test_malformed_cids_are_input_errors(store, bad):
    for call in (store.cat, store.has, store.remove):
        with pytest.raises(InputError, match="CID"):
            call(bad)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80) | st.binary(max_size=40).map(lambda b: "f" + b.hex()) |
       st.binary(max_size=40).map(lambda b: "b" + b.hex()))
def test_any_string_parses_or_gives_input_error(text):
    try:
        cid = parse_cid(text)
    except InputError as exc:
        assert "CID" in exc.message
    else:
        assert parse_cid(str(cid)) == cid


def test_text_stream_is_rejected(store):
    with pytest.raises(InputError, match="binary"):
        store.add(io.StringIO("not bytes"))


def test_unusable_root_is_storage_unavailable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageUnavailable, match=str(blocker)):
        EmbeddedStore(blocker)


def test_concurrent_adds_of_the_same_content(store):
    data = prng_bytes(4 * CHUNK + 17, seed=4)
    results, errors = [], []

    def add():
        try:
            results.append(store.add(io.BytesIO(data)))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(set(results)) == 1
    assert b"".join(store.cat(results[0])) == data
    assert len(packs(store)) == 1  # the losers' packs, whose blocks another add stored first, are gone


def test_open_store_defaults_to_embedded_under_fogfed_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FOGFED_HOME", str(tmp_path))
    store = open_store()
    assert isinstance(store, EmbeddedStore) and store.root == tmp_path / "store"
    assert "embedded store at" in store.describe()


def test_old_block_file_layout_is_refused(tmp_path):
    old = tmp_path / "old"
    (old / "blocks" / "ab").mkdir(parents=True)
    (old / "pins").mkdir()
    with pytest.raises(StorageUnavailable, match="one-file-per-block") as caught:
        EmbeddedStore(old)
    assert "move that directory aside" in caught.value.hint


def test_garbage_index_is_storage_unavailable(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    (root / "index.sqlite3").write_bytes(b"not a database" * 100)
    with pytest.raises(StorageUnavailable, match="not usable"):
        EmbeddedStore(root)


@pytest.mark.parametrize("row", [("../../etc/passwd", 0, 10), ("0011223344556677.pack", -1, 10),
                                 ("0011223344556677.pack", 0, 3 * 1024 * 1024), ("x", "0", "1"),
                                 ("0011223344556677.pack", 0, 5)])
def test_hostile_index_entries_are_refused(store, row):
    """The index is storage too: a location outside packs/, negative, oversized or wrong is never trusted."""
    cid = store.add(io.BytesIO(b"hello"))
    with sqlite3.connect(store.root / "index.sqlite3") as db:
        db.execute("UPDATE blocks SET pack = ?, offset = ?, length = ? WHERE key = ?", (*row, cid))
    (store.root / "packs" / "0011223344556677.pack").write_bytes(b"x" * 64)
    with pytest.raises((ContentCorrupted, ContentNotFound), match=cid):
        b"".join(store.cat(cid))
    assert store.add(io.BytesIO(b"hello")) == cid  # a re-add repairs the entry
    assert b"".join(store.cat(cid)) == b"hello"


_FILE_TOO_LARGE = """
import io, random, resource, signal, sys
from fogfed.storage import EmbeddedStore, StorageUnavailable
store = EmbeddedStore(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
try:
    store.add(io.BytesIO(random.Random(1).randbytes(3 << 20)))
except StorageUnavailable as exc:
    print("refused:", exc.message)
"""


def test_a_failed_pack_write_pins_nothing_and_leaves_no_pack(tmp_path):
    """A real write error on the pack writer thread (file size limit) fails the add cleanly."""
    root = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-c", _FILE_TOO_LARGE, str(root)], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert "refused: embedded store at" in proc.stdout and "large" in proc.stdout
    store = EmbeddedStore(root)
    assert not store.has(compute_cid(io.BytesIO(random.Random(1).randbytes(3 << 20))))
    assert packs(store) == []


def test_on_cid_hears_the_cid_before_the_pin(store):
    """What an add is about to pin is told first (ContentStore.add's on_cid): a caller killed between the
    pin and the return still knows it (fogfed.node.leftovers)."""
    data = prng_bytes(3 * CHUNK + 5, seed=31)
    heard = []
    cid = store.add(io.BytesIO(data), on_cid=lambda c: heard.append((c, store.has(c))))
    assert heard == [(cid, False)] and store.has(cid) and cid == compute_cid(io.BytesIO(data))


def test_a_failing_on_cid_pins_nothing(store):
    class Refused(Exception):
        pass

    def refuse(cid):
        raise Refused(cid)
    data = prng_bytes(2 * CHUNK, seed=32)
    with pytest.raises(Refused):
        store.add(io.BytesIO(data), on_cid=refuse)
    assert not store.has(compute_cid(io.BytesIO(data)))
    assert store.collect_garbage() == 1 and packs(store) == []  # its pack goes like a crashed add's
