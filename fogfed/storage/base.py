"""The one interface both content stores implement."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from typing import BinaryIO

Progress = Callable[[int], None]
"""Called with the number of bytes processed so far (grows monotonically)."""

OnCid = Callable[[str], object]
"""Called by ``add`` with the CID of what it adds, before the store can have pinned it."""


class ContentStore(abc.ABC):
    """Content-addressed file storage: files in, CIDs out, verified bytes back."""

    local: bool = False
    """True if the store keeps its bytes on this machine's disk, durably: the node's cache
    then refers to the store's copy (``BlobCache.put_ref``) instead of writing a second one."""

    @abc.abstractmethod
    def add(self, src: BinaryIO, *, progress: Progress | None = None, on_cid: OnCid | None = None) -> str:
        """Stream ``src`` to its end into the store and return its CIDv0.

        Returns only once the store has confirmed the content (pinned on the
        node, or written and fsynced locally); on any error nothing is pinned
        by this call and it can simply be retried, except when the store's
        answer is lost after it pinned (an IPFS node's reply cut off, the
        process killed between the pin and the return). For those,
        ``on_cid(cid)`` is called once the CID is known (the whole source was
        read) and before the store can have pinned it: a caller that notes it
        can unpin it later. Both stores compute the CID while they stream
        anyway, so the hook costs no extra pass over the bytes. An exception
        from ``on_cid`` aborts the add with nothing pinned.
        """

    @abc.abstractmethod
    def cat(self, cid: str, *, progress: Progress | None = None) -> Iterator[bytes]:
        """Stream the file ``cid`` in pieces, each block checked against its CID first."""

    @abc.abstractmethod
    def size(self, cid: str) -> int:
        """The size of file ``cid`` as its root block (checked against the CID) declares it."""

    @abc.abstractmethod
    def has(self, cid: str) -> bool:
        """True if this store holds (pins) ``cid``."""

    @abc.abstractmethod
    def remove(self, cid: str) -> None:
        """Unpin ``cid``; blocks nothing else needs are freed (see each store). No-op if absent."""

    def collect_garbage(self) -> int:
        """Free what crashed adds left in the store, if the store can tell it without waiting; how many
        pieces were freed. The default does nothing (an IPFS node collects unpinned blocks itself)."""
        return 0

    @abc.abstractmethod
    def describe(self) -> str:
        """One line saying what this store is, for messages and logs."""
