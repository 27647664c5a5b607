"""The node's data path without the chain: encrypt-and-store, verified download, checked decryption.

Every function streams (memory bounded by a few chunks) and writes through
temp files that are renamed only after every check passed, so a failure never
leaves a partial or unverified file where the caller will look.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterator

from fogfed._faults import step
from fogfed._lanes import Lane
from fogfed.abe.stream import VERSION, EncryptingReader, StreamError, StreamInfo, decrypt_stream, plaintext_hasher
from fogfed.errors import FogfedError, InputError
from fogfed.protocol.files import STREAM_AAD
from fogfed.storage import ContentStore, compute_cid
from fogfed.storage.importer import READ_SIZE

if TYPE_CHECKING:
    from fogfed.node.leftovers import UploadLeftovers

Progress = Callable[[int], object]
MAX_ENCSK_BYTES = 256 * 1024  # one IPFS chunk; real ones are a few KiB
AHEAD = 4  # READ_SIZE pieces a worker may have waiting: 4 MiB each


class _Worker:
    """One thread running jobs in the order given; at most ``AHEAD`` wait, so memory stays bounded.

    hashlib and AESGCM release the GIL on large buffers, so a hash on this
    thread runs on the second core while the caller encrypts.
    """

    def __init__(self) -> None:
        self._lane = Lane()  # a kept thread: starting one costs milliseconds on a busy machine
        self._pending: collections.deque[Future] = collections.deque()

    def submit(self, job: Callable[[bytes], object], data: bytes | memoryview) -> Future:
        future = self._lane.submit(job, data)
        self._pending.append(future)
        while len(self._pending) > AHEAD or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()  # a failed job (disk full) fails the caller here
        return future

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        self._lane.release(cancel=True)


class _Buffers:
    """READ_SIZE buffers kept between uploads: a fresh megabyte costs 256 page faults on first touch."""

    def __init__(self, keep: int) -> None:
        self._free: list[memoryview] = []
        self._keep = keep
        self._lock = threading.Lock()

    def get(self) -> memoryview:
        with self._lock:
            if self._free:
                return self._free.pop()
        return memoryview(bytearray(READ_SIZE))

    def put(self, bufs: list[memoryview]) -> None:
        with self._lock:
            self._free.extend(bufs[:max(0, self._keep - len(self._free))])


_BUFFERS = _Buffers(keep=AHEAD + 1)  # one upload's ring; concurrent uploads allocate their own


class _PlaintextSource:
    """``src`` read in whole ``READ_SIZE`` pieces, each hashed (the stream ``version``'s plaintext hash) on
    a worker while the cipher encrypts it.

    The pieces are read (``readinto``) into a ring of ``AHEAD + 1`` buffers,
    allocated as needed and reused: a buffer is read into again only once its
    hash is done (the cipher is then long past it), so the worker never races
    a read and no fresh memory is faulted in per piece. The cipher gets each
    piece by ``readinto`` (one copy).
    """

    def __init__(self, src: BinaryIO, worker: _Worker, version: int) -> None:
        self._src, self._worker = src, worker
        self._hash = plaintext_hasher(version)
        self._piece = memoryview(b"")
        self._ring: list[memoryview] = []
        self._hashed: list[Future | None] = []
        self._next = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:
        if not self._piece:
            slot = self._next
            if slot == len(self._ring):
                self._ring.append(_BUFFERS.get())
                self._hashed.append(None)
            elif (pending := self._hashed[slot]) is not None:
                pending.result()
            self._next = (slot + 1) % (AHEAD + 1)
            n = self._src.readinto(self._ring[slot])
            if not n:
                return 0
            piece = self._ring[slot][:n]
            self._hashed[slot] = self._worker.submit(self._hash.update, piece)
            self._piece = piece
        n = min(len(buf), len(self._piece))
        buf[:n] = self._piece[:n]
        self._piece = self._piece[n:]
        return n

    def digest(self) -> bytes:
        self._worker.drain()
        return self._hash.digest()

    def release(self) -> None:
        """Give the ring back (call once no hash job can still read it)."""
        ring, self._ring = self._ring, []
        _BUFFERS.put(ring)


class _CiphertextSource:
    """The ciphertext as the store reads it; a worker writes each piece to ``copy`` and hashes it meanwhile.

    Reads are whole ``bytes`` of the size asked for, so the store's importer
    can cut its chunks out of them without copying again.
    """

    def __init__(self, reader: EncryptingReader, copy: BinaryIO, worker: _Worker) -> None:
        self._reader, self._copy, self._worker = reader, copy, worker
        self._sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = bytes(_read_full(self._reader, n))
        if data:
            self._worker.submit(self._copy_and_hash, data)
        return data

    def _copy_and_hash(self, data: bytes) -> None:
        try:
            self._copy.write(data)
        except OSError as exc:  # not an OSError: the store would report it as its own failure
            raise FogfedError(f"cannot write the ciphertext copy for the cache: {exc.strerror or exc}",
                              "free space in the node's home directory and upload again") from exc
        self._sha256.update(data)

    def digest(self) -> bytes:
        self._worker.drain()
        self._copy.flush()
        return self._sha256.digest()


class _WholeReads:
    """The ciphertext as the store reads it: a fresh buffer of the size asked for on every read, handed
    over (``hands_over_buffers``), so the importer cuts its chunks out of it without copying again."""

    hands_over_buffers = True

    def __init__(self, reader: EncryptingReader) -> None:
        self._reader = reader

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return _read_full(self._reader, n)  # type: ignore[return-value]  # never touched again: no copy


def _read_full(reader: EncryptingReader, n: int | None) -> bytearray:
    """Up to ``n`` bytes (READ_SIZE when unsized) of ciphertext: short only at the end of the stream."""
    n = READ_SIZE if n is None or n < 0 else n
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = reader.readinto(view[got:])
        if not k:
            break
        got += k
    view.release()
    del buf[got:]
    return buf


def encrypt_and_store(store: ContentStore, src: Path, file_key: bytes, ciphertext_copy: BinaryIO | None,
                      progress: Progress | None = None, *,
                      version: int = VERSION) -> tuple[str, StreamInfo, bytes | None]:
    """Paper Algorithm 4 (file part): stream-encrypt ``src`` under ``file_key`` into ``store``.

    Returns (CIDv0, stream info with the plaintext hash, SHA-256 of the
    ciphertext copy or None) once the store has confirmed it. ``src`` is only read.

    With ``ciphertext_copy`` None (a ``local`` store, whose copy the cache
    refers to) the ciphertext is written once, by the store, and hashed once,
    with SHA-256, for its blocks' CIDs; the plaintext is hashed once for the
    chain, with BLAKE3 (stream format 2: about a third of SHA-256's cost here),
    on a worker thread beside the cipher and the importer. Otherwise the
    ciphertext is also written to ``ciphertext_copy`` for the local cache and
    SHA-256-hashed for it, on a second worker. ``version`` is the stream format
    written (1 only for readers that predate 2).
    """
    try:
        plain_file = open(src, "rb", buffering=0)  # whole-piece reads: no buffer layer needed
    except OSError as exc:
        raise InputError(f"cannot read {src}: {exc.strerror}") from None
    plain_worker = _Worker()
    copy_worker = _Worker() if ciphertext_copy is not None else None
    try:
        with plain_file:
            plain = _PlaintextSource(plain_file, plain_worker, version)
            reader = EncryptingReader(file_key, plain, aad=STREAM_AAD, hash_plaintext=False,  # type: ignore[arg-type]
                                      progress=progress, version=version)
            if copy_worker is None:
                cid = store.add(_WholeReads(reader))  # type: ignore[arg-type]  # read() is all a store uses
                ct_sha = None
            else:
                source = _CiphertextSource(reader, ciphertext_copy, copy_worker)  # type: ignore[arg-type]
                cid = store.add(source)  # type: ignore[arg-type]
                ct_sha = source.digest()
            plain_sha = plain.digest()
    finally:
        plain_worker.close()
        if copy_worker is not None:
            copy_worker.close()
    plain.release()  # only on success: after a failure a cancelled job's buffer is simply dropped
    assert reader.info is not None  # the store read to the end
    return cid, dataclasses.replace(reader.info, plaintext_hash=plain_sha), ct_sha


def store_blob(store: ContentStore, data: bytes, leftovers: "UploadLeftovers | None" = None) -> str:
    """Store a small blob (the encrypted file key); its CIDv0.

    With ``leftovers``, its CID is noted there before the store sees it, so
    an upload that dies after the store pinned it never leaves it unknown.
    """
    if leftovers is not None:
        leftovers.stored(compute_cid(io.BytesIO(data)))
    return store.add(io.BytesIO(data))


def read_blob(store: ContentStore, cid: str, limit: int = MAX_ENCSK_BYTES) -> bytes:
    """Read a small blob back (verified by the store against its CID), refusing more than ``limit`` bytes."""
    out = bytearray()
    for piece in store.cat(cid):
        out += piece
        if len(out) > limit:
            raise InputError(f"blob {cid} is larger than {limit} bytes; not an encrypted file key")
    return bytes(out)


@contextmanager
def temp_file(directory: Path, suffix: str = ".part") -> Iterator[tuple[Path, BinaryIO]]:
    """A private temp file in ``directory``, deleted on exit unless the caller renamed it.

    Its name starts with this process's pid, so :func:`clean_temp` in a later
    run can remove what a killed one left behind without touching a live one's.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=directory, prefix=f"{os.getpid()}-", suffix=suffix)
    path = Path(name)
    f = os.fdopen(fd, "w+b")
    try:
        yield path, f
    finally:
        f.close()
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_temp(directory: Path, suffix: str = ".part", *, unnamed_after: float = 3600.0) -> int:
    """Remove temp files that interrupted runs left in ``directory``; returns how many.

    A file named by a pid that no longer runs is removed; one without a pid
    (the first design's names) once it is ``unnamed_after`` seconds old.
    """
    import time

    removed = 0
    try:
        entries = list(directory.iterdir())
    except OSError:
        return 0
    for path in entries:
        if not path.name.endswith(suffix) or not path.is_file():
            continue
        head = path.name.split("-", 1)[0]
        try:
            stale = (not _alive(int(head))) if head.isdigit() else \
                time.time() - path.stat().st_mtime > unnamed_after
            if stale:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def write_pieces(pieces: Iterable[bytes], dst: BinaryIO, progress: Progress | None = None, *,
                 digest: bool = True) -> bytes | None:
    """Copy byte pieces to ``dst``; returns their SHA-256 (None with ``digest=False``)."""
    h, done = hashlib.sha256(), 0
    for piece in pieces:
        dst.write(piece)
        if digest:
            h.update(piece)
        done += len(piece)
        if progress is not None:
            progress(done)
    dst.flush()
    return h.digest() if digest else None


def phase(progress: Progress | None, name: str, total: int | None) -> None:
    """Tell ``progress`` a new phase begins (fetching, verifying, decrypting) and how many bytes it has.

    A progress callback may have a ``phase(name, total)`` method (the CLI's
    bar does); a plain callable only hears bytes done, from 0 again each phase.
    """
    start = getattr(progress, "phase", None)
    if start is not None:
        start(name, total)


class _Counted:
    """``f`` read through, ``progress`` told the bytes read so far."""

    def __init__(self, f: BinaryIO, progress: Progress) -> None:
        self._f, self._progress, self._done = f, progress, 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self._done += len(data)
        self._progress(self._done)
        return data


def matches_cid(path: Path, cid: str, progress: Progress | None = None) -> bool:
    """Whether the file at ``path`` has CIDv0 ``cid`` (recomputed with the IPFS importer)."""
    with open(path, "rb") as f:
        return compute_cid(f if progress is None else _Counted(f, progress)) == cid  # type: ignore[arg-type]


def decrypt_checked(file_key: bytes, ciphertext: Path, dest: Path, plaintext_hash: bytes,
                    progress: Progress | None = None) -> StreamInfo:
    """Decrypt into an unnamed file in ``dest``'s folder and give it ``dest``'s name only if the
    plaintext hash matches.

    Raises StreamError (failed authentication), PlaintextMismatch, or
    DestinationError (the folder cannot take the file: disk full, read-only, ...);
    ``dest`` is then untouched. The file has no name until every check passed
    (``O_TMPFILE``), so a process killed half-way leaves no partial plaintext
    behind; where the file system lacks ``O_TMPFILE`` a pid-named temp file is used.
    """
    dest = Path(dest)
    folder = dest.parent if str(dest.parent) else Path(".")
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except (OSError, AttributeError):
        fd = None
    if fd is None:
        with temp_file(folder, suffix=".fogfed-part") as (tmp, out), open(ciphertext, "rb") as src:
            info = _decrypt_into(file_key, src, out, dest, plaintext_hash, progress)
            _durable_rename(tmp, dest)
        return info
    with os.fdopen(fd, "wb") as out, open(ciphertext, "rb") as src:
        info = _decrypt_into(file_key, src, out, dest, plaintext_hash, progress)
        name = folder / f".{os.getpid()}-{os.urandom(4).hex()}.fogfed-part"
        try:  # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd: a dir fd makes os.link call linkat
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.link(f"/proc/self/fd/{out.fileno()}", name.name, dst_dir_fd=dir_fd, follow_symlinks=True)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise _destination_error(dest, exc) from None
        try:
            _durable_rename(name, dest)
        finally:
            name.unlink(missing_ok=True)
    return info


def _decrypt_into(file_key: bytes, src: BinaryIO, out: BinaryIO, dest: Path, plaintext_hash: bytes,
                  progress: Progress | None = None) -> StreamInfo:
    try:
        info = decrypt_stream(file_key, src, out, aad=STREAM_AAD, progress=progress)
        out.flush()
        step("fetch:decrypted")
        os.fsync(out.fileno())
    except OSError as exc:
        raise _destination_error(dest, exc) from None
    if info.plaintext_hash != plaintext_hash:
        raise PlaintextMismatch(f"decrypted file has {info.hash_name.upper()} {info.plaintext_hash.hex()}, the "
                                f"chain records {plaintext_hash.hex()}")
    return info


def _durable_rename(tmp: Path, dest: Path) -> None:
    try:
        os.replace(tmp, dest)
    except OSError as exc:
        raise _destination_error(dest, exc) from None


def _destination_error(dest: Path, exc: OSError) -> "DestinationError":
    return DestinationError(f"cannot write {dest}: {exc.strerror or exc}",
                            "free space there or choose another destination; nothing was written")


class DestinationError(FogfedError):
    """The plaintext cannot be written at the destination (disk full, read-only, permissions)."""


class PlaintextMismatch(InputError):
    """The decrypted bytes do not hash to the plaintext hash on chain (Algorithm 9's check)."""


__all__ = ["DestinationError", "PlaintextMismatch", "StreamError", "clean_temp", "decrypt_checked", "encrypt_and_store",
           "matches_cid", "phase", "read_blob", "store_blob", "temp_file", "write_pieces"]
