"""A content-addressed store in a local directory: no server, same CIDs as IPFS.

Layout under root: ``blocks/<2 chars>/<CID>`` one file per block (sharded on
the next-to-last two characters, like Kubo's flatfs), ``pins/<root CID>``
listing every block of that file, ``tmp/`` for writes in progress, ``lock``.
Every block is written to tmp and renamed into place, so a name never holds
a partial block. Durability is one flush per add, not one per block: after
the last block, ``syncfs`` on the store's file system makes every block and
rename durable, and only then is the pin written (fsync, rename, fsync of
pins/), so a pin never names a block that a crash could lose (see
docs/storage.md). Adds hold a shared lock and removals (which
garbage-collect) an exclusive one, so concurrent adds are safe and a removal
never deletes blocks an add in progress is writing.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from fogfed.storage.base import ContentStore, Progress
from fogfed.storage.cids import Cid, parse_cid
from fogfed.storage.errors import ContentCorrupted, ContentNotFound, StorageUnavailable
from fogfed.storage.importer import Block, import_file
from fogfed.storage.reader import MAX_BLOCK, read_file


WRITERS = 2  # threads creating block files (the GIL is released in the kernel calls)
IN_FLIGHT = 8  # blocks handed to them and not yet written: 2 MiB at most


class EmbeddedStore(ContentStore):
    """Blocks as files named by CID under ``root``, plus a pin index."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser()
        self._blocks, self._pins, self._tmp = self.root / "blocks", self.root / "pins", self.root / "tmp"
        try:
            for d in (self._blocks, self._pins, self._tmp):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unavailable(exc) from None

    def describe(self) -> str:
        return f"embedded store at {self.root}"

    def _unavailable(self, exc: OSError) -> StorageUnavailable:
        return StorageUnavailable(f"{self.describe()} is not usable: {exc.strerror or exc}",
                                  "check that the directory exists, is writable and the disk is not full")

    @contextlib.contextmanager
    def _lock(self, exclusive: bool) -> Iterator[None]:
        with open(self.root / "lock", "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield

    def _block_path(self, key: str) -> Path:
        return self._blocks / key[-3:-1] / key

    def add(self, src: BinaryIO, *, progress: Progress | None = None) -> str:
        try:
            with self._lock(exclusive=False), _AtomicFile(self._tmp) as index, \
                    ThreadPoolExecutor(WRITERS, thread_name_prefix="fogfed-store") as pool:
                shards: set[Path] = set()
                pending: collections.deque[Future] = collections.deque()
                key = ""
                for block in import_file(src, progress=progress):
                    key = block.cid.key
                    path = self._block_path(key)
                    if path.parent not in shards:
                        path.parent.mkdir(exist_ok=True)
                        shards.add(path.parent)
                    # Creating a file costs the kernel more than hashing a block does: do it
                    # beside the importer; at most IN_FLIGHT blocks wait, so memory stays bounded.
                    pending.append(pool.submit(self._put, path, block))
                    while len(pending) > IN_FLIGHT or (pending and pending[0].done()):
                        pending.popleft().result()
                    index.write(f"{key}\n".encode())
                while pending:
                    pending.popleft().result()
                _sync_filesystem(self._tmp)
                # the pin goes in only after every block is durable
                index.commit(self._pins / key)
                _fsync_dir(self._pins)
                return key
        except OSError as exc:
            raise self._unavailable(exc) from None

    def _put(self, path: Path, block: Block) -> None:
        with contextlib.suppress(OSError):
            # rewrite a damaged copy rather than trusting whatever holds the name
            if path.stat().st_size == block.size and path.read_bytes() == block.data:
                return
        fd, name = tempfile.mkstemp(dir=self._tmp)
        try:
            _write_all(fd, block.parts)
            os.close(fd)
            fd = -1
            os.replace(name, path)  # made durable with the others by _sync_filesystem
        except BaseException:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise

    def _get_block(self, cid: Cid) -> bytes:
        try:
            with open(self._block_path(cid.key), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > MAX_BLOCK:
                    raise ContentCorrupted(f"block {cid} in {self.describe()} is {size} bytes, over {MAX_BLOCK}",
                                           "remove the file and add it again")
                return f.read()
        except FileNotFoundError:
            raise ContentNotFound(f"block {cid} is not in {self.describe()}",
                                  "add the file first, or fetch it from the node that has it") from None
        except OSError as exc:
            raise self._unavailable(exc) from None

    def cat(self, cid: str, *, progress: Progress | None = None) -> Iterator[bytes]:
        root = parse_cid(cid)
        if not self._block_path(root.key).exists():  # fail at the call, not at the first read
            raise ContentNotFound(f"{cid} is not in {self.describe()}",
                                  "add the file first, or fetch it from the node that has it")
        return read_file(root, self._get_block, progress)

    def has(self, cid: str) -> bool:
        return (self._pins / parse_cid(cid).key).exists()

    def remove(self, cid: str) -> None:
        """Unpin ``cid`` and delete every block no remaining pin lists (and stray temp files)."""
        key = parse_cid(cid).key
        try:
            with self._lock(exclusive=True):
                (self._pins / key).unlink(missing_ok=True)
                self._collect_garbage()
        except OSError as exc:
            raise self._unavailable(exc) from None

    def _collect_garbage(self) -> None:
        live: set[str] = set()
        for pin in self._pins.iterdir():
            live.update(pin.read_text(errors="replace").split())
        for shard in self._blocks.iterdir():
            for block in shard.iterdir():
                if block.name not in live:
                    block.unlink()
        for stray in self._tmp.iterdir():  # left by crashed adds; none is running under the lock
            stray.unlink()


class _AtomicFile:
    """A temp file that becomes ``target`` only through ``commit`` (fsync, then rename)."""

    def __init__(self, tmp_dir: Path) -> None:
        fd, name = tempfile.mkstemp(dir=tmp_dir)
        self._f, self._name = os.fdopen(fd, "wb"), name

    def __enter__(self) -> "_AtomicFile":
        return self

    def write(self, data: bytes) -> None:
        self._f.write(data)

    def commit(self, target: Path) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        os.replace(self._name, target)
        self._name = None

    def __exit__(self, *exc: object) -> None:
        self._f.close()
        if self._name is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._name)


def _write_all(fd: int, parts: tuple) -> None:
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        n = os.writev(fd, views)
        while views and n >= len(views[0]):
            n -= len(views.pop(0))
        if n:
            views[0] = views[0][n:]


_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_syncfs = getattr(_libc, "syncfs", None)


def _sync_filesystem(path: Path) -> None:
    """Make everything written to the file system holding ``path`` durable, data and names.

    One syncfs(2) costs about what one fsync does, where an fsync per block
    file costs a journal commit each. Since Linux 5.8 syncfs reports
    write-back errors, which become OSError. Elsewhere, sync(2).
    """
    if _syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), str(path))
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
