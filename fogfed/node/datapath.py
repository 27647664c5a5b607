"""The node's data path without the chain: encrypt-and-store, verified download, checked decryption.

Every function streams (memory bounded by a few chunks) and writes through
temp files that are renamed only after every check passed, so a failure never
leaves a partial or unverified file where the caller will look.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import hashlib
import io
import json
import os
import tempfile
import threading
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from fogfed._faults import step
from fogfed.abe.stream import EncryptingReader, StreamError, StreamInfo, decrypt_stream
from fogfed.errors import FogfedError, InputError
from fogfed.protocol.files import STREAM_AAD
from fogfed.storage import ContentStore, compute_cid
from fogfed.storage.errors import ContentNotFound, StorageError
from fogfed.storage.importer import READ_SIZE

Progress = Callable[[int], object]
MAX_ENCSK_BYTES = 256 * 1024  # one IPFS chunk; real ones are a few KiB
AHEAD = 4  # READ_SIZE pieces a worker may have waiting: 4 MiB each


class _Worker:
    """One thread running jobs in the order given; at most ``AHEAD`` wait, so memory stays bounded.

    hashlib and AESGCM release the GIL on large buffers, so a hash on this
    thread runs on the second core while the caller encrypts.
    """

    def __init__(self, name: str) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: collections.deque[Future] = collections.deque()

    def submit(self, job: Callable[[bytes], object], data: bytes | memoryview) -> Future:
        future = self._pool.submit(job, data)
        self._pending.append(future)
        while len(self._pending) > AHEAD or (self._pending and self._pending[0].done()):
            self._pending.popleft().result()  # a failed job (disk full) fails the caller here
        return future

    def drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


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
    """``src`` read in whole ``READ_SIZE`` pieces, each SHA-256-hashed on a worker while the cipher encrypts it.

    The pieces are read (``readinto``) into a ring of ``AHEAD + 1`` buffers,
    allocated as needed and reused: a buffer is read into again only once its
    hash is done (the cipher is then long past it), so the worker never races
    a read and no fresh memory is faulted in per piece. The cipher gets each
    piece by ``readinto`` (one copy).
    """

    def __init__(self, src: BinaryIO, worker: _Worker) -> None:
        self._src, self._worker = src, worker
        self._sha256 = hashlib.sha256()
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
            self._hashed[slot] = self._worker.submit(self._sha256.update, piece)
            self._piece = piece
        n = min(len(buf), len(self._piece))
        buf[:n] = self._piece[:n]
        self._piece = self._piece[n:]
        return n

    def digest(self) -> bytes:
        self._worker.drain()
        return self._sha256.digest()

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
                      progress: Progress | None = None) -> tuple[str, StreamInfo, bytes | None]:
    """Paper Algorithm 4 (file part): stream-encrypt ``src`` under ``file_key`` into ``store``.

    Returns (CIDv0, stream info with the plaintext SHA-256, SHA-256 of the
    ciphertext copy or None) once the store has confirmed it. ``src`` is only read.

    With ``ciphertext_copy`` None (a ``local`` store, whose copy the cache
    refers to) the ciphertext is written once, by the store, and hashed once,
    for its blocks' CIDs; the plaintext is hashed once for the chain, on a
    worker thread beside the cipher and the importer. Otherwise the
    ciphertext is also written to ``ciphertext_copy`` for the local cache and
    SHA-256-hashed for it, on a second worker.
    """
    try:
        plain_file = open(src, "rb", buffering=0)  # whole-piece reads: no buffer layer needed
    except OSError as exc:
        raise InputError(f"cannot read {src}: {exc.strerror}") from None
    plain_worker = _Worker("fogfed-plainhash")
    copy_worker = _Worker("fogfed-ctcopy") if ciphertext_copy is not None else None
    try:
        with plain_file:
            plain = _PlaintextSource(plain_file, plain_worker)
            reader = EncryptingReader(file_key, plain, aad=STREAM_AAD, hash_plaintext=False,  # type: ignore[arg-type]
                                      progress=progress)
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
    return cid, dataclasses.replace(reader.info, plaintext_sha256=plain_sha), ct_sha


def store_blob(store: ContentStore, data: bytes, leftovers: "UploadLeftovers | None" = None) -> str:
    """Store a small blob (the encrypted file key); its CIDv0.

    With ``leftovers``, its CID is noted there before the store sees it, so
    an upload that dies after the store pinned it never leaves it unknown.
    """
    if leftovers is not None:
        leftovers.stored(compute_cid(io.BytesIO(data)))
    return store.add(io.BytesIO(data))


LEFTOVERS_SUFFIX = ".stored"


class UploadLeftovers:
    """What one upload put in the store before its registration, so that whatever it never
    registered is unpinned: by the upload itself when it fails, or by a later upload.

    A record file ``<pid>-<random>.stored`` in the node's temp folder, one JSON
    line per event: ``{"cid": ...}`` for each CID stored (the ciphertext with its
    file id, each encrypted file key), ``{"sent": file_id}`` just before
    ``registerFile`` is sent. The upload holds an exclusive ``flock`` on it
    while it runs, so :func:`reclaim_leftovers` in another process (or a later
    upload in this one) never touches a live upload's content. Lines are
    flushed, not fsynced: an OS crash may lose a record (a leak, never a loss).
    """

    def __init__(self, directory: Path, store: ContentStore) -> None:
        self.store = store
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{os.getpid()}-{os.urandom(6).hex()}"
        part = directory / f".{stem}.new"
        self.path = directory / f"{stem}{LEFTOVERS_SUFFIX}"
        self._file = open(part, "x+b")  # noqa: SIM115 (held, and locked, for the upload's life)
        fcntl.flock(self._file, fcntl.LOCK_EX)  # locked before reclaim_leftovers can see the name
        os.replace(part, self.path)
        self.cids: list[str] = []
        self.sent = False

    def _note(self, event: dict) -> None:
        self._file.write(json.dumps(event).encode() + b"\n")
        self._file.flush()

    def stored(self, cid: str, file_id_hex: str | None = None) -> None:
        """``cid`` is (or is about to be) pinned by this upload."""
        self.cids.append(cid)
        self._note({"cid": cid} if file_id_hex is None else {"cid": cid, "file_id": file_id_hex})

    def sending(self, file_id_hex: str) -> None:
        """``registerFile`` for ``file_id_hex`` goes out next: from now on the chain decides what is in use."""
        self.sent = True
        self._note({"sent": file_id_hex})

    def finish(self, used: set[str]) -> None:
        """The upload is registered with ``used`` (ciphertext and encrypted key): unpin the rest, forget the record."""
        if _unpin(self.store, [c for c in self.cids if c not in used]):
            self.path.unlink(missing_ok=True)
        self.close()

    def abandon(self) -> None:
        """The upload failed: if no registration was sent, unpin everything it stored now (the store
        may be down; then a later upload does it). The record stays until that has happened."""
        if not self.sent and _unpin(self.store, self.cids):
            self.path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        self._file.close()  # releases the flock: from now on reclaim_leftovers may take the record

    def __enter__(self) -> "UploadLeftovers":
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._file.closed:
            return
        if exc_type is None:
            self.close()  # not finished: the record stays for reclaim_leftovers
        else:
            self.abandon()


def _unpin(store: ContentStore, cids: list[str]) -> bool:
    """Unpin each of ``cids``; False (the rest left pinned) if the store cannot be reached."""
    for cid in cids:
        try:
            store.remove(cid)
        except (ContentNotFound, InputError):  # not there, or not a CID (a damaged record): nothing to unpin
            continue
        except StorageError:
            return False
    return True


def reclaim_leftovers(directory: Path, store: ContentStore, registered_key: Callable[[str], str | None],
                      given_up: Collection[str] = ()) -> int:
    """Unpin what interrupted uploads stored but never registered; returns how many records were settled.

    A record no live upload holds (its ``flock`` is free) is read: if no
    registration was sent, every CID it lists is unpinned; if one was, and the
    chain shows it (``registered_key(file_id)`` gives the registered encrypted
    key's CID), every CID but the ciphertext and that key is unpinned. A record
    whose registration was sent but is not (yet) on chain is kept, since the
    transaction may still be mined, unless its file id is in ``given_up``: the
    caller uploads the same source again under a new key (the upload journal
    found it unregistered), so should the old transaction still be mined, its
    plaintext is registered anyway. A damaged record (a torn last line) counts
    as far as it can be read. The store being down leaves the record for later.
    Once a dead upload's record was seen, the store frees what crashed adds left
    (``ContentStore.collect_garbage``: an embedded store's unreferenced packs).
    """
    settled = dead = 0
    try:
        paths = sorted(directory.glob(f"*{LEFTOVERS_SUFFIX}"))
    except OSError:
        return 0
    for path in paths:
        try:
            f = open(path, "r+b")  # noqa: SIM115
        except OSError:
            continue
        with f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live upload's
            dead += 1
            cids, sent = _read_record(f.read())
            if sent is not None and sent not in given_up:
                key = registered_key(sent)
                if key is None:
                    continue
                cids = [c for c, fid in cids if fid != sent and c != key]
            else:
                cids = [c for c, _ in cids]
            if _unpin(store, cids):
                path.unlink(missing_ok=True)
                settled += 1
    if dead:  # an upload died: an add it was making may have left partial data (an embedded store's pack)
        with contextlib.suppress(StorageError):
            store.collect_garbage()
    return settled


def _read_record(data: bytes) -> tuple[list[tuple[str, str | None]], str | None]:
    """(CID, file id or None) for each CID stored, and the file id whose registration was sent."""
    cids: list[tuple[str, str | None]] = []
    sent = None
    for line in data.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            break  # torn by a crash mid-write: nothing after it was written either
        if not isinstance(event, dict):
            break
        if isinstance(event.get("cid"), str):
            fid = event.get("file_id") if isinstance(event.get("file_id"), str) else None
            cids.append((event["cid"], fid))
        elif isinstance(event.get("sent"), str):
            sent = event["sent"]
    return cids, sent


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


def decrypt_checked(file_key: bytes, ciphertext: Path, dest: Path, plaintext_sha256: bytes,
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
            info = _decrypt_into(file_key, src, out, dest, plaintext_sha256, progress)
            _durable_rename(tmp, dest)
        return info
    with os.fdopen(fd, "wb") as out, open(ciphertext, "rb") as src:
        info = _decrypt_into(file_key, src, out, dest, plaintext_sha256, progress)
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


def _decrypt_into(file_key: bytes, src: BinaryIO, out: BinaryIO, dest: Path, plaintext_sha256: bytes,
                  progress: Progress | None = None) -> StreamInfo:
    try:
        info = decrypt_stream(file_key, src, out, aad=STREAM_AAD, progress=progress)
        out.flush()
        step("fetch:decrypted")
        os.fsync(out.fileno())
    except OSError as exc:
        raise _destination_error(dest, exc) from None
    if info.plaintext_sha256 != plaintext_sha256:
        raise PlaintextMismatch(f"decrypted file has SHA-256 {info.plaintext_sha256.hex()}, the chain "
                                f"records {plaintext_sha256.hex()}")
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


__all__ = ["DestinationError", "PlaintextMismatch", "StreamError", "clean_temp", "decrypt_checked", "encrypt_and_store", "matches_cid",
           "phase", "read_blob", "reclaim_leftovers", "store_blob", "temp_file", "UploadLeftovers", "write_pieces"]
