"""A content store on a real IPFS node, over the Kubo HTTP RPC API.

All traffic goes through ipfshttpclient 0.7.0 (unmaintained, so it stays
inside this one class): its uploads and downloads stream in fixed-size chunks,
which keeps memory bounded. ``connect()`` refuses modern daemons, so the
client is constructed directly.

The node is not trusted: the CID it reports for an upload must equal the one
computed locally from the same bytes, and ``cat`` fetches block by block
(``block/get``) so every block is checked against its CID before any of its
bytes are handed out, exactly as for the embedded store.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import ipaddress
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import ipfshttpclient
import ipfshttpclient.exceptions as ipfs_exc
import requests
import urllib3

from fogfed.errors import InputError
from fogfed.storage.base import ContentStore, OnCid, Progress
from fogfed.storage.cids import Cid, check_block, parse_cid
from fogfed.storage.errors import ContentCorrupted, ContentNotFound, StorageError, StorageUnavailable
from fogfed.storage.importer import CHUNK_SIZE, DagBuilder
from fogfed.storage.reader import MAX_BLOCK, declared_size, read_file

#: block/get calls kept in flight while a file is read (overlaps Bitswap round trips)
PREFETCH = 8
_ADD_OPTIONS = dict(pin=True, cid_version=0, chunker=f"size-{CHUNK_SIZE}", raw_leaves=False)
_MULTIADDR = re.compile(r"^/(ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d{1,5})(?:/(http|https))?/?$")
_UNREACHABLE = (ipfs_exc.ConnectionError, ipfs_exc.TimeoutError, ipfs_exc.ProtocolError,
                requests.exceptions.RequestException, urllib3.exceptions.HTTPError, ConnectionError)


def parse_api_address(api: str) -> tuple[str, str]:
    """(URL, multiaddr) for ``http(s)://host:port`` or ``/ip4|ip6|dns/<host>/tcp/<port>[/http]``."""
    if not isinstance(api, str):
        raise InputError(f"IPFS API address must be a string, got {type(api).__name__}")
    hint = "use http://127.0.0.1:5001 or /ip4/127.0.0.1/tcp/5001"
    m = _MULTIADDR.match(api)
    if m:
        proto, host, port, scheme = m.group(1), m.group(2), int(m.group(3)), m.group(4) or "http"
    else:
        try:
            parts = urlsplit(api)
            host, port, scheme = parts.hostname, parts.port, parts.scheme
        except ValueError:
            raise InputError(f"malformed IPFS API address {api!r}", hint) from None
        if scheme not in ("http", "https") or not host or port is None or parts.path not in ("", "/") \
                or parts.query or parts.fragment or parts.username:
            raise InputError(f"malformed IPFS API address {api!r}", hint)
        try:
            proto = "ip6" if ipaddress.ip_address(host).version == 6 else "ip4"
        except ValueError:
            proto = "dns"
    if not 0 < port < 65536:
        raise InputError(f"IPFS API address {api!r} has port {port} out of range", hint)
    shown = f"[{host}]" if proto == "ip6" else host
    return f"{scheme}://{shown}:{port}", f"/{proto}/{host}/tcp/{port}/{scheme}"


class _Tee:
    """A read-only stream over ``src`` that also feeds the local importer and reports progress.

    At the end of ``src`` (before the client sends the closing boundary, so before the node can
    pin) the importer is finished and ``on_cid`` hears the root CID.
    """

    def __init__(self, src: BinaryIO, builder: DagBuilder, progress: Progress | None,
                 on_cid: OnCid | None = None) -> None:
        self.src, self.builder, self.progress, self.on_cid = src, builder, progress, on_cid
        self.done = 0
        self.read_error: Exception | None = None
        self.note_error: Exception | None = None

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.src.read(n)
        except Exception as exc:  # surfaced after the upload aborts, as the real cause
            self.read_error = exc
            raise
        if not isinstance(data, (bytes, bytearray)):
            self.read_error = InputError(f"source must be a binary stream, read returned {type(data).__name__}",
                                         "open the file with mode 'rb'")
            raise self.read_error
        if not data:
            if self.builder.root is None:
                self.builder.finish()
                if self.on_cid is not None:
                    try:
                        self.on_cid(str(self.builder.root))
                    except Exception as exc:  # the add is aborted before the node saw the end
                        self.note_error = exc
                        raise
            return b""
        self.builder.write(data)  # blocks are discarded: only the root CID is wanted
        self.done += len(data)
        if self.progress and data:
            self.progress(self.done)
        return bytes(data)


