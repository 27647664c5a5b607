"""BlobCache: verification on put and open, cap and LRU eviction, hooks, concurrency, bad input."""

from __future__ import annotations

import hashlib
import io
import os
import threading

import pytest
from multiformats import CID, multihash

from fogfed.errors import InputError
from fogfed.node.cache import BlobCache, CacheCorrupted, CacheError, NotCached


def fid(n: int) -> bytes:
    return n.to_bytes(32, "big")


def blob(n: int, size: int = 1000) -> bytes:
    return hashlib.sha256(n.to_bytes(4, "big")).digest() * (size // 32) + b"x" * (size % 32)


def put(cache: BlobCache, n: int, size: int = 1000):
    data = blob(n, size)
    return cache.put(fid(n), io.BytesIO(data), hashlib.sha256(data).digest())


@pytest.fixture
def evicted():
    return []


@pytest.fixture
def cache(tmp_path, evicted):
    with BlobCache(tmp_path / "cache", 3500, on_evict=evicted.append) as c:
        yield c


def test_put_open_round_trip(cache):
    entry = put(cache, 1)
    assert entry.size == 1000 and entry.sha256 == hashlib.sha256(blob(1)).digest()
    with cache.open(fid(1)) as f:
        assert f.read() == blob(1)
    assert fid(1) in cache and cache.total_bytes == 1000
    assert [e.file_id for e in cache.entries()] == [fid(1)]


def test_put_refuses_content_that_does_not_match(cache):
    with pytest.raises(CacheCorrupted, match="expected"):
        cache.put(fid(1), io.BytesIO(b"evil"), hashlib.sha256(b"good").digest())
    assert fid(1) not in cache and cache.total_bytes == 0
    assert os.listdir(cache.root / "blobs") == [] and os.listdir(cache.root / "tmp") == []


def test_cap_and_lru_eviction_calls_on_evict(cache, evicted):
    for n in (1, 2, 3):
        put(cache, n)
    cache.open(fid(1)).close()          # 1 is now the most recently used
    put(cache, 4)                        # 4000 > 3500: evict the LRU one, which is 2
    assert evicted == [fid(2)]
    assert {e.file_id for e in cache.entries()} == {fid(1), fid(3), fid(4)}
    put(cache, 5, 2500)                  # needs 2500 free: evicts 3 then 1
    assert evicted == [fid(2), fid(3), fid(1)]
    assert cache.total_bytes == 3500 <= cache.max_bytes
    assert sorted(os.listdir(cache.root / "blobs")) == sorted([fid(4).hex(), fid(5).hex()])
    with pytest.raises(NotCached):
        cache.open(fid(2))


def test_replacing_an_entry_does_not_evict_others(cache, evicted):
    put(cache, 1)
    put(cache, 2)
    put(cache, 3)
    data = blob(9, 1400)
    cache.put(fid(3), io.BytesIO(data), hashlib.sha256(data).digest())
    assert evicted == [] and cache.total_bytes == 3400
    assert cache.open(fid(3)).read() == data


@pytest.mark.parametrize("damage", ["flip", "truncate", "append", "delete", "swap"])
def test_corrupted_blob_on_disk_is_never_returned(cache, evicted, damage):
    put(cache, 1)
    put(cache, 2)
    path = cache.root / "blobs" / fid(1).hex()
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[500] ^= 0x01
        path.write_bytes(data)
    elif damage == "truncate":
        path.write_bytes(data[:-1])
    elif damage == "append":
        path.write_bytes(data + b"\0")
    elif damage == "delete":
        path.unlink()
    else:  # a valid blob of another file put in its place
        path.write_bytes((cache.root / "blobs" / fid(2).hex()).read_bytes())
    with pytest.raises(CacheCorrupted, match="dropped"):
        cache.open(fid(1))
    assert fid(1) not in cache and not path.exists()
    assert evicted == [fid(1)]
    assert cache.open(fid(2)).read() == blob(2)


def test_blob_larger_than_cap_refused(cache):
    with pytest.raises(InputError, match="larger than the whole cache"):
        cache.put(fid(1), io.BytesIO(b"a" * 3501), hashlib.sha256(b"a" * 3501).digest())
    assert cache.total_bytes == 0 and os.listdir(cache.root / "tmp") == []


@pytest.mark.parametrize("cap", [0, -1, 1.5, "100", None, True])
def test_bad_cap(tmp_path, cap):
    with pytest.raises(InputError, match="positive number of bytes"):
        BlobCache(tmp_path, cap)


@pytest.mark.parametrize("file_id, expected, match", [
    (b"short", b"\0" * 32, "32 bytes"),
    ("00" * 32, b"\0" * 32, "32 bytes"),
    (fid(1), b"\0" * 31, "32 bytes"),
    (fid(1), None, "SHA-256 digest or a CID"),
    (fid(1), "bafy...", "without cid_of"),
])
def test_bad_put_arguments(cache, file_id, expected, match):
    with pytest.raises(InputError, match=match):
        cache.put(file_id, io.BytesIO(b"x"), expected)


def test_cid_verification_with_injected_cid_of(tmp_path):
    def raw_cid(stream) -> str:  # CIDv1 raw-leaves of a single-block file, as IPFS computes it
        return str(CID("base32", 1, "raw", multihash.digest(stream.read(), "sha2-256")))

    with BlobCache(tmp_path / "c", 10_000, cid_of=raw_cid) as cache:
        good = raw_cid(io.BytesIO(b"hello"))
        cache.put(fid(1), io.BytesIO(b"hello"), good)
        assert cache.get(fid(1)).cid == good
        with pytest.raises(CacheCorrupted, match="has CID"):
            cache.put(fid(2), io.BytesIO(b"hellO"), good)


def test_expiry_recorded_and_updated(cache):
    cache.put(fid(1), io.BytesIO(b"a"), hashlib.sha256(b"a").digest(), expires_at=100)
    assert cache.get(fid(1)).expires_at == 100
    cache.set_expiry(fid(1), 200)
    assert cache.get(fid(1)).expires_at == 200
    with pytest.raises(NotCached):
        cache.set_expiry(fid(2), 1)
    with pytest.raises(InputError):
        cache.set_expiry(fid(1), "soon")


def test_remove_calls_hook(cache, evicted):
    put(cache, 1)
    assert cache.remove(fid(1)) is True and cache.remove(fid(1)) is False
    assert evicted == [fid(1)] and cache.total_bytes == 0


def test_failing_hook_does_not_stop_others(tmp_path):
    seen = []

    def hook(file_id):
        seen.append(file_id)
        raise RuntimeError("chain down")

    with BlobCache(tmp_path / "c", 2000, on_evict=hook) as cache:
        put(cache, 1)
        put(cache, 2)
        with pytest.raises(CacheError, match="on_evict hook failed for 2 file"):
            put(cache, 3, 2000)
        assert seen == [fid(1), fid(2)] and [e.file_id for e in cache.entries()] == [fid(3)]


def test_reopen_keeps_index_and_recovers_from_crash_leftovers(tmp_path, evicted):
    root = tmp_path / "c"
    with BlobCache(root, 10_000) as cache:
        put(cache, 1)
        put(cache, 2)
    (root / "tmp" / "half-written").write_bytes(b"partial")
    (root / "blobs" / fid(7).hex()).write_bytes(b"orphan")
    (root / "blobs" / fid(2).hex()).unlink()
    with BlobCache(root, 10_000, on_evict=evicted.append) as cache:
        assert [e.file_id for e in cache.entries()] == [fid(1)]
        assert cache.open(fid(1)).read() == blob(1)
        assert evicted == [fid(2)]
        assert os.listdir(root / "tmp") == [] and os.listdir(root / "blobs") == [fid(1).hex()]


def test_second_process_on_same_directory_refused(cache):
    with pytest.raises(CacheError, match="in use"):
        BlobCache(cache.root, 1000)


def test_concurrent_put_and_open(tmp_path):
    """Writers evicting and readers verifying at once: every read is whole and correct."""
    evicted, errors = [], []
    with BlobCache(tmp_path / "c", 20_000, on_evict=evicted.append) as cache:
        def writer(start):
            try:
                for n in range(start, start + 40):
                    put(cache, n % 30, 1500)
            except Exception as exc:
                errors.append(exc)

        def reader():
            try:
                for i in range(300):
                    n = i % 30
                    try:
                        with cache.open(fid(n)) as f:
                            assert f.read() == blob(n, 1500)
                    except NotCached:
                        pass
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(s,)) for s in (0, 15)]
        threads += [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert cache.total_bytes <= 20_000 and len(evicted) > 0
        on_disk = sum(p.stat().st_size for p in (cache.root / "blobs").iterdir())
        assert on_disk == cache.total_bytes
