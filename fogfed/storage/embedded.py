"""A content-addressed store in a local directory: no server, same CIDs as IPFS.

Layout under root: ``packs/<16 hex>.pack`` holds the blocks one add wrote,
back to back, then a trailer describing them and the add's pin;
``index.sqlite3`` maps each block's CID to (pack, offset, length) and each
pinned root to the blocks of its file; ``lock``. An add appends its new
blocks and the trailer to one fresh pack, fsyncs that pack and ``packs/``
once, and only then commits the index rows and the pin in one SQLite
transaction, so a pin never names a block a crash could lose (see
docs/storage.md). That commit waits for no fsync of its own
(``synchronous=NORMAL``): a process killed after it loses nothing, and what an
operating-system crash or power loss takes from the index is rebuilt from the
packs' trailers the first time the store is opened after the reboot (the
kernel's boot id, kept in the index, tells). Where no boot id can be read, every
commit is synchronous as before. Adds hold a shared lock and removals (which
garbage-collect whole packs) an exclusive one, so concurrent adds are safe
and a removal never deletes a pack an add in progress is writing or reusing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import hashlib
import json
import os
import re
import secrets
import sqlite3
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from fogfed._lanes import Lane
from fogfed.errors import InputError
from fogfed.storage.base import ContentStore, OnCid, Progress
from fogfed.storage.cids import Cid, check_block, parse_cid
from fogfed.storage.errors import ContentCorrupted, ContentNotFound, StorageUnavailable
from fogfed.storage.importer import Block, import_file
from fogfed.storage.reader import MAX_BLOCK, declared_size, read_file

LOOKUP_BATCH = 4  # blocks looked up in the index by one query: one importer read (1 MiB) of leaves
WRITEBACK_EVERY = 4 << 20  # bytes after which the pack's write-back to disk is started (A/B: 1 to 8 MiB alike)
PACK_NAME = re.compile(r"[0-9a-f]{16}\.pack")  # the index is storage too: never follow other names
_SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks (key TEXT PRIMARY KEY, pack TEXT NOT NULL, offset INTEGER NOT NULL,
                                   length INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blocks_by_pack ON blocks (pack);
CREATE TABLE IF NOT EXISTS pins (root TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pin_blocks (root TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL,
                                       PRIMARY KEY (root, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pin_blocks_by_key ON pin_blocks (key);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
TRAILER_MAGIC = b"FFPACKv1"
_TRAILER_TAIL = struct.Struct(">32sQ8s")  # SHA-256 of the body, body length, magic
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str | None:
    """This boot's id (Linux); None where there is none to read."""
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


