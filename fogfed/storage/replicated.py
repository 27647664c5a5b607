"""One content store over several IPFS nodes: replication by pinning, fetches that fail over.

A fog node talks to its own IPFS daemon first; the daemons of a federation
form a swarm, so any of them can serve any pinned file by Bitswap. ``add``
returns only once ``replicas`` daemons pin the file (the first imports it,
the others pin it by CID and so pull it through the swarm), so losing
``replicas - 1`` daemons loses nothing. ``cat`` reads block by block from the
first daemon that answers and, when a daemon goes away (or times out, or
sends a block that does not match its CID) in the middle of a file, goes on
with the same block from the next one: the file is never restarted and
every block is still checked.

In production the same rule is IPFS Cluster's replication factor over Kubo
daemons (docs/devnets.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from fogfed.errors import InputError
from fogfed.storage.base import ContentStore, OnCid, Progress
from fogfed.storage.cids import Cid, check_block, parse_cid
from fogfed.storage.errors import ContentCorrupted, ContentNotFound, StorageError, StorageUnavailable
from fogfed.storage.ipfs import PREFETCH, IpfsStore, read_prefetched
from fogfed.storage.reader import declared_size

#: What makes a fetch move on to the next daemon (a missing, dead or lying node).
_FAILOVER = (StorageUnavailable, ContentNotFound, ContentCorrupted)


class ReplicatedStore(ContentStore):
    """Files pinned on ``replicas`` of ``stores`` (the first is this fog node's own daemon).

    ``stores`` are IpfsStores of daemons in one swarm. ``failovers`` counts, for
    tests and logs, how many times a fetch moved to another daemon.
    """

    def __init__(self, stores: Sequence[IpfsStore], *, replicas: int = 2) -> None:
        if not stores:
            raise InputError("a replicated store needs at least one IPFS node")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or not 1 <= replicas <= len(stores):
            raise InputError(f"replicas must be between 1 and the {len(stores)} IPFS nodes given, got {replicas!r}",
                             "lower the replication setting or add IPFS nodes")
        self.stores, self.replicas = list(stores), replicas
        self.failovers = 0

    def describe(self) -> str:
        return f"{len(self.stores)} IPFS nodes, {self.replicas} copies of each file (first: {self.stores[0].url})"

    def close(self) -> None:
        for store in self.stores:
            store.close()

    def __enter__(self) -> "ReplicatedStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, src: BinaryIO, *, progress: Progress | None = None, on_cid: OnCid | None = None) -> str:
        """Import through the first reachable daemon, then pin on further daemons until
        ``replicas`` hold it; StorageError (nothing lost: retry) when too few can. ``on_cid`` hears
        the CID before the first daemon can pin it (the others pin it only after)."""
        errors: list[str] = []
        cid = None
        for i, store in enumerate(self.stores):
            try:
                cid = store.add(src, progress=progress, on_cid=on_cid)
            except StorageUnavailable as exc:
                if getattr(src, "seekable", lambda: False)():
                    src.seek(0)
                    errors.append(exc.message)
                    continue
                raise
            first = i
            break
        if cid is None:
            raise StorageUnavailable(f"no IPFS node could take the file: {'; '.join(errors)}",
                                     "start the fog node's IPFS daemon and retry")
        held = [first]
        for i, store in enumerate(self.stores):
            if len(held) == self.replicas:
                break
            if i in held:
                continue
            try:
                store.pin(cid)
            except StorageError as exc:
                errors.append(exc.message)
                continue
            held.append(i)
        if len(held) < self.replicas:
            raise StorageError(f"{cid} is pinned on {len(held)} of the {self.replicas} IPFS nodes required "
                               f"({'; '.join(errors)})",
                               "bring the other daemons back (or lower the replication) and upload again")
        return cid

    def copies(self, cid: str) -> int:
        """How many reachable daemons pin ``cid``."""
        count = 0
        for store in self.stores:
            with contextlib.suppress(StorageUnavailable):
                count += store.has(cid)
        return count

    def has(self, cid: str) -> bool:
        parse_cid(cid)
        return self.copies(cid) > 0

    def remove(self, cid: str) -> None:
        """Unpin ``cid`` on every reachable daemon; StorageUnavailable names those that were not."""
        down = []
        for store in self.stores:
            try:
                store.remove(cid)
            except StorageUnavailable:
                down.append(store.url)
        if down:
            raise StorageUnavailable(f"{cid} was unpinned, except on the unreachable {', '.join(down)}",
                                     "unpin it there when they are back")

    def size(self, cid: str) -> int:
        root = parse_cid(cid)
        return declared_size(root, self._get_block(root, [0]))

    def cat(self, cid: str, *, progress: Progress | None = None) -> Iterator[bytes]:
        root = parse_cid(cid)
        current = [0]
        first = self._get_block(root, current)  # fail at the call, not at the first read
        return self._read(root, first, current, progress)

    def _read(self, root: Cid, first: bytes, current: list[int], progress: Progress | None) -> Iterator[bytes]:
        return read_prefetched(root, first, lambda c: self._get_block(c, current), PREFETCH, progress)

    def _get_block(self, cid: Cid, current: list[int]) -> bytes:
        """``cid`` from the daemon in use, else from the next ones in turn (each block checked)."""
        errors: list[str] = []
        n = len(self.stores)
        for step in range(n):
            i = (current[0] + step) % n
            try:
                block = self.stores[i].get_block(cid)
                check_block(cid, block)
            except _FAILOVER as exc:
                errors.append(exc.message)
                continue
            if i != current[0]:
                self.failovers += 1
                current[0] = i  # stay on the daemon that answered
            return block
        if all("unreachable" in e for e in errors):
            raise StorageUnavailable(f"no IPFS node could be reached for block {cid}: {errors[0]}",
                                     "start a daemon of the swarm and retry")
        raise ContentNotFound(f"block {cid} is on none of the {n} IPFS nodes ({'; '.join(errors)})",
                              "check the CID; the file may have lost all its copies")