class IpfsStore(ContentStore):
    """Files pinned on an IPFS node reached at ``api`` (URL or multiaddr).

    ``fetch_timeout`` bounds how long the node may search for one block
    before ``cat`` reports it as not found. Use as a context manager or call
    ``close`` to release the HTTP session.
    """

    def __init__(self, api: str, *, fetch_timeout: float = 30.0, timeout: float = 120.0) -> None:
        self.url, multiaddr = parse_api_address(api)
        self.fetch_timeout = fetch_timeout
        self._client = ipfshttpclient.Client(multiaddr, session=True, chunk_size=CHUNK_SIZE,
                                             timeout=(5.0, timeout))
        with self._rpc("asking for its version"):
            version = _dict(self._client.version(), "version", "Version")
        kind = "js-ipfs" if "ipfs-core" in version else "Kubo"
        self.version = f"{kind} {version['Version']}"

    def describe(self) -> str:
        return f"IPFS node at {self.url} ({self.version})"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()

    def __enter__(self) -> "IpfsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _rpc(self, what: str) -> Iterator[None]:
        """Turn whatever the client library or the network raises into a StorageError."""
        try:
            with warnings.catch_warnings():
                # ipfshttpclient passes urllib3 an argument urllib3 2.x only warns about
                warnings.filterwarnings("ignore", message="The 'strict' parameter", category=FutureWarning)
                yield
        except _UNREACHABLE as exc:
            raise StorageUnavailable(
                f"IPFS node at {self.url} is unreachable while {what}: {_reason(exc)}",
                "start the node (ipfs daemon) or pass the right --ipfs URL, then retry") from None
        except ipfs_exc.ErrorResponse as exc:
            raise StorageError(f"IPFS node at {self.url} refused {what}: {exc}") from None
        except (ipfs_exc.Error, AssertionError) as exc:  # the library asserts on replies it did not expect
            raise StorageError(f"IPFS node at {self.url} gave an unusable answer while {what}: {exc}",
                               "check that the URL points at an IPFS RPC API (port 5001 by default)") from None

    def add(self, src: BinaryIO, *, progress: Progress | None = None, on_cid: OnCid | None = None) -> str:
        builder = DagBuilder()
        tee = _Tee(src, builder, progress, on_cid)
        try:
            with self._rpc("adding a file"):
                reply = self._client.add(tee, **_ADD_OPTIONS)
        except Exception as exc:
            if tee.note_error is not None:  # the caller's own failure, as it raised it
                raise tee.note_error from None
            if isinstance(exc, StorageError) and tee.read_error is not None:
                raise _source_error(tee.read_error) from None
            raise
        if builder.root is None:  # the client stopped reading before the end (it never does)
            raise StorageError(f"IPFS node at {self.url} answered the add before the whole file was sent",
                               "retry the upload")
        expected = str(builder.root)
        got = _dict(reply, "add", "Hash")["Hash"]
        if got != expected:
            with contextlib.suppress(StorageError, InputError):
                self.remove(got)
            raise ContentCorrupted(
                f"IPFS node at {self.url} stored the upload as {got!r}, but its bytes give {expected}",
                "the node must import with default settings (CIDv0, 256 KiB chunks, balanced layout)")
        if not self.has(expected):
            raise StorageError(f"IPFS node at {self.url} reported {expected} added but does not list it as pinned",
                               "retry the upload")
        return expected

    def has(self, cid: str) -> bool:
        key = parse_cid(cid).key
        try:
            with self._rpc(f"checking the pin of {cid}"):
                reply = self._client.pin.ls(key, type="recursive")
        except StorageError as exc:
            if "not pinned" in exc.message:
                return False
            raise
        keys = _dict(reply, "pin/ls", "Keys")["Keys"]
        if not isinstance(keys, dict):
            raise StorageError(f"IPFS node at {self.url} answered pin/ls with Keys of type {type(keys).__name__}")
        return any(_same_block(k, key) for k in keys)

    def pin(self, cid: str, *, timeout: float | None = None) -> None:
        """Pin ``cid`` here, fetching its blocks from the swarm (Bitswap) first when this node lacks
        them; the node's own timeout (default ``fetch_timeout`` per call) bounds the search."""
        key = parse_cid(cid).key
        limit = self.fetch_timeout if timeout is None else timeout
        try:
            with self._rpc(f"pinning {cid}"):
                self._client.pin.add(key, opts={"timeout": f"{limit:g}s"}, timeout=(5.0, limit + 10))
        except StorageError as exc:
            if isinstance(exc, StorageUnavailable) or "timed out" not in exc.message:
                raise
            raise ContentNotFound(f"IPFS node at {self.url} could not find {cid} in its swarm within {limit:g} s",
                                  "connect it to a node that holds the file (ipfs swarm connect)") from None
        if not self.has(cid):
            raise StorageError(f"IPFS node at {self.url} acknowledged pinning {cid} but does not list it",
                               "retry the pin")

    def get_block(self, cid: Cid) -> bytes:
        """One raw block, unchecked (callers check it against ``cid``); ContentNotFound after
        ``fetch_timeout``."""
        return self._get_block(cid)

    def remove(self, cid: str) -> None:
        """Unpin ``cid``; the node frees its blocks at its next garbage collection (``ipfs repo gc``)."""
        key = parse_cid(cid).key
        try:
            with self._rpc(f"unpinning {cid}"):
                self._client.pin.rm(key)
        except StorageError as exc:
            if "not pinned" not in exc.message:
                raise

    def cat(self, cid: str, *, progress: Progress | None = None) -> Iterator[bytes]:
        root = parse_cid(cid)
        first = self._get_block(root)  # fail at the call (unreachable, not found, altered), not at the first read
        check_block(root, first)
        return self._read(root, first, progress)

    def _read(self, root: Cid, first: bytes, progress: Progress | None) -> Iterator[bytes]:
        # A node that lacks the blocks asks its swarm for each one (one Bitswap round trip per
        # block/get): PREFETCH calls in flight keep the round trips overlapping.
        return read_prefetched(root, first, self._get_block, PREFETCH, progress)

    def size(self, cid: str) -> int:
        root = parse_cid(cid)
        return declared_size(root, self._get_block(root))

    def _get_block(self, cid: Cid) -> bytes:
        what = f"fetching block {cid}"
        try:
            with self._rpc(what):
                # the node's own timeout keeps an unknown CID from hanging the call
                chunks = self._client.block.get(cid.key, stream=True,
                                                opts={"timeout": f"{self.fetch_timeout:g}s"},
                                                timeout=(5.0, self.fetch_timeout + 10))
                buf = bytearray()
                with contextlib.closing(chunks):
                    for chunk in chunks:
                        buf += chunk
                        if len(buf) > MAX_BLOCK:
                            raise ContentCorrupted(f"IPFS node at {self.url} sent more than {MAX_BLOCK} bytes "
                                                   f"for block {cid}", "do not trust this node")
                return bytes(buf)
        except StorageError as exc:
            if isinstance(exc, StorageUnavailable) or "timed out" not in exc.message:
                raise
            raise ContentNotFound(f"{cid} is not available from IPFS node at {self.url} "
                                  f"(not found within {self.fetch_timeout:g} s)",
                                  "check the CID, or add the file on this node first") from None


