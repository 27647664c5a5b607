"""A content-addressed store in a local directory: no server, same CIDs as IPFS.

Layout under root: ``blocks/<2 chars>/<CID>`` one file per block (sharded on
the next-to-last two characters, like Kubo's flatfs), ``pins/<root CID>``
listing every block of that file, ``tmp/`` for writes in progress, ``lock``.
Every file is written to tmp, fsynced and renamed into place, so a crash
leaves whole blocks or none. Adds hold a shared lock and removals (which
garbage-collect) an exclusive one, so concurrent adds are safe and a removal
never deletes blocks an add in progress is writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from fogfed.storage.base import ContentStore, Progress
from fogfed.storage.cids import Cid, parse_cid
from fogfed.storage.errors import ContentCorrupted, ContentNotFound, StorageUnavailable
from fogfed.storage.importer import import_file
from fogfed.storage.reader import MAX_BLOCK, read_file


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
            with self._lock(exclusive=False), _AtomicFile(self._tmp) as index:
                shards: set[Path] = set()
                key = ""
                for block in import_file(src, progress=progress):
                    key = block.cid.key
                    self._put(key, block.data, shards)
                    index.write(f"{key}\n".encode())
                for shard in shards:
                    _fsync_dir(shard)
                # the pin goes in only after every block is durable
                index.commit(self._pins / key)
                _fsync_dir(self._pins)
                return key
        except OSError as exc:
            raise self._unavailable(exc) from None

    def _put(self, key: str, data: bytes, shards: set[Path]) -> None:
        path = self._block_path(key)
        with contextlib.suppress(OSError):
            # rewrite a damaged copy rather than trusting whatever holds the name
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return
        path.parent.mkdir(exist_ok=True)
        with _AtomicFile(self._tmp) as f:
            f.write(data)
            f.commit(path)
        shards.add(path.parent)

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


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
