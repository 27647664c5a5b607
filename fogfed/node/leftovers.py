"""What an upload put in the store but never registered, unpinned later: by the upload itself when it
fails, or by the next upload (a record file per upload in the node's temp folder, under a ``flock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import BinaryIO, NamedTuple, cast

from fogfed.errors import FogfedError, InputError
from fogfed.storage import ContentStore
from fogfed.storage.base import OnCid, Progress
from fogfed.storage.errors import ContentNotFound, StorageError


LEFTOVERS_SUFFIX = ".stored"


class UploadLeftovers:
    """What one upload put in the store before its registration, so that whatever it never
    registered is unpinned: by the upload itself when it fails, or by a later upload.

    A record file ``<pid>-<random>.stored`` in the node's temp folder, one JSON
    line per event: ``{"cid": ...}`` for each CID stored (the ciphertext with its
    file id, each encrypted file key), noted before the store can have pinned
    it (:meth:`noting`, ``store_blob``), so an add whose reply is lost still
    leaves its CID here; ``{"sent": file_id, "nonce": n, "from": address}``
    once ``registerFile`` is signed with nonce ``n`` and before it can leave the
    process (``Chain.send``'s ``on_nonce``), again for each nonce tried. Records
    of the first design have ``{"sent": file_id}`` alone, written just before
    the transaction. The upload holds an exclusive ``flock`` on it while it
    runs, so :func:`reclaim_leftovers` in another process (or a later upload in
    this one) never touches a live upload's content. Lines are flushed, not
    fsynced: an OS crash may lose a record (a leak, never a loss).
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
        self._noted: set[tuple[str, str | None]] = set()
        self.sent = False

    def _note(self, event: dict) -> None:
        try:
            self._file.write(json.dumps(event).encode() + b"\n")
            self._file.flush()
        except OSError as exc:  # not an OSError: a store would report it as its own failure
            raise FogfedError(f"cannot write the upload record {self.path}: {exc.strerror or exc}",
                              "free space in the node's home directory and upload again") from exc

    def stored(self, cid: str, file_id_hex: str | None = None) -> None:
        """``cid`` is (or is about to be) pinned by this upload; noted once (again only with a file id
        it lacked)."""
        if (cid, file_id_hex) in self._noted or (file_id_hex is None and any(c == cid for c, _ in self._noted)):
            return
        self._noted.add((cid, file_id_hex))
        if cid not in self.cids:
            self.cids.append(cid)
        self._note({"cid": cid} if file_id_hex is None else {"cid": cid, "file_id": file_id_hex})

    def sending(self, file_id_hex: str, nonce: int | None = None, sender: str | None = None) -> None:
        """``registerFile`` for ``file_id_hex``, signed by ``sender`` with ``nonce``, may leave the process
        from now on: the chain decides what is in use. Call it from ``Chain.send``'s ``on_nonce``, before
        the transaction is journaled or broadcast; without a nonce the record is of the first design
        (kept until the chain shows the file)."""
        event: dict = {"sent": file_id_hex}
        if nonce is not None:
            event.update(nonce=nonce, **({"from": sender} if sender else {}))
        self._note(event)  # a failure here aborts the send: nothing signed left the process
        self.sent = True

    def noting(self, store: ContentStore, file_id_of: Callable[[str], str]) -> ContentStore:
        """``store`` whose ``add`` notes the CID it adds here (with ``file_id_of(cid)``) before the store
        can have pinned it: the stores compute it while they stream anyway (``ContentStore.add``'s
        ``on_cid``), so a remote node's reply lost after its pin, or a kill after an embedded store's
        pin committed, no longer leaves a pin nothing names."""
        return cast(ContentStore, _NotingStore(store, lambda cid: self.stored(cid, file_id_of(cid))))

    def finish(self, used: set[str]) -> None:
        """The upload is registered with ``used`` (ciphertext and encrypted key): unpin the rest, forget the record."""
        if _unpin(self.store, [c for c in self.cids if c not in used]):
            self.path.unlink(missing_ok=True)
        self.close()

    def abandon(self) -> None:
        """The upload failed: if no registration was signed (so none can be mined), unpin everything it
        stored now (the store may be down; then a later upload does it). The record stays until that
        has happened."""
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


class _NotingStore:
    """A store whose ``add`` tells ``note`` the CID before the store can pin it; everything else is
    the store's own (``local`` included, so the caller's choices do not change)."""

    def __init__(self, store: ContentStore, note: Callable[[str], object]) -> None:
        self._store, self._note = store, note

    def add(self, src: BinaryIO, *, progress: Progress | None = None, on_cid: OnCid | None = None) -> str:
        def noted(cid: str) -> None:
            self._note(cid)
            if on_cid is not None:
                on_cid(cid)
        return self._store.add(src, progress=progress, on_cid=noted)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


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
                      given_up: Collection[str] = (),
                      dropped: Callable[[str, str | None, int], bool] | None = None) -> int:
    """Unpin what interrupted uploads stored but never registered; returns how many records were settled.

    A record no live upload holds (its ``flock`` is free) is read: if no
    registration was sent, every CID it lists is unpinned; if one was, and the
    chain shows it (``registered_key(file_id)`` gives the registered encrypted
    key's CID), every CID but the ciphertext and that key is unpinned. A
    registration sent but not on chain can no longer be mined once
    ``dropped(file_id, sender, nonce)`` says so for the highest nonce the
    record notes (the chain has used that nonce, for another transaction or
    for ours mined and reverted; on the embedded chain, which has no mempool,
    it was never sent): then everything is unpinned. Until then, and for a
    record of the first design (no nonce), it is kept, since the transaction
    may still be mined, unless its file id is in ``given_up``: the caller
    uploads the same source again under a new key (the upload journal found
    it unregistered), so should the old transaction still be mined, its
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
            record = _read_record(f.read())
            sent, cids = record.sent, record.cids
            if sent is not None and sent not in given_up:
                key = registered_key(sent)
                if key is not None:
                    in_use = {c for c, fid in cids if fid == sent} | {key}
                    cids = [(c, fid) for c, fid in cids if c not in in_use]
                elif record.nonce is None or dropped is None or not dropped(sent, record.sender, record.nonce):
                    continue  # may still be mined
            if _unpin(store, list(dict.fromkeys(c for c, _ in cids))):
                path.unlink(missing_ok=True)
                settled += 1
    if dead:  # an upload died: an add it was making may have left partial data (an embedded store's pack)
        with contextlib.suppress(StorageError):
            store.collect_garbage()
    return settled


class _Record(NamedTuple):
    cids: list[tuple[str, str | None]]  # (CID, file id or None) for each CID stored
    sent: str | None  # the file id whose registration was sent
    nonce: int | None  # the highest nonce it was signed with (None: not noted, a record of the first design)
    sender: str | None


def _read_record(data: bytes) -> _Record:
    cids: list[tuple[str, str | None]] = []
    sent = sender = None
    nonce: int | None = None
    legacy = False  # a "sent" line without a nonce: the transaction's nonce is unknown
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
            n = event.get("nonce")
            if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
                nonce = n if nonce is None else max(nonce, n)
                sender = event["from"] if isinstance(event.get("from"), str) else sender
            else:
                legacy = True
    return _Record(cids, sent, None if legacy else nonce, sender)


__all__ = ["LEFTOVERS_SUFFIX", "UploadLeftovers", "reclaim_leftovers"]
