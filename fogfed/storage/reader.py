"""Read a UnixFS file block by block, checking every block against its CID.

Shared by both stores, so content from an untrusted IPFS node gets the same
checks as content from the local directory: each block's hash, the DAG's
declared sizes against the bytes actually found, and a depth limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fogfed.errors import InputError
from fogfed.storage.cids import RAW, Cid, check_block
from fogfed.storage.dagpb import UNIXFS_FILE, UNIXFS_RAW, decode_pbnode, decode_unixfs
from fogfed.storage.errors import ContentCorrupted

MAX_BLOCK = 2 * 1024 * 1024  # Kubo refuses blocks above 2 MiB; so do we
MAX_DEPTH = 32  # 174**32 chunks is far beyond any file; deeper means a hostile DAG

GetBlock = Callable[[Cid], bytes]


def read_file(root: Cid, get_block: GetBlock,
              progress: Callable[[int], None] | None = None,
              upcoming: Callable[[list[Cid]], None] | None = None) -> Iterator[bytes]:
    """Yield the bytes of the UnixFS file ``root``; raise ContentCorrupted on any mismatch.

    ``upcoming``, if given, is told each node's children (in read order) as soon as the node is
    checked, so a networked store can fetch them ahead; every block is still checked here.
    """
    done = 0
    for piece in _walk(root, get_block, None, 0, root, upcoming):
        done += len(piece)
        if progress:
            progress(done)
        yield piece


def declared_size(root: Cid, block: bytes) -> int:
    """The size in bytes the root block of a UnixFS file declares for the whole file
    (what a copy from anywhere else must not exceed)."""
    check_block(root, block)
    if root.codec == RAW:
        return len(block)
    try:
        fs = decode_unixfs(decode_pbnode(block).data or b"")
    except ValueError as exc:
        raise _corrupted(root, root, str(exc)) from None
    return len(fs.data) + sum(fs.blocksizes)


def _corrupted(root: Cid, cid: Cid, why: str) -> ContentCorrupted:
    where = f"block {cid}" if cid == root else f"block {cid} of {root}"
    return ContentCorrupted(f"{where} is malformed: {why}", "fetch the content again from another copy")


def _walk(cid: Cid, get_block: GetBlock, expected: int | None, depth: int, root: Cid,
          upcoming: Callable[[list[Cid]], None] | None = None) -> Iterator[bytes]:
    if depth > MAX_DEPTH:
        raise _corrupted(root, cid, f"DAG deeper than {MAX_DEPTH} levels")
    block = get_block(cid)
    if len(block) > MAX_BLOCK:
        raise _corrupted(root, cid, f"block of {len(block)} bytes exceeds {MAX_BLOCK}")
    check_block(cid, block)
    if cid.codec == RAW:
        if expected is not None and len(block) != expected:
            raise _corrupted(root, cid, f"parent declares {expected} bytes, block has {len(block)}")
        yield block
        return
    try:
        node = decode_pbnode(block)
        fs = decode_unixfs(node.data if node.data is not None else b"")
        children = [Cid.from_bytes(link.cid) for link in node.links]
    except ValueError as exc:
        raise _corrupted(root, cid, str(exc)) from None
    if fs.type not in (UNIXFS_FILE, UNIXFS_RAW):
        raise InputError(f"{cid} is not a file (UnixFS type {fs.type})", "pass the CID of a file")
    if len(fs.blocksizes) != len(children):
        raise _corrupted(root, cid, f"{len(children)} links but {len(fs.blocksizes)} block sizes")
    total = len(fs.data) + sum(fs.blocksizes)
    if fs.filesize is not None and fs.filesize != total:
        raise _corrupted(root, cid, f"declares {fs.filesize} bytes but its parts add up to {total}")
    if expected is not None and total != expected:
        raise _corrupted(root, cid, f"parent declares {expected} bytes, node holds {total}")
    if upcoming is not None and children:
        upcoming(children)
    if fs.data:
        yield fs.data
    for child, size in zip(children, fs.blocksizes):
        yield from _walk(child, get_block, size, depth + 1, root, upcoming)
