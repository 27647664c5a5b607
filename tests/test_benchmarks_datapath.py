"""benchmarks/datapath.py runs end to end with a tiny size and writes the documented JSON; the
plumbing it measures (ciphertext copy and its digest, BlobCache.put_file) keeps its guarantees."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.datapath import raw_sha256_aes_gcm, write_random_file
from fogfed.abe.stream import decrypt_stream, plaintext_digest
from fogfed.errors import FogfedError, InputError
from fogfed.node.cache import BlobCache, CacheCorrupted
from fogfed.node.datapath import encrypt_and_store
from fogfed.protocol.files import STREAM_AAD
from fogfed.storage import EmbeddedStore, StorageUnavailable, compute_cid

ROOT = Path(__file__).resolve().parent.parent


def test_datapath_quick_json_shape(tmp_path: Path) -> None:
    out, plot = tmp_path / "dp.json", tmp_path / "dp.png"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.datapath", "--quick", "--no-fail", "--json", str(out),
                           "--plot", str(plot)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["benchmark"] == "datapath" and doc["store"] == "embedded store"
    assert set(doc["tables"]) == {"throughput", "latency", "memory"}
    (size,) = doc["sizes"]
    assert size["size_bytes"] == 1 << 20
    for key in ("raw_mb_s", "encrypt_store_mb_s", "encrypt_store_ratio_to_raw", "upload_mb_s", "upload_s",
                "fetch_peer_s", "fetch_storage_s", "fetch_peer_mb_s", "fetch_storage_mb_s"):
        assert size[key] > 0, key
    assert size["upload_fixed_s"] >= 0
    assert set(size["peak_mib"]) == {"raw", "encrypt_store", "upload", "fetch_peer", "fetch_storage"}
    (small,) = doc["latency"]
    assert small["size_bytes"] == 1024 and small["peer_s"] > 0 and small["storage_s"] > 0
    assert {t["name"].split(":")[0] for t in doc["targets"]} >= {"1 MiB"}
    assert all(isinstance(t["passed"], bool) for t in doc["targets"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv", [["--sizes", "2048"], ["--latency-kib", "4096"], ["--sizes", "0"]])
def test_bad_sizes_are_refused(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.datapath", *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_raw_baseline_hashes_the_file(tmp_path: Path) -> None:
    path = write_random_file(tmp_path / "f", 3 * (1 << 20) + 5)
    assert path.stat().st_size == 3 * (1 << 20) + 5
    assert raw_sha256_aes_gcm(path, os.urandom(32)) == hashlib.sha256(path.read_bytes()).digest()


@pytest.mark.parametrize("size", [0, 1, 262_144 - 84, 262_144, 3 * (1 << 20) + 7, 7 * (1 << 20) + 3])  # the last wraps the ring
def test_encrypt_and_store_copy_digest_and_cid_agree(tmp_path: Path, size: int) -> None:
    """The one pass gives the store, the cache copy and both digests the same, decryptable bytes."""
    src = tmp_path / "plain"
    src.write_bytes(os.urandom(size))
    store, key, copy = EmbeddedStore(tmp_path / "store"), os.urandom(32), io.BytesIO()
    cid, info, ct_sha = encrypt_and_store(store, src, key, copy)
    ciphertext = copy.getvalue()
    assert b"".join(store.cat(cid)) == ciphertext
    assert compute_cid(io.BytesIO(ciphertext)) == cid
    assert hashlib.sha256(ciphertext).digest() == ct_sha
    assert info.plaintext_hash == plaintext_digest(src.read_bytes())
    plain = io.BytesIO()
    decrypt_stream(key, io.BytesIO(ciphertext), plain, aad=STREAM_AAD)
    assert plain.getvalue() == src.read_bytes()


def test_put_file_adopts_without_copying_and_still_verifies(tmp_path: Path) -> None:
    with BlobCache(tmp_path / "cache", 1 << 20) as cache:
        fid = b"\x01" * 32
        blob = tmp_path / "cache" / "blob.part"  # same file system as the cache
        blob.write_bytes(b"ciphertext" * 100)
        inode = blob.stat().st_ino
        entry = cache.put_file(fid, blob, hashlib.sha256(b"ciphertext" * 100).digest())
        assert not blob.exists() and entry.size == 1000
        assert (tmp_path / "cache" / "blobs" / fid.hex()).stat().st_ino == inode  # moved, not copied
        with cache.open(fid) as f:
            assert f.read() == b"ciphertext" * 100
        # a digest that does not match the bytes is recorded, but the copy is never served
        other = b"\x02" * 32
        liar = tmp_path / "cache" / "liar.part"
        liar.write_bytes(b"tampered")
        cache.put_file(other, liar, hashlib.sha256(b"original").digest())
        with pytest.raises(CacheCorrupted):
            cache.open(other)
        assert other not in cache


@pytest.mark.parametrize("digest", [b"", b"\x00" * 31, "ab" * 32, None])
def test_put_file_refuses_bad_digests(tmp_path: Path, digest: object) -> None:
    with BlobCache(tmp_path / "cache", 1 << 20) as cache:
        path = tmp_path / "x"
        path.write_bytes(b"x")
        with pytest.raises(InputError, match="sha256"):
            cache.put_file(b"\x01" * 32, path, digest)  # type: ignore[arg-type]
        assert path.exists()


def test_put_file_refuses_missing_and_oversized_files(tmp_path: Path) -> None:
    with BlobCache(tmp_path / "cache", 10) as cache:
        with pytest.raises(InputError, match="cannot read"):
            cache.put_file(b"\x01" * 32, tmp_path / "missing", b"\x00" * 32)
        big = tmp_path / "cache" / "big"
        big.write_bytes(b"x" * 11)
        with pytest.raises(InputError, match="larger than the whole cache"):
            cache.put_file(b"\x01" * 32, big, hashlib.sha256(b"x" * 11).digest())
        assert big.exists() and cache.total_bytes == 0


class _FullDisk(io.BytesIO):
    def write(self, data: bytes) -> int:  # type: ignore[override]
        raise OSError(28, "No space left on device")


def test_encrypt_and_store_fails_when_the_copy_cannot_be_written(tmp_path: Path) -> None:
    """A worker thread's failure (the cache copy's disk is full) fails the call; no worker outlives it."""
    src = tmp_path / "plain"
    src.write_bytes(os.urandom(5 * (1 << 20)))
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(FogfedError, match="ciphertext copy for the cache: No space left") as caught:
        encrypt_and_store(EmbeddedStore(tmp_path / "store"), src, os.urandom(32), _FullDisk())
    assert not isinstance(caught.value, StorageUnavailable)  # the store is fine; the copy's disk is not
    assert {t.name for t in threading.enumerate()} <= before


# -- written once: the cache refers to a local store's copy ------------------------------------------

def _stored(tmp_path: Path, size: int = 700_000) -> tuple[EmbeddedStore, str, bytes, bytes]:
    store, src = EmbeddedStore(tmp_path / "store"), tmp_path / "plain"
    src.write_bytes(os.urandom(size))
    key = os.urandom(32)
    cid, info, ct_sha = encrypt_and_store(store, src, key, None)
    assert ct_sha is None and info.plaintext_hash == plaintext_digest(src.read_bytes())
    return store, cid, b"".join(store.cat(cid)), key


def test_encrypt_and_store_without_a_copy_writes_one_pack_and_no_other_file(tmp_path: Path) -> None:
    store, cid, ct, key = _stored(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "store"]
    assert len(list((tmp_path / "store" / "packs").iterdir())) == 1
    out = io.BytesIO()
    decrypt_stream(key, io.BytesIO(ct), out, aad=STREAM_AAD)
    assert out.getvalue() == (tmp_path / "plain").read_bytes()


def test_put_ref_reads_through_the_store_and_writes_no_blob(tmp_path: Path) -> None:
    store, cid, ct, _ = _stored(tmp_path)
    fid = b"\x07" * 32
    with BlobCache(tmp_path / "cache", 10 << 20, store=store) as cache:
        entry = cache.put_ref(fid, cid)
        assert (entry.size, entry.sha256, entry.cid) == (len(ct), None, cid)
        assert list((tmp_path / "cache" / "blobs").iterdir()) == []
        assert cache.total_bytes == len(ct)  # counted against the cap like any copy
        with cache.open(fid) as f:
            assert f.read(1000) == ct[:1000] and f.read() == ct[1000:]
    with BlobCache(tmp_path / "cache", 10 << 20, store=store) as cache:  # a restart keeps the row
        assert cache.get(fid) is not None
        assert cache.remove(fid) and store.has(cid)  # leaving the cache does not touch the store


def test_put_ref_needs_a_local_store_and_respects_the_cap(tmp_path: Path) -> None:
    store, cid, ct, _ = _stored(tmp_path)
    with BlobCache(tmp_path / "c1", 10 << 20) as cache, pytest.raises(InputError, match="no local content store"):
        cache.put_ref(b"\x01" * 32, cid)
    with BlobCache(tmp_path / "c2", len(ct) - 1, store=store) as cache, pytest.raises(InputError, match="larger"):
        cache.put_ref(b"\x01" * 32, cid)


def test_a_damaged_store_copy_is_never_returned_and_drops_the_entry(tmp_path: Path) -> None:
    store, cid, ct, _ = _stored(tmp_path)
    fid, evicted = b"\x09" * 32, []
    with BlobCache(tmp_path / "cache", 10 << 20, evicted.append, store=store) as cache:
        cache.put_ref(fid, cid)
        from fogfed.storage.importer import import_file
        leaf = list(import_file(io.BytesIO(ct)))[1]  # the second 256 KiB chunk
        path, offset, length = store.block_location(str(leaf.cid))
        with open(path, "r+b") as f:
            f.seek(offset + length - 10)
            b = f.read(1)[0]
            f.seek(offset + length - 10)
            f.write(bytes([b ^ 1]))
        got = bytearray()
        with pytest.raises(CacheCorrupted, match="failed its check"):
            with cache.open(fid) as f:
                while piece := f.read(1 << 16):
                    got += piece
        assert len(got) <= 256 * 1024 and bytes(got) == ct[:len(got)]  # only verified bytes came out
        assert cache.get(fid) is None and evicted == [fid]  # dropped; the announcement hook heard it
        cache.put_ref(fid, cid)
        store.remove(cid)
        with pytest.raises(CacheCorrupted, match="no longer holds"):
            cache.open(fid)
        assert cache.get(fid) is None


def test_a_first_schema_cache_is_migrated_with_its_entries(tmp_path: Path) -> None:
    import sqlite3

    root = tmp_path / "cache"
    (root / "blobs").mkdir(parents=True)
    blob, fid = b"old ciphertext", b"\x03" * 32
    (root / "blobs" / fid.hex()).write_bytes(blob)
    db = sqlite3.connect(root / "index.sqlite3")
    db.executescript("""CREATE TABLE blobs (
    file_id    BLOB PRIMARY KEY CHECK (length(file_id) = 32),
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     BLOB NOT NULL CHECK (length(sha256) = 32),
    cid        TEXT,
    added_at   REAL NOT NULL,
    last_used  REAL NOT NULL,
    lru_seq    INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX blobs_lru ON blobs (lru_seq);""")
    with db:
        db.execute("INSERT INTO blobs VALUES (?, ?, ?, NULL, 1.0, 2.0, 5, 77)",
                   (fid, len(blob), hashlib.sha256(blob).digest()))
    db.close()
    store, cid, _, _ = _stored(tmp_path)
    with BlobCache(root, 10 << 20, store=store) as cache:
        assert cache.open(fid).read() == blob and cache.get(fid).expires_at == 77
        cache.put_ref(b"\x04" * 32, cid)  # the new schema takes rows without a SHA-256
        assert [e.file_id for e in cache.entries()] == [fid, b"\x04" * 32]
