"""The node's list of its uploads (``files.json``): a cache of the chain, reconciled from its events.

The chain's FileRegistered events with this node as uploader are the list;
the local file adds only what the chain does not hold (the original file
name, the upload time). Every rewrite is a read-modify-write under
``<home>/files.lock``, so concurrent uploads lose no record, and a record
an interrupted upload never wrote is taken from the chain on the next read.

``uploads-journal.json`` holds the uploads in flight: before ``registerFile``
is sent, the source file (path, inode, size, time, policy) and the file id
it registers. A retry of the same source finds the entry, and if the chain
shows that file id registered by this node, finishes that upload instead of
registering the plaintext again; a completed upload leaves no entry, so
uploading a file again later is a new file.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fogfed._lock import ProcessLock
from fogfed.errors import FogfedError
from fogfed.keys.keystore import write_private_file
from fogfed.protocol.files import cid_of_file_id

FILES = "files.json"
CHAIN_CACHE = "files-chain.json"  # this node's FileRegistered events read so far (a cache: rebuilt if damaged)
JOURNAL = "uploads-journal.json"  # uploads in flight: source -> the file id about to be registered
LOCK = "files.lock"
_FIELDS = {"file_id": str, "cid": str, "name": (str, type(None)), "size": (int, type(None)),
           "federation_id": int, "epoch": int, "policy": str, "uploaded_at": (int, type(None))}


class RecordsError(FogfedError):
    """``files.json`` is damaged."""


def _damaged(path: Path, why: str) -> RecordsError:
    return RecordsError(f"upload list {path} is damaged: {why}",
                        "move it aside: the list is rebuilt from the chain (only original file names, or "
                        "the record of an upload in flight, are lost)")


def source_key(path: Path, policy: str | None) -> str:
    """What identifies one upload's source: the file (path, inode, size, modification time) and policy."""
    st = path.stat()
    return f"{path.resolve()}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{policy or ''}"


def load(path: Path) -> list[dict[str, Any]]:
    """The records in ``path`` (validated), [] if it does not exist."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError, UnicodeDecodeError):
        raise _damaged(path, "not JSON") from None
    if not isinstance(doc, list):
        raise _damaged(path, f"a JSON {type(doc).__name__}, not a list")
    for i, rec in enumerate(doc):
        if not isinstance(rec, dict):
            raise _damaged(path, f"entry {i} is not an object")
        for name, types in _FIELDS.items():
            if not isinstance(rec.get(name), types) or isinstance(rec.get(name), bool):
                raise _damaged(path, f"entry {i} has a bad {name!r}")
    return doc


class Uploads:
    """This node's registrations: chain events merged with the local names."""

    def __init__(self, home: Path, fed: Any, address: str) -> None:
        self.path = Path(home) / FILES
        self.fed, self.address = fed, address
        self._lock = ProcessLock(Path(home) / LOCK, f"the upload list in {home}")

    @contextlib.contextmanager
    def _held(self) -> Iterator[None]:
        self._lock.acquire()
        try:
            yield
        finally:
            self._lock.release()

    def on_chain(self) -> list[dict[str, Any]]:
        """This node's FileRegistered events, as records (no names), read on from the last block seen."""
        head = self.fed.chain.block_number()
        with self._held():
            block, records = self._load_chain_cache()
            if block < head:
                start = block + 1 if block >= 0 else None  # None: from the deployment block
                for e in self.fed.events(from_block=start, to_block=head, names=["FileRegistered"],
                                         where={"uploader": self.address}):
                    fid = bytes(e.args["fileId"])
                    if any(r["file_id"] == "0x" + fid.hex() for r in records):
                        continue
                    records.append({"file_id": "0x" + fid.hex(),
                                    "cid": cid_of_file_id(bytes(e.args["contentDigest"])),  # node uploads: CIDv0
                                    "name": None, "size": None, "federation_id": e.args["federationId"],
                                    "epoch": e.args["epoch"], "policy": e.args["policy"], "uploaded_at": None,
                                    "plaintext_hash": "0x" + bytes(e.args["plaintextHash"]).hex(),
                                    "block": e.block_number})
                write_private_file(self.path.with_name(CHAIN_CACHE),
                                   json.dumps({"block": head, "records": records}).encode())
        return records

    def _load_chain_cache(self) -> tuple[int, list[dict[str, Any]]]:
        try:
            doc = json.loads(self.path.with_name(CHAIN_CACHE).read_text())
            block, records = doc["block"], doc["records"]
            if type(block) is not int or not isinstance(records, list) or not all(
                    isinstance(r, dict) and isinstance(r.get("file_id"), str)
                    and isinstance(r.get("plaintext_hash"), str) for r in records):
                raise ValueError
            return block, records
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            return -1, []  # missing or damaged: it is only a cache, read the chain again

    def registration(self, file_id_hex: str) -> dict[str, Any] | None:
        """This node's registration of ``file_id_hex`` on chain, or None."""
        return next((r for r in self.on_chain() if r["file_id"] == file_id_hex), None)

    # -- the journal of uploads in flight --------------------------------------------------

    def pending(self, source: str) -> str | None:
        """The file id an interrupted upload of ``source`` was about to register, or None."""
        entry = self._journal().get(source)
        return entry if isinstance(entry, str) else None

    def begin(self, source: str, file_id_hex: str) -> None:
        """Note, before ``registerFile`` is sent, which file id this upload of ``source`` registers."""
        with self._held():
            journal = self._journal()
            journal[source] = file_id_hex
            write_private_file(self.path.with_name(JOURNAL), json.dumps(journal).encode())

    def finish(self, source: str) -> None:
        """The upload of ``source`` is complete (or was never registered): forget it."""
        with self._held():
            journal = self._journal()
            if journal.pop(source, None) is not None:
                write_private_file(self.path.with_name(JOURNAL), json.dumps(journal).encode())

    def _journal(self) -> dict[str, Any]:
        path = self.path.with_name(JOURNAL)
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, UnicodeDecodeError):
            raise _damaged(path, "not JSON") from None
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise _damaged(path, "not an object of file ids")
        return doc

    def add(self, record: dict[str, Any]) -> None:
        """Record one upload (read-modify-write under the lock)."""
        with self._held():
            records = [r for r in load(self.path) if r["file_id"] != record["file_id"]]
            records.append(record)
            write_private_file(self.path, json.dumps(records, indent=1, sort_keys=True).encode())

    def list(self) -> list[dict[str, Any]]:
        """Every registration on chain by this node, oldest first, with local names where known;
        ``files.json`` is rewritten to match the chain."""
        chain = self.on_chain()
        with self._held():
            local = {r["file_id"]: r for r in load(self.path)}
            merged = []
            for rec in chain:
                mine = local.get(rec["file_id"], {})
                merged.append({k: (mine.get(k) if mine.get(k) is not None else rec[k]) for k in _FIELDS})
            if merged != list(local.values()):
                write_private_file(self.path, json.dumps(merged, indent=1, sort_keys=True).encode())
        return merged
