"""Content-addressed storage: one interface, a real IPFS node or an embedded directory.

Both yield the CIDs a default IPFS node gives (CIDv0, 256 KiB chunks,
balanced DAG), stream with bounded memory, and check every block read back
against its CID. This layer imports no role (TAS, node, audit, CLI).
"""

from __future__ import annotations

import os
from pathlib import Path

from fogfed.errors import InputError
from fogfed.storage.base import ContentStore, Progress
from fogfed.storage.embedded import EmbeddedStore
from fogfed.storage.errors import ContentCorrupted, ContentNotFound, StorageError, StorageUnavailable
from fogfed.storage.importer import compute_cid
from fogfed.storage.ipfs import IpfsStore
from fogfed.storage.replicated import ReplicatedStore

__all__ = [
    "ContentStore", "EmbeddedStore", "IpfsStore", "ReplicatedStore", "open_store", "compute_cid", "default_store_root",
    "StorageError", "StorageUnavailable", "ContentNotFound", "ContentCorrupted", "Progress",
]


def default_store_root() -> Path:
    """``$FOGFED_HOME/store``, or ``~/.fogfed/store``."""
    home = os.environ.get("FOGFED_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".fogfed") / "store"


def open_store(ipfs: str | None = None, root: Path | None = None, *, replicas: int | None = None) -> ContentStore:
    """The IPFS node at ``ipfs`` if given, else the embedded store at ``root`` (default: default_store_root()).

    ``ipfs`` may list several daemons of one swarm, comma-separated, own daemon first: files are then
    pinned on ``replicas`` of them (default ``$FOGFED_IPFS_REPLICAS``, else 2) and fetches fail over
    (ReplicatedStore).
    """
    if ipfs is not None and "," in ipfs:
        urls = [u.strip() for u in ipfs.split(",") if u.strip()]
        raw = str(replicas) if replicas is not None else os.environ.get("FOGFED_IPFS_REPLICAS") or str(min(2, len(urls)))
        try:
            replicas = int(raw)
        except ValueError:
            raise InputError(f"FOGFED_IPFS_REPLICAS must be a whole number, got {raw!r}") from None
        return ReplicatedStore([IpfsStore(u) for u in urls], replicas=replicas)
    if ipfs is not None:
        return IpfsStore(ipfs)
    return EmbeddedStore(root if root is not None else default_store_root())
