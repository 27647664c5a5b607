"""A UnixFS file importer that yields the same CIDs as Kubo and js-ipfs.

Fixed-size chunker (262,144 bytes), balanced DAG layout with at most 174
links per node, CIDv0 with dag-pb leaves by default, or CIDv1 with raw leaves.
Push-style so an upload can feed it bytes as they stream past: memory holds
one chunk plus at most 174 pending links per tree level.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Union

from fogfed.errors import InputError
from fogfed.storage.cids import DAG_PB, RAW, Cid, make_cid
from fogfed.storage.dagpb import UNIXFS_FILE, Link, PBNode, UnixFSData, encode_pbnode, encode_unixfs, varint

CHUNK_SIZE = 262_144
MAX_LINKS = 174
READ_SIZE = 1 << 20


Buffer = Union[bytes, bytearray, memoryview]


@dataclass(frozen=True)
class Block:
    """One block; its bytes are ``parts`` joined (a leaf is framing + a view of the chunk, never copied)."""

    cid: Cid
    parts: tuple[Buffer, ...]
    size: int

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


@dataclass(frozen=True)
class _Entry:
    """A finished child node as its parent will link to it."""

    cid: Cid
    tsize: int
    filesize: int


class DagBuilder:
    """Feed bytes with ``write``; each call returns the blocks it completed, children first.

    ``finish`` returns the remaining blocks, the last of which is the root.
    """

    def __init__(self, cid_version: int = 0) -> None:
        if cid_version not in (0, 1):
            raise InputError(f"CID version must be 0 or 1, got {cid_version!r}")
        self.cid_version = cid_version
        self._buf = bytearray()
        self._levels: list[list[_Entry]] = [[]]  # levels[0]: leaves not yet under a parent
        self._chunks = 0
        self.root: Cid | None = None

    def write(self, data: Buffer, *, owned: bool = False) -> list[Block]:
        """Blocks may reference ``data`` without copying it when it is ``bytes``, or ``owned`` (the
        caller hands the buffer over and never changes it again); other buffers are copied."""
        if self.root is not None:
            raise RuntimeError("DagBuilder already finished")
        out: list[Block] = []
        view = memoryview(data).cast("B") if owned or isinstance(data, bytes) else None
        pos = 0
        if view is not None and not self._buf:
            # Whole chunks straight out of immutable input: hashed and written from views, no copy.
            while len(view) - pos >= CHUNK_SIZE:
                self._add_leaf(view[pos:pos + CHUNK_SIZE], out)
                pos += CHUNK_SIZE
            data = view[pos:]
        self._buf += data
        while len(self._buf) >= CHUNK_SIZE:
            with memoryview(self._buf) as whole:
                chunk = bytes(whole[:CHUNK_SIZE])
            del self._buf[:CHUNK_SIZE]
            self._add_leaf(chunk, out)
        return out

    def finish(self) -> list[Block]:
        out: list[Block] = []
        if self._buf or self._chunks == 0:  # an empty file is one empty leaf
            self._add_leaf(bytes(self._buf), out)
            self._buf.clear()
        level = 0
        while True:
            entries = self._levels[level]
            top = level == len(self._levels) - 1
            if top and len(entries) == 1:
                self.root = entries[0].cid
                return out
            if entries:
                self._close(level, out)
            level += 1

    def _add_leaf(self, chunk: Buffer, out: list[Block]) -> None:
        self._chunks += 1
        n = len(chunk)
        if self.cid_version == 1:
            block = Block(make_cid(chunk, RAW, 1), (chunk,), n)
        elif n == 0:  # UnixFS leaves out an empty Data field
            raw = encode_pbnode(PBNode(data=encode_unixfs(UnixFSData(UNIXFS_FILE, b"", 0))))
            block = Block(make_cid(raw, DAG_PB, 0), (raw,), len(raw))
        else:
            # encode_pbnode(PBNode(data=encode_unixfs(UnixFSData(UNIXFS_FILE, chunk, n)))), framed
            # around the chunk instead of copying it: the chunk is hashed and written in place.
            size = varint(n)
            suffix = b"\x18" + size
            inner = 3 + len(size) + n + len(suffix)
            prefix = b"\x0a" + varint(inner) + b"\x08\x02\x12" + size
            h = hashlib.sha256(prefix)
            h.update(chunk)
            h.update(suffix)
            block = Block(Cid(0, DAG_PB, h.digest()), (prefix, chunk, suffix), len(prefix) + n + len(suffix))
        out.append(block)
        self._push(0, _Entry(block.cid, block.size, n), out)

    def _push(self, level: int, entry: _Entry, out: list[Block]) -> None:
        self._levels[level].append(entry)
        if len(self._levels[level]) == MAX_LINKS:
            self._close(level, out)

    def _close(self, level: int, out: list[Block]) -> None:
        """Turn the pending entries of ``level`` into one parent node one level up."""
        entries, self._levels[level] = self._levels[level], []
        filesize = sum(e.filesize for e in entries)
        data = encode_unixfs(UnixFSData(UNIXFS_FILE, b"", filesize, [e.filesize for e in entries]))
        raw = encode_pbnode(PBNode([Link(bytes(e.cid), e.tsize) for e in entries], data))
        block = Block(make_cid(raw, DAG_PB, self.cid_version), (raw,), len(raw))
        out.append(block)
        if level + 1 == len(self._levels):
            self._levels.append([])
        self._push(level + 1, _Entry(block.cid, len(raw) + sum(e.tsize for e in entries), filesize), out)


def import_file(src: BinaryIO, *, cid_version: int = 0,
                progress: Callable[[int], None] | None = None) -> Iterator[Block]:
    """Read ``src`` to its end and yield the UnixFS blocks of its DAG; the last one is the root."""
    builder = DagBuilder(cid_version)
    done = 0
    # a source whose every read returns a fresh buffer it never touches again spares a copy
    owned = bool(getattr(src, "hands_over_buffers", False))
    while True:
        data = src.read(READ_SIZE)
        if not data:
            break
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InputError(f"source must be a binary stream, read returned {type(data).__name__}",
                             "open the file with mode 'rb'")
        yield from builder.write(data, owned=owned)
        done += len(data)
        if progress:
            progress(done)
    yield from builder.finish()


def compute_cid(src: BinaryIO, *, cid_version: int = 0) -> str:
    """The CID a real IPFS node gives ``src`` (default settings), without storing anything."""
    root = None
    for block in import_file(src, cid_version=cid_version):
        root = block.cid
    return str(root)
