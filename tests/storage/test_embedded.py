"""The embedded store: round trips, pins and garbage collection, tampering, bad input."""

from __future__ import annotations

import io
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fogfed.errors import InputError
from fogfed.storage import (ContentCorrupted, ContentNotFound, EmbeddedStore, StorageUnavailable,
                            compute_cid, open_store)
from fogfed.storage.cids import DAG_PB, Cid, parse_cid
from tests.storage.helpers import CHUNK, prng_bytes, sizes


@pytest.fixture
def store(tmp_path):
    return EmbeddedStore(tmp_path / "store")


def block_files(store):
    return sorted(p for p in (store.root / "blocks").rglob("*") if p.is_file())


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


def test_remove_collects_only_unshared_blocks(store):
    shared = prng_bytes(2 * CHUNK, seed=1)
    a = store.add(io.BytesIO(shared + b"tail of a"))
    b = store.add(io.BytesIO(shared + b"tail of b"))
    before = len(block_files(store))  # 2 shared leaves + (tail leaf + root) for each file
    assert before == 6
    store.remove(a)
    assert not store.has(a) and store.has(b)
    assert len(block_files(store)) == 4
    assert b"".join(store.cat(b)) == shared + b"tail of b"
    with pytest.raises(ContentNotFound, match=a):
        store.cat(a)
    store.remove(a)  # removing twice is fine
    store.remove(b)
    assert block_files(store) == []


def test_tampered_leaf_is_detected_and_named(store):
    data = prng_bytes(3 * CHUNK, seed=2)
    cid = store.add(io.BytesIO(data))
    second_leaf = compute_cid(io.BytesIO(data[CHUNK:2 * CHUNK]))  # a one-chunk file's root is its leaf
    (victim,) = [p for p in block_files(store) if p.name == second_leaf]
    raw = bytearray(victim.read_bytes())
    raw[100] ^= 1
    victim.write_bytes(bytes(raw))
    pieces = store.cat(cid)
    assert next(pieces) == data[:CHUNK]
    with pytest.raises(ContentCorrupted, match=second_leaf):
        next(pieces)


def test_tampered_root_is_detected_before_any_byte(store):
    cid = store.add(io.BytesIO(b"hello"))
    (path,) = block_files(store)
    path.write_bytes(path.read_bytes().replace(b"hello", b"jello"))
    with pytest.raises(ContentCorrupted, match=cid):
        next(store.cat(cid))


def test_re_adding_repairs_a_damaged_block(store):
    cid = store.add(io.BytesIO(b"hello"))
    (path,) = block_files(store)
    path.write_bytes(b"junk")
    assert store.add(io.BytesIO(b"hello")) == cid
    assert b"".join(store.cat(cid)) == b"hello"


def test_unknown_cid_is_not_found(store):
    with pytest.raises(ContentNotFound, match="QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"):
        store.cat("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
    assert not store.has("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")


def test_missing_inner_block_is_reported(store):
    cid = store.add(io.BytesIO(prng_bytes(2 * CHUNK, seed=3)))
    leaf = next(p for p in block_files(store) if p.stat().st_size > CHUNK)
    leaf.unlink()
    with pytest.raises(ContentNotFound, match=leaf.name):
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
    assert list((store.root / "tmp").iterdir()) == []


def test_open_store_defaults_to_embedded_under_fogfed_home(tmp_path, monkeypatch):
    monkeypatch.setenv("FOGFED_HOME", str(tmp_path))
    store = open_store()
    assert isinstance(store, EmbeddedStore) and store.root == tmp_path / "store"
    assert "embedded store at" in store.describe()