class EmbeddedStore(ContentStore):
    """Blocks packed one file per add under ``root``, found through a SQLite index of CIDs and pins."""

    local = True  # a node's cache reads its uploads through this store instead of copying them

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        self._packs, self._index = self.root / "packs", self.root / "index.sqlite3"
        self._conns = threading.local()  # one kept connection per thread (and process: see _db)
        if (self.root / "blocks").is_dir() or (self.root / "pins").is_dir():
            raise StorageUnavailable(
                f"{self.describe()} uses the former one-file-per-block layout (blocks/, pins/), "
                "which this version does not read",
                "move that directory aside and add its files again (cat them with the fogfed version "
                "that wrote it), or choose another store directory")
        try:
            self._packs.mkdir(parents=True, exist_ok=True)
            with self._db() as db:
                db.executescript(_SCHEMA)
            self._fast_commit = self._same_boot()
        except OSError as exc:
            raise self._unavailable(exc) from None

    def _same_boot(self) -> bool:
        """Whether adds may commit without an fsync: only once the index is known whole for this boot.

        The first open after a reboot (the boot id in the index differs) puts
        back what the crash took from the index (``recover``), under the
        exclusive lock, then records this boot's id with a synchronous commit.
        """
        boot = _boot_id()
        if boot is None:
            return False
        with self._db() as db:
            if self._recorded_boot(db) == boot:
                return True
        with self._lock(exclusive=True), self._db() as db:
            if self._recorded_boot(db) != boot:
                self.recover()  # leaves the connection synchronous=FULL
                with _transaction(db):
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('boot_id', ?)", (boot,))
        return True

    @staticmethod
    def _recorded_boot(db: sqlite3.Connection) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = 'boot_id'").fetchone()
        return row[0] if row else None

    def recover(self) -> int:
        """Index again every pack the index does not name whose trailer and blocks check out; how many.

        Run (under the exclusive lock) at the first open after a reboot: an
        add's index commit is not fsynced, so a crash of the operating system
        may have taken it while its pack, fsynced before the commit, holds
        every block and the pin. A pack with a missing or torn trailer, or a
        block that does not match its CID, is a crashed add's and stays
        garbage (``collect_garbage``). A removal the crash cut between its
        commit and the pack's deletion may so come back pinned: a leak, never
        a loss.
        """
        recovered = 0
        with self._db() as db:
            named = {p for (p,) in db.execute("SELECT DISTINCT pack FROM blocks")}
            db.execute("PRAGMA synchronous=FULL")
            for path in sorted(self._packs.iterdir()):
                if path.name in named or not PACK_NAME.fullmatch(path.name):
                    continue
                described = _read_trailer(path)
                if described is None:
                    continue
                with _transaction(db):
                    _index_pack(db, path.name, described)
                recovered += 1
        return recovered

    def describe(self) -> str:
        return f"embedded store at {self.root}"

    def _unavailable(self, exc: OSError | sqlite3.Error) -> StorageUnavailable:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return StorageUnavailable(f"{self.describe()} is not usable: {why}",
                                  "check that the directory exists, is writable and the disk is not full")

    def _not_found(self, cid: Cid | str) -> ContentNotFound:
        return ContentNotFound(f"{cid} is not in {self.describe()}",
                               "add the file first, or fetch it from the node that has it")

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self._index, timeout=60, isolation_level=None, check_same_thread=False)
            # WAL: readers never wait for an add's commit; FULL: a commit is on disk when it returns.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        return db

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, kept open between operations; SQLite errors become StorageUnavailable.

        Kept because closing the last connection to the index checkpoints the
        WAL into the database file and deletes it (two more fsyncs, 10 to 15 ms per
        add here); kept open, SQLite checkpoints every 1,000 pages instead.
        A connection is never shared by two threads, nor inherited by a forked
        child (the pid is checked); one that raised is closed and not reused.
        """
        kept = getattr(self._conns, "db", None)
        if kept is None or kept[0] != os.getpid():
            kept = self._conns.db = (os.getpid(), self._connect())
        db = kept[1]
        try:
            yield db
        except sqlite3.Error as exc:
            self._drop(db)
            raise self._unavailable(exc) from None
        except BaseException:
            if db.in_transaction:  # an error inside a write: never leave the next operation in it
                self._drop(db)
            raise

    def _drop(self, db: sqlite3.Connection) -> None:
        self._conns.db = None
        with contextlib.suppress(sqlite3.Error):
            db.close()

    @contextlib.contextmanager
    def _own_db(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own, closed after: for a ``cat`` whose reader may move between threads."""
        db = self._connect()
        try:
            yield db
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        finally:
            db.close()

    def close(self) -> None:
        """Close this thread's kept index connection (others close with their threads or the store)."""
        kept = getattr(self._conns, "db", None)
        if kept is not None:
            self._drop(kept[1])

    @contextlib.contextmanager
    def _lock(self, exclusive: bool) -> Iterator[None]:
        with open(self.root / "lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield

    def add(self, src: BinaryIO, *, progress: Progress | None = None, on_cid: OnCid | None = None) -> str:
        try:
            with self._lock(exclusive=False), self._db() as db, _Pack(self._packs) as pack:
                fresh: dict[str, tuple[int, int]] = {}  # absent before: inserted unless a concurrent add wins
                repaired: dict[str, tuple[int, int]] = {}  # held damaged: replaced
                order: list[str] = []
                for group in _groups(import_file(src, progress=progress), LOOKUP_BATCH):
                    keys = [block.cid.key for block in group]
                    order += keys
                    held = self._locations(db, [k for k in keys if k not in fresh and k not in repaired])
                    for key, block in zip(keys, group):
                        if key in fresh or key in repaired:
                            continue
                        row = held.get(key)
                        if row is None:
                            fresh[key] = pack.append(block)
                        elif not self._intact(row, block):  # rewrite a damaged copy rather than trusting it
                            repaired[key] = pack.append(block)
                root = order[-1]
                described = {"pin": root, "order": order, "fresh": [[k, off, n] for k, (off, n) in fresh.items()],
                             "repaired": [[k, off, n] for k, (off, n) in repaired.items()]}
                if pack.size:
                    pack.describe(described)  # what recover() indexes again if a crash takes the commit
                pack.sync()  # the blocks are durable before any row names them
                if on_cid is not None:  # before the pin commits: a kill from here on leaves it known
                    on_cid(root)
                fast = self._fast_commit and pack.size > 0  # the pack describes the pin: no fsync to wait for
                db.execute(f"PRAGMA synchronous={'NORMAL' if fast else 'FULL'}")
                with _transaction(db):
                    _index_pack(db, pack.name, described)
                if not db.execute("SELECT 1 FROM blocks WHERE pack = ? LIMIT 1", (pack.name,)).fetchone():
                    pack.discard()  # a concurrent add of the same blocks won every row
                    if fast:  # then no pack describes this pin: make the commit durable now
                        with contextlib.suppress(FileNotFoundError):  # checkpointed meanwhile: in the database
                            _fsync(self._index.with_name(self._index.name + "-wal"))
                return root
        except OSError as exc:
            raise self._unavailable(exc) from None

    def _locations(self, db: sqlite3.Connection, keys: list[str]) -> dict[str, tuple]:
        """The index rows (pack, offset, length) of those of ``keys`` the store holds: one query."""
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        return {row[0]: row[1:] for row in
                db.execute(f"SELECT key, pack, offset, length FROM blocks WHERE key IN ({marks})", keys)}

    def _intact(self, row: tuple, block: Block) -> bool:
        """Whether the stored copy at index ``row`` (pack, offset, length) holds ``block``'s bytes."""
        if row[2] != block.size or not isinstance(row[0], str) or not PACK_NAME.fullmatch(row[0]):
            return False
        try:
            with open(self._packs / row[0], "rb") as f:
                return os.pread(f.fileno(), block.size, row[1]) == block.data
        except (OSError, ValueError, TypeError, OverflowError):
            return False

    def block_location(self, cid: str) -> tuple[Path, int, int]:
        """Where block ``cid`` is stored: (pack file, byte offset, length). For tests and the demo's attacks."""
        key = parse_cid(cid).key
        with self._db() as db:
            row = db.execute("SELECT pack, offset, length FROM blocks WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise self._not_found(f"block {cid}")
        return self._checked_location(cid, row)

    def _checked_location(self, cid: Cid | str, row: tuple) -> tuple[Path, int, int]:
        pack, offset, length = row
        if not (isinstance(pack, str) and PACK_NAME.fullmatch(pack) and isinstance(offset, int)
                and isinstance(length, int) and offset >= 0 and 0 <= length <= MAX_BLOCK):
            raise ContentCorrupted(f"the index entry of block {cid} in {self.describe()} is malformed "
                                   f"({pack!r}, {offset!r}, {length!r})", "remove the file and add it again")
        return self._packs / pack, offset, length

    def blocks(self, cid: str) -> list[str]:
        """The CIDs of every block of the pinned file ``cid``, leaves first and its root last."""
        key = parse_cid(cid).key
        with self._db() as db:
            keys = [k for (k,) in db.execute("SELECT key FROM pin_blocks WHERE root = ? ORDER BY seq", (key,))]
        if not keys:
            raise self._not_found(cid)
        return keys

    def cat(self, cid: str, *, progress: Progress | None = None) -> Iterator[bytes]:
        root = parse_cid(cid)
        with self._db() as db:  # fail at the call, not at the first read
            if db.execute("SELECT 1 FROM blocks WHERE key = ?", (root.key,)).fetchone() is None:
                raise self._not_found(cid)
        return self._read(root, progress)

    def size(self, cid: str) -> int:
        root = parse_cid(cid)
        with self._db() as db, _PackReader() as packs:
            return declared_size(root, self._block(db, packs, root))

    def _read(self, root: Cid, progress: Progress | None) -> Iterator[bytes]:
        with self._own_db() as db, _PackReader() as packs:
            def get_block(cid: Cid) -> bytes:
                return self._block(db, packs, cid)  # read_file checks it against its CID before using it

            yield from read_file(root, get_block, progress)

    def _block(self, db: sqlite3.Connection, packs: "_PackReader", cid: Cid) -> bytes:
        row = db.execute("SELECT pack, offset, length FROM blocks WHERE key = ?", (cid.key,)).fetchone()
        if row is None:
            raise self._not_found(f"block {cid}")
        path, offset, length = self._checked_location(cid, row)
        try:
            data = packs.read(path, offset, length)
        except FileNotFoundError:  # a removal collected the pack meanwhile
            raise self._not_found(f"block {cid}") from None
        except OSError as exc:
            raise self._unavailable(exc) from None
        if len(data) != length:
            raise ContentCorrupted(f"block {cid} in {self.describe()} is truncated "
                                   f"({len(data)} of {length} bytes)", "remove the file and add it again")
        return data

    def has(self, cid: str) -> bool:
        key = parse_cid(cid).key
        with self._db() as db:
            return db.execute("SELECT 1 FROM pins WHERE root = ?", (key,)).fetchone() is not None

    def remove(self, cid: str) -> None:
        """Unpin ``cid``, forget every block no remaining pin lists, delete packs holding none that is left."""
        key = parse_cid(cid).key
        try:
            with self._lock(exclusive=True), self._db() as db:
                db.execute("PRAGMA synchronous=FULL")  # durable before any pack is deleted
                with _transaction(db):
                    db.execute("DELETE FROM pin_blocks WHERE root = ?", (key,))
                    db.execute("DELETE FROM pins WHERE root = ?", (key,))
                    db.execute("DELETE FROM blocks WHERE key NOT IN (SELECT key FROM pin_blocks)")
                self._sweep(db)
        except OSError as exc:
            raise self._unavailable(exc) from None

    def collect_garbage(self) -> int:
        """Delete the packs no index row names (crashed adds'), unless an add or a removal is running
        right now (then nothing: never waits); how many were deleted."""
        try:
            with open(self.root / "lock", "a+b") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return 0
                with self._db() as db:
                    return self._sweep(db)
        except OSError as exc:
            raise self._unavailable(exc) from None

    def _sweep(self, db: sqlite3.Connection) -> int:
        """Under the exclusive lock no add runs: a pack the index does not name is garbage or a crashed add's."""
        live = {p for (p,) in db.execute("SELECT DISTINCT pack FROM blocks")}
        removed = 0
        for path in self._packs.iterdir():
            if path.name not in live:
                path.unlink()
                removed += 1
        return removed


def _index_pack(db: sqlite3.Connection, pack: str, described: dict) -> None:
    """The index rows of one add (inside the caller's transaction): its blocks, then its pin."""
    db.executemany("INSERT OR IGNORE INTO blocks VALUES (?, ?, ?, ?)",
                   [(k, pack, off, n) for k, off, n in described["fresh"]])
    db.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?, ?, ?)",
                   [(k, pack, off, n) for k, off, n in described["repaired"]])
    root = described["pin"]
    if db.execute("INSERT OR IGNORE INTO pins VALUES (?)", (root,)).rowcount:
        db.executemany("INSERT INTO pin_blocks VALUES (?, ?, ?)",
                       [(root, i, k) for i, k in enumerate(described["order"])])


