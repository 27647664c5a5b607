"""The fog node's off-chain cache: ciphertext blobs on disk, indexed in SQLite.

An entry is either a blob of its own under ``blobs/`` (recorded with its
SHA-256) or, with ``put_ref``, the file as the node's local content store
holds it (recorded with its CID, no SHA-256): then the ciphertext is written
once, by the store, and every read goes through the store, which checks each
block against its CID before giving it out.

Blobs are streamed into a temp file, verified against what the caller expects
(a SHA-256 digest or, with an injected ``cid_of``, an IPFS CID), then renamed
into place (or, with ``put_file``, a file its producer hashed while writing
it is moved in without reading it again); the index remembers each blob's
size and SHA-256, so every
``open`` re-verifies the bytes and a damaged copy is dropped, never returned.
A size cap is kept by evicting least-recently-used blobs; ``on_evict`` hears
about every copy that leaves the cache so the node can withdraw its on-chain
announcement.

One process owns a cache directory at a time (an flock on ``.lock``); within
it, the peer server's threads may read while the node writes.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fogfed.errors import FogfedError, InputError
from fogfed.storage.base import ContentStore
from fogfed.storage.errors import ContentCorrupted, ContentNotFound, StorageError

CHUNK = 1 << 16  # peers stream in pieces of this size
_READ = 1 << 20  # the cache's own reads: fewer calls when hashing whole blobs
_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    file_id    BLOB PRIMARY KEY CHECK (length(file_id) = 32),
    size       INTEGER NOT NULL CHECK (size >= 0),
    sha256     BLOB CHECK (sha256 IS NULL OR length(sha256) = 32),
    cid        TEXT CHECK (sha256 IS NOT NULL OR cid IS NOT NULL),
    added_at   REAL NOT NULL,
    last_used  REAL NOT NULL,
    lru_seq    INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS blobs_lru ON blobs (lru_seq);
"""
_COLUMNS = "file_id, size, sha256, cid, added_at, last_used, expires_at"
_V1_SHA256 = "sha256     BLOB NOT NULL CHECK (length(sha256) = 32)"  # before entries in the store


class CacheError(FogfedError):
    """The cache could not do what was asked."""


class CacheCorrupted(CacheError):
    """A cached blob no longer matches what was stored; it has been dropped."""


class NotCached(CacheError):
    """No copy of this file is in the cache."""


@dataclass(frozen=True)
class CacheEntry:
    """One cached blob as recorded in the index."""

    file_id: bytes
    size: int
    sha256: bytes | None  # None: the bytes are the local store's file ``cid`` (``put_ref``)
    cid: str | None
    added_at: float
    last_used: float
    expires_at: int | None


def check_file_id(file_id: bytes) -> bytes:
    """``file_id`` if it is a 32-byte value (the contract's bytes32), else InputError."""
    if not isinstance(file_id, (bytes, bytearray)) or len(file_id) != 32:
        raise InputError(f"file id must be 32 bytes, got {file_id!r:.80}")
    return bytes(file_id)