class Prefetcher:
    """Fetch the blocks a file walk will ask for next, ``window`` at a time, on worker threads.

    Memory stays bounded: at most ``window`` blocks (each at most MAX_BLOCK) are held
    before they are asked for. A failed prefetch is retried by ``get`` in the caller's
    thread, so errors surface where the block is read.
    """

    def __init__(self, fetch: Callable[[Cid], bytes], window: int) -> None:
        self.fetch, self.window = fetch, window
        self._queue: collections.deque[Cid] = collections.deque()
        self._futures: dict[Cid, concurrent.futures.Future] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=window) if window > 1 else None

    def upcoming(self, cids: list[Cid]) -> None:
        # children come before the rest of the parent's siblings in read order
        self._queue.extendleft(reversed(cids))
        self._fill()

    def _fill(self) -> None:
        if self._pool is None:
            return
        while self._queue and len(self._futures) < self.window:
            cid = self._queue.popleft()
            if cid not in self._futures:
                self._futures[cid] = self._pool.submit(self.fetch, cid)

    def get(self, cid: Cid) -> bytes:
        if cid in self._queue:
            self._queue.remove(cid)
        future = self._futures.pop(cid, None)
        self._fill()
        if future is not None:
            try:
                return future.result()
            except Exception:  # noqa: BLE001 - fetched again below, where the error is reported
                pass
        return self.fetch(cid)

    def close(self) -> None:
        self._queue.clear()
        for future in self._futures.values():
            future.cancel()
        self._futures.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _dict(reply: Any, what: str, key: str) -> dict:
    """The JSON object of an RPC reply, after checking it has ``key``."""
    raw = getattr(reply, "_raw", reply)
    if not isinstance(raw, dict) or key not in raw:
        raise StorageError(f"IPFS node answered {what} without {key!r}: {str(raw)[:200]}",
                           "check that the URL points at an IPFS RPC API")
    if key == "Hash" and not isinstance(raw[key], str):
        raise StorageError(f"IPFS node answered {what} with a non-string {key}")
    return raw


def _same_block(text: str, key: str) -> bool:
    try:
        return parse_cid(text).key == key
    except InputError:
        return False


def _reason(exc: BaseException) -> str:
    """The innermost cause of a network error, without urllib3's object reprs."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    return f"{type(exc).__name__}: {exc}"[:300]


def _source_error(exc: Exception) -> Exception:
    if isinstance(exc, InputError):
        return exc
    return InputError(f"cannot read the file being added: {exc}", "check the source file and retry")


def read_prefetched(root: Cid, first: bytes, fetch: Callable[[Cid], bytes], window: int,
                    progress: Progress | None) -> Iterator[bytes]:
    """The file ``root`` (its root block ``first`` already read), with up to ``window`` block reads
    by ``fetch`` in flight ahead of the one being consumed."""
    ahead = Prefetcher(fetch, window)
    try:
        def get_block(c: Cid) -> bytes:
            return first if c == root else ahead.get(c)
        yield from read_file(root, get_block, progress, ahead.upcoming)
    finally:
        ahead.close()