def _trailer(described: dict) -> bytes:
    body = json.dumps(described, separators=(",", ":")).encode()
    return body + _TRAILER_TAIL.pack(hashlib.sha256(body).digest(), len(body), TRAILER_MAGIC)


def _read_trailer(path: Path) -> dict | None:
    """What the pack at ``path`` says it holds, if its trailer is whole and every block matches its CID."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < _TRAILER_TAIL.size:
                return None
            digest, length, magic = _TRAILER_TAIL.unpack(os.pread(f.fileno(), _TRAILER_TAIL.size,
                                                                  size - _TRAILER_TAIL.size))
            start = size - _TRAILER_TAIL.size - length
            if magic != TRAILER_MAGIC or start < 0:
                return None
            body = os.pread(f.fileno(), length, start)
            if hashlib.sha256(body).digest() != digest:
                return None
            described = json.loads(body)
            blocks = described["fresh"] + described["repaired"]
            if not (isinstance(described["pin"], str) and isinstance(described["order"], list)
                    and all(isinstance(k, str) for k in described["order"]) and described["pin"] in described["order"]):
                return None
            for key, offset, length in blocks:
                if not (isinstance(offset, int) and isinstance(length, int) and 0 <= offset
                        and offset + length <= start and length <= MAX_BLOCK):
                    return None
                check_block(parse_cid(key), os.pread(f.fileno(), length, offset))
            return described
    except ContentCorrupted:  # a block torn by the crash: the add never committed, so nothing is lost
        return None
    except (OSError, ValueError, KeyError, TypeError, InputError):
        return None


def _groups(blocks: Iterator[Block], n: int) -> Iterator[list[Block]]:
    group: list[Block] = []
    for block in blocks:
        group.append(block)
        if len(group) == n:
            yield group
            group = []
    if group:
        yield group


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at once so concurrent writers queue instead of deadlocking."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class _Pack:
    """One add's pack file: blocks appended in order, made durable by ``sync``; removed unless kept.

    Every WRITEBACK_EVERY bytes the kernel is asked to start writing the
    finished part to disk (sync_file_range), so the disk works while the
    importer hashes and the final fsync waits for the tail only. The
    directory's fsync (for the new name) runs on a kept thread (fogfed._lanes) from the start,
    while the blocks are made, instead of after the pack's fsync: the name
    is durable either way before ``sync`` returns.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self.name = f"{secrets.token_hex(8)}.pack"
        self._fd = os.open(directory / self.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        self._size = self._started = 0
        self._keep = False
        self._lane = Lane()  # a kept thread: starting one costs milliseconds on a busy machine
        self._name_synced = self._lane.submit(_fsync, directory)

    def __enter__(self) -> "_Pack":
        return self

    @property
    def size(self) -> int:
        return self._size

    def describe(self, described: dict) -> None:
        """Append the trailer (the add's rows and pin) after the blocks; offsets stay those of the blocks."""
        trailer = _trailer(described)
        _write_all(self._fd, (trailer,))
        self._size += len(trailer)

    def append(self, block: Block) -> tuple[int, int]:
        """Write ``block`` at the end; its (offset, length)."""
        offset = self._size
        _write_all(self._fd, block.parts)
        self._size += block.size
        if self._size - self._started >= WRITEBACK_EVERY:
            _start_writeback(self._fd, self._started, self._size - self._started)
            self._started = self._size
        return offset, block.size

    def sync(self) -> None:
        """fsync the pack (data and size); wait for its directory's fsync (its name); kept from then on."""
        if self._size:
            os.fsync(self._fd)
        error = self._name_synced.exception()  # waits for it
        self._lane.release()
        if error is not None:
            raise error
        self._keep = True

    def discard(self) -> None:
        self._keep = False

    def __exit__(self, *exc: object) -> None:
        self._lane.release()  # waits for the directory's fsync (nothing if sync did)
        os.close(self._fd)
        if not self._keep or not self._size:
            with contextlib.suppress(OSError):
                os.unlink(self._dir / self.name)


class _PackReader:
    """Open pack files kept while one file is read (its blocks are mostly in one pack)."""

    def __init__(self) -> None:
        self._open: dict[Path, int] = {}

    def __enter__(self) -> "_PackReader":
        return self

    def read(self, path: Path, offset: int, length: int) -> bytes:
        fd = self._open.get(path)
        if fd is None:
            fd = self._open[path] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(fd, length, offset)

    def __exit__(self, *exc: object) -> None:
        for fd in self._open.values():
            os.close(fd)


def _write_all(fd: int, parts: tuple) -> None:
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        n = os.writev(fd, views)
        while views and n >= len(views[0]):
            n -= len(views.pop(0))
        if n:
            views[0] = views[0][n:]


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_sync_file_range = getattr(_libc, "sync_file_range", None)
if _sync_file_range is not None:
    _sync_file_range.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing this range to disk, without waiting; only a speed hint.

    Durability still comes from the fsync in _Pack.sync; a failure here (or
    no sync_file_range on this system) only means the fsync does all the work.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE)


def _fsync(path: Path) -> None:
    """fsync a file or a directory by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