class BlobCache:
    """A size-capped, self-verifying blob store keyed by 32-byte file id."""

    def __init__(self, root: str | os.PathLike, max_bytes: int,
                 on_evict: Callable[[bytes], None] | None = None, *,
                 cid_of: Callable[[BinaryIO], str] | None = None,
                 store: ContentStore | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if type(max_bytes) is not int or max_bytes <= 0:
            raise InputError(f"cache size cap must be a positive number of bytes, got {max_bytes!r}")
        self.root, self.max_bytes = Path(root), max_bytes
        self._on_evict, self._cid_of, self._clock = on_evict, cid_of, clock
        self._store = store
        self._blobs, self._tmp = self.root / "blobs", self.root / "tmp"
        for d in (self.root, self._blobs, self._tmp):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise CacheError(f"cache {self.root} is in use by another fogfed process",
                             "stop the other node or give this one its own cache directory") from None
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.root / "index.sqlite3", check_same_thread=False)
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            raise CacheError(f"cache index {self.root / 'index.sqlite3'} is unreadable: {exc}",
                             "delete the cache directory; cached copies can be fetched again") from None
        self._recover()

    def _migrate(self) -> None:
        # The first schema required a SHA-256 on every row; rows in the store have none.
        (sql,) = self._db.execute("SELECT sql FROM sqlite_master WHERE name = 'blobs'").fetchone()
        if _V1_SHA256 not in sql:
            return
        with self._db:
            self._db.execute("ALTER TABLE blobs RENAME TO blobs_v1")
            self._db.execute("DROP INDEX IF EXISTS blobs_lru")
        self._db.executescript(_SCHEMA)
        with self._db:
            self._db.execute(f"INSERT INTO blobs SELECT {_COLUMNS.replace('expires_at', 'lru_seq, expires_at')} "
                             "FROM blobs_v1")
            self._db.execute("DROP TABLE blobs_v1")

    def _recover(self) -> None:
        # A crash can leave temp files, blobs without an index row, or rows without a blob.
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)
        known = {row[0].hex() for row in self._db.execute("SELECT file_id FROM blobs WHERE sha256 IS NOT NULL")}
        for blob in self._blobs.iterdir():
            if blob.name not in known:
                blob.unlink(missing_ok=True)
        lost = [bytes.fromhex(name) for name in known if not (self._blobs / name).exists()]
        with self._db:
            self._db.executemany("DELETE FROM blobs WHERE file_id = ?", [(f,) for f in lost])
        self._notify(lost)

    def close(self) -> None:
        """Release the index and the directory lock."""
        with self._lock:
            if getattr(self, "_db", None) is not None:
                self._db.close()
                self._db = None
            if self._lock_fd >= 0:
                os.close(self._lock_fd)
                self._lock_fd = -1

    def __enter__(self) -> "BlobCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _path(self, file_id: bytes) -> Path:
        return self._blobs / file_id.hex()

    def _notify(self, file_ids: list[bytes]) -> None:
        # Hooks run outside the lock: they may send transactions and take seconds.
        if not self._on_evict:
            return
        failures = []
        for file_id in file_ids:
            try:
                self._on_evict(file_id)
            except Exception as exc:  # one failing hook must not stop the others
                failures.append((file_id, exc))
        if failures:
            file_id, exc = failures[0]
            raise CacheError(f"on_evict hook failed for {len(failures)} file(s), first 0x{file_id.hex()}: {exc}",
                             "the copies are gone from the cache; withdraw their announcements by hand") \
                from exc

    def put(self, file_id: bytes, src: BinaryIO, expected: bytes | str, *,
            expires_at: int | None = None) -> CacheEntry:
        """Stream ``src`` into the cache as ``file_id`` after checking it against ``expected``.

        ``expected`` is the blob's SHA-256 (32 bytes) or its CID (str; needs
        ``cid_of``). Evicts least-recently-used blobs to stay under the cap.
        """
        file_id = check_file_id(file_id)
        if isinstance(expected, (bytes, bytearray)):
            if len(expected) != 32:
                raise InputError(f"expected SHA-256 digest must be 32 bytes, got {len(expected)}")
        elif isinstance(expected, str):
            if self._cid_of is None:
                raise InputError("this cache was built without cid_of, so it cannot check a CID",
                                 "pass the blob's SHA-256 digest instead")
        else:
            raise InputError("expected must be a 32-byte SHA-256 digest or a CID string")
        if expires_at is not None and type(expires_at) is not int:
            raise InputError(f"expires_at must be an integer timestamp, got {expires_at!r}")
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            digest, size = self._stream_to(fd, src, file_id)
            if isinstance(expected, str):
                with open(tmp, "rb") as f:
                    actual_cid = self._cid_of(f)
                if actual_cid != expected:
                    raise CacheCorrupted(f"blob for 0x{file_id.hex()} has CID {actual_cid}, expected {expected}",
                                         "the source is corrupt or lying; fetch from another one")
            elif digest != bytes(expected):
                raise CacheCorrupted(f"blob for 0x{file_id.hex()} has SHA-256 {digest.hex()}, "
                                     f"expected {bytes(expected).hex()}",
                                     "the source is corrupt or lying; fetch from another one")
            entry, evicted = self._commit(file_id, tmp, size, digest,
                                          expected if isinstance(expected, str) else None, expires_at)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._notify(evicted)
        return entry

    def put_file(self, file_id: bytes, path: str | os.PathLike, sha256: bytes, *,
                 expires_at: int | None = None) -> CacheEntry:
        """Move the file at ``path`` into the cache as ``file_id``, recorded with digest ``sha256``.

        For bytes the caller has just produced and hashed while writing them
        (an upload's ciphertext, a fetched copy already checked against its
        CID): they are neither read nor hashed again here. The digest is
        still what every ``open`` checks, so a wrong one only gets the copy
        dropped at its first use, never served. ``path`` must be on the
        cache's file system; otherwise the bytes are copied and checked by
        ``put``. The file is gone from ``path`` afterwards.
        """
        file_id = check_file_id(file_id)
        if not isinstance(sha256, (bytes, bytearray)) or len(sha256) != 32:
            raise InputError("sha256 must be a 32-byte SHA-256 digest")
        if expires_at is not None and type(expires_at) is not int:
            raise InputError(f"expires_at must be an integer timestamp, got {expires_at!r}")
        try:
            size = os.stat(path).st_size
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        if size > self.max_bytes:
            raise InputError(f"blob for 0x{file_id.hex()} is larger than the whole cache "
                             f"({self.max_bytes} bytes)", "raise the cache size cap")
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        os.close(fd)
        try:
            try:
                os.replace(path, tmp)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                with open(path, "rb") as src:
                    return self.put(file_id, src, bytes(sha256), expires_at=expires_at)
            entry, evicted = self._commit(file_id, tmp, size, bytes(sha256), None, expires_at)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._notify(evicted)
        return entry

    def put_ref(self, file_id: bytes, cid: str, *, expires_at: int | None = None) -> CacheEntry:
        """Record that the copy of ``file_id`` is the local store's file ``cid``: no bytes written or hashed.

        For a store on this machine (``ContentStore.local``) that has just
        confirmed ``cid`` (an upload's add, a verified read from it): the
        store's durable copy is the cache's. It counts against the cap at
        its full size like any copy, and leaves the cache (an eviction, a
        removal) without touching the store.
        """
        file_id = check_file_id(file_id)
        if self._store is None or not getattr(self._store, "local", False):
            raise InputError("this cache reads through no local content store", "cache a copy with put_file")
        if expires_at is not None and type(expires_at) is not int:
            raise InputError(f"expires_at must be an integer timestamp, got {expires_at!r}")
        try:
            size = self._store.size(cid)
        except StorageError as exc:
            raise CacheError(f"cannot cache file 0x{file_id.hex()} from {self._store.describe()}: {exc}") from None
        if size > self.max_bytes:
            raise InputError(f"blob for 0x{file_id.hex()} is larger than the whole cache "
                             f"({self.max_bytes} bytes)", "raise the cache size cap")
        entry, evicted = self._commit(file_id, None, size, None, cid, expires_at)
        self._notify(evicted)
        return entry

    def _stream_to(self, fd: int, src: BinaryIO, file_id: bytes) -> tuple[bytes, int]:
        # No fsync: every open re-checks the digest, and a copy a crash damaged is dropped
        # (and its announcement withdrawn) at its next use; a cache copy is never the only one.
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(_READ):
                size += len(chunk)
                if size > self.max_bytes:
                    raise InputError(f"blob for 0x{file_id.hex()} is larger than the whole cache "
                                     f"({self.max_bytes} bytes)", "raise the cache size cap")
                h.update(chunk)
                out.write(chunk)
        return h.digest(), size

    def _commit(self, file_id: bytes, tmp: str | None, size: int, digest: bytes | None, cid: str | None,
                expires_at: int | None) -> tuple[CacheEntry, list[bytes]]:
        now = self._clock()
        with self._lock:
            db = self._live_db()
            others = db.execute("SELECT file_id, size FROM blobs WHERE file_id != ? ORDER BY lru_seq",
                                (file_id,)).fetchall()
            room = self.max_bytes - size - sum(s for _, s in others)
            evicted = []
            for victim, victim_size in others:
                if room >= 0:
                    break
                evicted.append(victim)
                room += victim_size
            if tmp is not None:
                os.replace(tmp, self._path(file_id))
            else:  # in the store: an own blob of an earlier put would outlive its row
                self._path(file_id).unlink(missing_ok=True)
            with db:
                db.executemany("DELETE FROM blobs WHERE file_id = ?", [(v,) for v in evicted])
                db.execute(
                    "INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?, ?, "
                    "(SELECT COALESCE(MAX(lru_seq), 0) + 1 FROM blobs), ?)",
                    (file_id, size, digest, cid, now, now, expires_at))
            for victim in evicted:
                self._path(victim).unlink(missing_ok=True)
        return CacheEntry(file_id, size, digest, cid, now, now, expires_at), evicted

    def _live_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise CacheError(f"cache {self.root} is closed")
        return self._db

    def get(self, file_id: bytes) -> CacheEntry | None:
        """The index entry for ``file_id``, or None (does not touch the blob)."""
        with self._lock:
            row = self._live_db().execute(f"SELECT {_COLUMNS} FROM blobs WHERE file_id = ?",
                                          (check_file_id(file_id),)).fetchone()
        return self._entry(row) if row else None

    def _entry(self, row: tuple) -> CacheEntry:
        """An index row checked field by field: a damaged index is an error naming it, not a TypeError."""
        file_id, size, sha256, cid, added_at, last_used, expires_at = row
        ok = (isinstance(file_id, bytes) and len(file_id) == 32 and type(size) is int and size >= 0
              and (sha256 is None or isinstance(sha256, bytes) and len(sha256) == 32)
              and (cid is None or isinstance(cid, str)) and (sha256 is not None or cid is not None)
              and all(type(t) in (int, float) for t in (added_at, last_used))
              and (expires_at is None or type(expires_at) is int))
        if not ok:
            raise CacheError(f"cache index {self.root / 'index.sqlite3'} is damaged (entry "
                             f"{file_id.hex() if isinstance(file_id, bytes) else file_id!r:.70})",
                             f"delete the folder {self.root}: cached copies are only copies, fetched again "
                             "when needed")
        return CacheEntry(file_id, size, sha256, cid, added_at, last_used, expires_at)

    def __contains__(self, file_id: bytes) -> bool:
        return self.get(file_id) is not None

    def open(self, file_id: bytes) -> BinaryIO:
        """A stream over the cached blob, verified against its recorded SHA-256 first.

        Raises NotCached, or CacheCorrupted (after dropping the damaged copy).
        The stream stays valid even if the blob is evicted while it is read.
        """
        file_id = check_file_id(file_id)
        with self._lock:
            db = self._live_db()
            row = db.execute("SELECT size, sha256, cid FROM blobs WHERE file_id = ?", (file_id,)).fetchone()
            if row is None:
                raise NotCached(f"file 0x{file_id.hex()} is not in the cache")
            if row[1] is None:
                return self._open_ref(db, file_id, row[2])
            try:
                f = open(self._path(file_id), "rb")
            except FileNotFoundError:
                f = None
            else:
                with db:
                    db.execute("UPDATE blobs SET last_used = ?, lru_seq = "
                               "(SELECT MAX(lru_seq) + 1 FROM blobs) WHERE file_id = ?",
                               (self._clock(), file_id))
        size, digest, _ = row
        if f is not None:
            # Hash outside the lock so readers do not queue behind each other.
            h, n = hashlib.sha256(), 0
            while chunk := f.read(_READ):
                h.update(chunk)
                n += len(chunk)
            if n == size and h.digest() == digest:
                f.seek(0)
                return f
        self._drop_damaged(file_id, digest, f)
        raise CacheCorrupted(f"cached copy of 0x{file_id.hex()} is damaged or missing; it was dropped",
                             "fetch the file again from a peer or from storage")

    def _open_ref(self, db: sqlite3.Connection, file_id: bytes, cid: str) -> BinaryIO:
        # Called under the lock. The store checks every block against its CID before giving it
        # out, so the stream needs no pass of its own first: a damaged block ends it with
        # CacheCorrupted (the entry dropped) before any of its bytes are returned.
        with db:
            db.execute("UPDATE blobs SET last_used = ?, lru_seq = (SELECT MAX(lru_seq) + 1 FROM blobs) "
                       "WHERE file_id = ?", (self._clock(), file_id))
        try:
            if self._store is None or not self._store.has(cid):
                raise StorageError(f"{cid} is not in the store")
            pieces = self._store.cat(cid)
        except StorageError as exc:
            if not isinstance(exc, (ContentCorrupted, ContentNotFound)) and "not in the store" not in str(exc):
                raise CacheError(f"cannot read file 0x{file_id.hex()} from {self._store.describe()}: {exc}",
                                 "check the content store and try again") from None
            self._drop_ref(file_id, cid)
            raise CacheCorrupted(f"the store no longer holds file 0x{file_id.hex()}; its cache entry was dropped",
                                 "fetch the file again from a peer or from storage") from None
        return io.BufferedReader(_StoreStream(self, file_id, cid, pieces), buffer_size=_READ)

    def _drop_ref(self, file_id: bytes, cid: str) -> None:
        with self._lock:
            with self._live_db() as db:
                dropped = db.execute("DELETE FROM blobs WHERE file_id = ? AND sha256 IS NULL AND cid = ?",
                                     (file_id, cid)).rowcount > 0
        if dropped:
            self._notify([file_id])

    def _drop_damaged(self, file_id: bytes, digest: bytes, f: BinaryIO | None) -> None:
        with self._lock:
            path = self._path(file_id)
            same_blob = f is None or (path.exists() and os.stat(path).st_ino == os.fstat(f.fileno()).st_ino)
            dropped = False
            # Only drop what we checked: a concurrent put may have replaced it meanwhile.
            if same_blob:
                with self._live_db() as db:
                    dropped = db.execute("DELETE FROM blobs WHERE file_id = ? AND sha256 = ?",
                                         (file_id, digest)).rowcount > 0
                if dropped:
                    path.unlink(missing_ok=True)
        if f is not None:
            f.close()
        if dropped:
            self._notify([file_id])

    def remove(self, file_id: bytes) -> bool:
        """Delete the cached copy of ``file_id`` (calls on_evict); False if there was none."""
        file_id = check_file_id(file_id)
        with self._lock:
            with self._live_db() as db:
                removed = db.execute("DELETE FROM blobs WHERE file_id = ?", (file_id,)).rowcount > 0
            self._path(file_id).unlink(missing_ok=True)
        if removed:
            self._notify([file_id])
        return removed

    def set_expiry(self, file_id: bytes, expires_at: int | None) -> None:
        """Record when the on-chain announcement of this copy expires (after a refresh)."""
        if expires_at is not None and type(expires_at) is not int:
            raise InputError(f"expires_at must be an integer timestamp, got {expires_at!r}")
        with self._lock:
            with self._live_db() as db:
                if db.execute("UPDATE blobs SET expires_at = ? WHERE file_id = ?",
                              (expires_at, check_file_id(file_id))).rowcount == 0:
                    raise NotCached(f"file 0x{file_id.hex()} is not in the cache")

    def entries(self) -> list[CacheEntry]:
        """All index entries, least recently used first."""
        with self._lock:
            rows = self._live_db().execute(f"SELECT {_COLUMNS} FROM blobs ORDER BY lru_seq").fetchall()
        return [self._entry(row) for row in rows]

    @property
    def total_bytes(self) -> int:
        """Bytes held by all cached blobs."""
        with self._lock:
            return self._live_db().execute("SELECT COALESCE(SUM(size), 0) FROM blobs").fetchone()[0]


class _StoreStream(io.RawIOBase):
    """A cache entry's bytes as the store streams them; a store failure drops the entry."""

    def __init__(self, cache: BlobCache, file_id: bytes, cid: str, pieces) -> None:
        self._cache, self._file_id, self._cid, self._pieces = cache, file_id, cid, pieces
        self._piece = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while not self._piece:
            try:
                piece = next(self._pieces, None)
            except StorageError as exc:
                if not isinstance(exc, (ContentCorrupted, ContentNotFound)):
                    raise CacheError(f"cannot read file 0x{self._file_id.hex()} from the store: {exc}") from None
                self._cache._drop_ref(self._file_id, self._cid)
                raise CacheCorrupted(f"the store's copy of file 0x{self._file_id.hex()} failed its check "
                                     f"({exc}); its cache entry was dropped",
                                     "fetch the file again from a peer or from storage") from None
            if piece is None:
                return 0
            self._piece = memoryview(piece)
        n = min(len(buf), len(self._piece))
        buf[:n] = self._piece[:n]
        self._piece = self._piece[n:]
        return n

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()  # ends the store's generator: its index connection and pack files
        super().close()
