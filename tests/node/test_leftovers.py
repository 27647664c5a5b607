"""What an upload stored but never registered is unpinned (fogfed.node.leftovers.UploadLeftovers).

On the embedded store, as the store sees it afterwards (its pins), for each way an upload can end:
failed before sending registerFile (unpinned at once), killed (its record settled by the next upload's
reclaim), registered (only the encrypted keys of stale attempts go), sent but not on chain (kept: the
transaction may still be mined), still running in another process or thread (never touched).
Against a real IPFS daemon stopped mid-upload: tests/node/test_outages.py.
"""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fogfed.node.datapath import store_blob
from fogfed.node.leftovers import LEFTOVERS_SUFFIX, UploadLeftovers, reclaim_leftovers
from fogfed.storage import EmbeddedStore


@pytest.fixture()
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "store")


def blob(store: EmbeddedStore, leftovers: UploadLeftovers | None = None) -> str:
    return store_blob(store, os.urandom(3000), leftovers)


def records(tmp: Path) -> list[Path]:
    return sorted(tmp.glob(f"*{LEFTOVERS_SUFFIX}"))


def never(file_id: str) -> str | None:
    raise AssertionError(f"asked the chain about {file_id}, but no registration was sent")


def test_a_failure_before_registering_unpins_at_once(store: EmbeddedStore, tmp_path: Path) -> None:
    kept = blob(store)
    with pytest.raises(RuntimeError, match="chain down"):
        with UploadLeftovers(tmp_path / "tmp", store) as left:
            ct = store_blob(store, os.urandom(600_000))
            left.stored(ct, "0x" + "11" * 32)
            key = blob(store, left)
            assert store.has(ct) and store.has(key)
            raise RuntimeError("chain down")
    assert not store.has(ct) and not store.has(key) and store.has(kept)
    assert records(tmp_path / "tmp") == []


def test_a_killed_upload_is_settled_by_the_next(store: EmbeddedStore, tmp_path: Path) -> None:
    """The uploading process dies (SIGKILL) holding its record: the next reclaim unpins what it stored."""
    tmp = tmp_path / "tmp"
    code = textwrap.dedent(f"""
        import os, sys
        from fogfed.node.datapath import store_blob
        from fogfed.node.leftovers import UploadLeftovers
        from fogfed.storage import EmbeddedStore
        store = EmbeddedStore({str(store.root)!r})
        left = UploadLeftovers(__import__("pathlib").Path({str(tmp)!r}), store)
        ct = store_blob(store, os.urandom(300_000))
        left.stored(ct, "0x" + "22" * 32)
        print(ct, store_blob(store, b"k" * 2000, left), flush=True)
        os.kill(os.getpid(), 9)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ | {
        "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == -9, out.stderr
    ct, key = out.stdout.split()
    assert store.has(ct) and store.has(key) and len(records(tmp)) == 1
    assert reclaim_leftovers(tmp, store, never) == 1
    assert not store.has(ct) and not store.has(key) and records(tmp) == []


def test_a_live_upload_is_never_touched(store: EmbeddedStore, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    with UploadLeftovers(tmp, store) as left:
        key = blob(store, left)
        assert reclaim_leftovers(tmp, store, never) == 0
        assert store.has(key) and len(records(tmp)) == 1
        left.finish({key})
    assert store.has(key) and records(tmp) == []


def test_registered_keeps_what_the_chain_names(store: EmbeddedStore, tmp_path: Path) -> None:
    """Registered, the answer lost: the ciphertext and the registered key stay, a stale attempt's key goes."""
    tmp, fid = tmp_path / "tmp", "0x" + "33" * 32
    left = UploadLeftovers(tmp, store)
    ct = store_blob(store, os.urandom(300_000))
    left.stored(ct, fid)
    stale, key = blob(store, left), blob(store, left)
    left.sending(fid)
    left.close()  # killed after registerFile was sent
    asked: list[str] = []
    assert reclaim_leftovers(tmp, store, lambda f: asked.append(f) or None) == 0  # not on chain (yet): kept
    assert asked == [fid] and store.has(stale) and len(records(tmp)) == 1
    assert reclaim_leftovers(tmp, store, {fid: key}.get) == 1
    assert store.has(ct) and store.has(key) and not store.has(stale) and records(tmp) == []


def test_sent_and_given_up_is_unpinned(store: EmbeddedStore, tmp_path: Path) -> None:
    """Sent, not on chain, and the same source is being uploaded again: the old attempt goes, unasked."""
    tmp, fid = tmp_path / "tmp", "0x" + "55" * 32
    left = UploadLeftovers(tmp, store)
    ct = store_blob(store, os.urandom(300_000))
    left.stored(ct, fid)
    key = blob(store, left)
    left.sending(fid)
    left.close()
    assert reclaim_leftovers(tmp, store, never, given_up={fid}) == 1
    assert not store.has(ct) and not store.has(key) and records(tmp) == []


def test_finish_unpins_stale_keys(store: EmbeddedStore, tmp_path: Path) -> None:
    fid = "0x" + "44" * 32
    with UploadLeftovers(tmp_path / "tmp", store) as left:
        ct = store_blob(store, os.urandom(300_000))
        left.stored(ct, fid)
        stale, key = blob(store, left), blob(store, left)
        left.sending(fid)
        left.finish({ct, key})
    assert store.has(ct) and store.has(key) and not store.has(stale)
    assert records(tmp_path / "tmp") == []


def test_a_torn_or_damaged_record_is_read_as_far_as_it_goes(store: EmbeddedStore, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    key = blob(store)
    (tmp / f"1-aa{LEFTOVERS_SUFFIX}").write_bytes(b'{"cid": "%s"}\n{"cid": "not a cid"}\n{"se' % key.encode())
    (tmp / f"2-bb{LEFTOVERS_SUFFIX}").write_bytes(b"\x00\xff garbage")
    assert reclaim_leftovers(tmp, store, never) == 2
    assert not store.has(key) and records(tmp) == []


def test_the_store_down_keeps_the_record(store: EmbeddedStore, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    key = blob(store)
    with UploadLeftovers(tmp, store) as left:
        left.stored(key)
    index = store.root / "index.sqlite3"
    store.close()
    saved = index.read_bytes()
    for name in ("index.sqlite3-wal", "index.sqlite3-shm"):
        (store.root / name).unlink(missing_ok=True)
    index.unlink()
    index.mkdir()  # the index cannot be opened: StorageUnavailable
    assert reclaim_leftovers(tmp, store, never) == 0
    assert len(records(tmp)) == 1
    index.rmdir()
    index.write_bytes(saved)
    assert reclaim_leftovers(tmp, EmbeddedStore(store.root), never) == 1
    assert not EmbeddedStore(store.root).has(key)


def test_the_record_is_locked_while_the_upload_runs(store: EmbeddedStore, tmp_path: Path) -> None:
    with UploadLeftovers(tmp_path / "tmp", store) as left:
        with open(left.path, "rb") as other, pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert not list((tmp_path / "tmp").glob(".*.new"))
    with open(left.path, "rb") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_blob_cid_is_noted_before_the_store_sees_it(store: EmbeddedStore, tmp_path: Path) -> None:
    data = os.urandom(2000)
    with UploadLeftovers(tmp_path / "tmp", store) as left:
        from fogfed.storage import compute_cid

        cid = compute_cid(io.BytesIO(data))
        assert store_blob(store, data, left) == cid and left.cids == [cid]
        assert cid in left.path.read_text()
        left.finish({cid})


def test_an_upload_killed_inside_the_add_leaves_no_pack(store: EmbeddedStore, tmp_path: Path) -> None:
    """SIGKILL while the ciphertext streams into the embedded store: a partial pack, no pin, no CID noted.
    The next reclaim sees the dead record and the store deletes the pack no index row names."""
    tmp, src = tmp_path / "tmp", tmp_path / "plain"
    src.write_bytes(os.urandom(3 << 20))
    code = textwrap.dedent(f"""
        import os, pathlib
        from fogfed.node.datapath import encrypt_and_store
        from fogfed.node.leftovers import UploadLeftovers
        from fogfed.storage import EmbeddedStore
        store = EmbeddedStore({str(store.root)!r})
        left = UploadLeftovers(pathlib.Path({str(tmp)!r}), store)
        def die(done):
            if done >= 2 << 20:
                os.kill(os.getpid(), 9)
        encrypt_and_store(store, pathlib.Path({str(src)!r}), os.urandom(32), None, die)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ | {
        "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == -9, out.stderr
    packs = list((store.root / "packs").iterdir())
    assert len(packs) == 1 and packs[0].stat().st_size > 1 << 20 and len(records(tmp)) == 1
    kept = blob(store)  # another file, stored meanwhile, stays
    assert reclaim_leftovers(tmp, store, never) == 1
    assert records(tmp) == [] and not packs[0].exists() and store.has(kept)


def test_garbage_collection_never_waits_for_a_running_add(store: EmbeddedStore) -> None:
    orphan = store.root / "packs" / "0123456789abcdef.pack"
    orphan.write_bytes(b"x" * 100)
    with open(store.root / "lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # as an add in progress holds it
        assert store.collect_garbage() == 0 and orphan.exists()
    assert store.collect_garbage() == 1 and not orphan.exists()
