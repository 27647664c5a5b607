"""Peer cache server and client (paper Alg. 9, retrieval from a peer's cache).

The server hands out cached ciphertext blobs only to requesters that signed a
fresh request addressed to this peer and that the injected ``is_member``
(the contract's hasAccess view) accepts for the file. A refusal is only a
refusal: nobody can be accused on chain from a peer's word (the contract
counts only false claims it observed itself). Checks run cheapest first: the
signature, then membership (answers cached for a few seconds), and only then
is the nonce recorded, with a quota per requester, so outsiders cannot fill
the nonce store. Membership is checked before the cache is consulted, so a
non-member learns nothing about what is cached.
"""

from __future__ import annotations

import hashlib
import heapq
import http.client
import json
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO

from fogfed.errors import FogfedError, InputError
from fogfed.keys.identity import NodeIdentity
from fogfed.node.cache import CHUNK, BlobCache, CacheError
from fogfed.node.peer_protocol import (
    MalformedRequest, PeerRequest, check_chain_id, check_contract_address, parse_request, sign_request,
)

DEFAULT_WINDOW = 60
MIN_RATE = 64 * 1024  # bytes/s a peer must sustain on average, or its fetch ends (PeerClient.deadline_for)
MAX_ERROR_BODY = 4096


class PeerError(FogfedError):
    """A peer fetch failed; ``code`` is the peer's error code when it sent one."""

    def __init__(self, message: str, hint: str | None = None, *, code: str = "error") -> None:
        super().__init__(message, hint)
        self.code = code


class PeerRefused(PeerError):
    """The peer refused the request (not a member, replay, stale, bad signature, ...)."""


class PeerUnreachable(PeerError):
    """No connection to the peer."""


class BlobNotCached(PeerError):
    """The peer does not hold (an intact copy of) the file."""


class ReplayGuard:
    """Nonces seen within the freshness window, bounded in number and per requester.

    When full of unexpired nonces it refuses new ones rather than forget old
    ones: forgetting would let a captured request be replayed. One requester
    may hold at most ``per_requester`` of them, so a single member cannot fill
    the store for the others.
    """

    def __init__(self, max_entries: int = 100_000, per_requester: int | None = None) -> None:
        self.max_entries = max_entries
        self.per_requester = per_requester or max(1, max_entries // 16)
        self._expiry: dict[bytes, float] = {}
        self._owner: dict[bytes, str] = {}
        self._held: Counter[str] = Counter()
        self._heap: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()

    def check_and_record(self, nonce: bytes, expires_at: float, now: float, requester: str = "") -> str:
        """'fresh' (and recorded), 'replay', 'full' or 'quota' (this requester holds too many)."""
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                _, old = heapq.heappop(self._heap)
                del self._expiry[old]
                owner = self._owner.pop(old)
                self._held[owner] -= 1
                if not self._held[owner]:
                    del self._held[owner]
            if nonce in self._expiry:
                return "replay"
            if len(self._expiry) >= self.max_entries:
                return "full"
            if self._held[requester] >= self.per_requester:
                return "quota"
            self._expiry[nonce] = expires_at
            self._owner[nonce] = requester
            self._held[requester] += 1
            heapq.heappush(self._heap, (expires_at, nonce))
            return "fresh"


class MembershipCache:
    """Answers of the membership check for ``ttl`` seconds, at most ``max_entries`` of them.

    Keeps a flood of requests from outsiders (valid signatures cost nothing) from
    turning into as many chain calls. A removal takes effect here within ``ttl``.
    """

    def __init__(self, check: Callable[[str, bytes], bool], clock: Callable[[], float], *,
                 ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.check, self.clock, self.ttl, self.max_entries = check, clock, ttl, max_entries
        self._answers: dict[tuple[str, bytes], tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def __call__(self, requester: str, file_id: bytes) -> bool:
        key, now = (requester, file_id), self.clock()
        with self._lock:
            hit = self._answers.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
        answer = self.check(requester, file_id) is True  # exceptions propagate: never cached
        with self._lock:
            if len(self._answers) >= self.max_entries:
                self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
                if len(self._answers) >= self.max_entries:
                    self._answers.clear()
            self._answers[key] = (now + self.ttl, answer)
        return answer


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class PeerServer:
    """HTTP server for cached blobs, running in a background thread (127.0.0.1 by default)."""

    def __init__(self, identity: NodeIdentity, cache: BlobCache,
                 is_member: Callable[[str, bytes], bool], *,
                 chain_id: int, contract_address: str, host: str = "127.0.0.1", port: int = 0,
                 window: int = DEFAULT_WINDOW, max_nonces: int = 100_000, nonces_per_requester: int | None = None,
                 membership_ttl: float = 5.0,
                 clock: Callable[[], float] = time.time, request_timeout: float = 10.0) -> None:
        if type(window) is not int or window <= 0:
            raise InputError(f"freshness window must be a positive number of seconds, got {window!r}")
        check_chain_id(chain_id)
        check_contract_address(contract_address)
        self.identity, self.cache = identity, cache
        self.is_member = MembershipCache(is_member, clock, ttl=membership_ttl)
        self.chain_id, self.contract_address = chain_id, contract_address
        self.window, self.clock = window, clock
        self.replay = ReplayGuard(max_nonces, nonces_per_requester)
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._host, self._port, self._timeout = host, port, request_timeout
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL clients use, e.g. http://127.0.0.1:8123."""
        if self._httpd is None:
            raise FogfedError("peer server is not running", "call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "PeerServer":
        """Bind and serve in a daemon thread."""
        handler = type("Handler", (_Handler,), {"peer": self, "timeout": self._timeout})
        try:
            self._httpd = _HTTPServer((self._host, self._port), handler)
        except OSError as exc:
            raise FogfedError(f"peer server cannot listen on {self._host}:{self._port}: {exc.strerror}",
                              "choose another --port or stop what uses it") from None
        self._httpd.peer = self
        # A short poll interval only makes stop() prompt; requests never wait on it.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="fogfed-peer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = self._thread = None

    def __enter__(self) -> "PeerServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, outcome: str) -> None:
        with self._stats_lock:
            self.stats[outcome] += 1

    def authorize(self, method: str, path: str, headers: dict[str, list[str]]) -> PeerRequest:
        """Run every check on an incoming request; raises _Refusal with the HTTP answer."""
        try:
            request = parse_request(method, path, headers, chain_id=self.chain_id,
                                    contract_address=self.contract_address)
        except MalformedRequest as exc:
            raise _Refusal(400, "malformed", exc.message) from None
        if request.signer() != request.requester:
            raise _Refusal(401, "bad_signature",
                           f"signature does not recover to the claimed requester {request.requester}")
        if request.audience != self.identity.address:
            raise _Refusal(403, "wrong_audience",
                           f"request is addressed to {request.audience}, this peer is {self.identity.address}")
        now = self.clock()
        if abs(now - request.timestamp) > self.window:
            raise _Refusal(403, "stale", f"request timestamp {request.timestamp} is more than "
                           f"{self.window} s from this peer's clock ({int(now)})")
        try:
            member = self.is_member(request.requester, request.file_id)
        except Exception as exc:  # fail closed whatever the chain layer raises
            raise _Refusal(503, "membership_unavailable",
                           f"cannot check membership right now ({type(exc).__name__})") from None
        if member is not True:
            raise _Refusal(403, "not_member", f"{request.requester} may not read file "
                           f"0x{request.file_id.hex()} (not an active member of its federation or of one "
                           "it is shared with)")
        verdict = self.replay.check_and_record(request.nonce, request.timestamp + self.window + 1, now,
                                               request.requester)
        if verdict == "replay":
            raise _Refusal(403, "replay", "this nonce was already used: replayed request refused")
        if verdict == "full":
            raise _Refusal(503, "busy", "too many requests in the freshness window; retry shortly")
        if verdict == "quota":
            raise _Refusal(429, "busy", "this requester has too many requests in the freshness window; "
                           "retry shortly")
        return request


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    peer: PeerServer

    def handle_error(self, request, client_address) -> None:
        # A client hanging up mid-stream is routine; never print tracebacks.
        self.peer.count("connection_error")


class _Handler(BaseHTTPRequestHandler):
    peer: PeerServer
    protocol_version = "HTTP/1.1"
    # Answer even an unparsable request line with a proper status line and JSON.
    default_request_version = "HTTP/1.1"
    server_version = "fogfed-peer/1"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        pass  # the library never prints; outcomes are counted in PeerServer.stats

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.peer.count(code)
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _dispatch(self) -> None:
        headers = {name: self.headers.get_all(name) or [] for name in set(self.headers.keys())}
        try:
            request = self.peer.authorize(self.command, self.path, headers)
        except _Refusal as r:
            return self._refuse(r.status, r.code, r.message)
        try:
            blob = self.peer.cache.open(request.file_id)
        except CacheError:
            return self._refuse(404, "not_cached", f"this peer holds no intact copy of file "
                                f"0x{request.file_id.hex()}")
        with blob:
            self.peer.count("served")
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            while chunk := blob.read(CHUNK):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    do_GET = _dispatch

    def __getattr__(self, name: str):
        # Any other method gets the same JSON refusal instead of http.server's HTML page.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own parse failures (bad request line, too many headers...)
        self._refuse(code, "malformed", (message or "bad HTTP request")[:200])


@dataclass(frozen=True)
class FetchResult:
    """What a fetch received: size and SHA-256 of the body written to dst."""

    size: int
    sha256: bytes


class PeerClient:
    """Fetches cached blobs from peers with signed, fresh requests."""

    def __init__(self, identity: NodeIdentity, chain_id: int, contract_address: str, *,
                 timeout: float = 30.0, min_rate: int = MIN_RATE) -> None:
        self.identity, self.chain_id, self.contract_address = identity, chain_id, contract_address
        self.timeout, self.min_rate = timeout, min_rate

    def deadline_for(self, size: int) -> float:
        """Seconds one source may take for ``size`` bytes: the socket timeout plus the size at ``min_rate``."""
        return self.timeout + size / self.min_rate

    def fetch(self, peer_url: str, peer_address: str, file_id: bytes, dst: BinaryIO, *,
              progress: Callable[[int], None] | None = None, max_bytes: int | None = None,
              deadline: float | None = None) -> FetchResult:
        """Stream the peer's cached copy of ``file_id`` into ``dst`` (Alg. 9, peer-cache branch).

        The peer is untrusted: check the returned digest against the chain's
        record before use. ``dst`` may hold partial data if this raises. With
        ``max_bytes`` no more than that is written; ``deadline`` (seconds, default
        ``deadline_for(max_bytes)`` when a bound is given) ends a trickle.
        """
        if deadline is None and max_bytes is not None:
            deadline = self.deadline_for(max_bytes)
        host, port = _parse_peer_url(peer_url)
        request = sign_request(self.identity.account, chain_id=self.chain_id,
                               contract_address=self.contract_address, audience=peer_address,
                               file_id=file_id)
        return send_request(host, port, request, dst, timeout=self.timeout, progress=progress,
                            max_bytes=max_bytes, deadline=deadline, where=peer_url)


def _parse_peer_url(peer_url: str) -> tuple[str, int]:
    try:
        parts = urllib.parse.urlsplit(peer_url)
        port = parts.port
    except (ValueError, TypeError, AttributeError):
        parts, port = None, None
    if parts is None or parts.scheme != "http" or not parts.hostname or port is None \
            or parts.path not in ("", "/") or parts.query or parts.username:
        raise InputError(f"peer URL {peer_url!r} is not of the form http://HOST:PORT")
    return parts.hostname, port


_REFUSALS = {"not_member", "replay", "stale", "bad_signature", "wrong_audience", "malformed"}


def send_request(host: str, port: int, request: PeerRequest, dst: BinaryIO, *, timeout: float,
                 progress: Callable[[int], None] | None = None, max_bytes: int | None = None,
                 deadline: float | None = None, where: str = "") -> FetchResult:
    """Send an already signed request and stream a 200 body into ``dst``; PeerError otherwise.

    ``max_bytes`` bounds what is written (the excess is never written); ``deadline`` bounds
    the whole exchange in seconds, however slowly the peer trickles bytes."""
    where = where or f"http://{host}:{port}"
    end = None if deadline is None else time.monotonic() + deadline
    conn = http.client.HTTPConnection(host, port, timeout=timeout if end is None else min(timeout, deadline))
    try:
        conn.connect()
        sock = conn.sock  # kept: http.client drops conn.sock once a closing response is read
        conn.request("GET", request.path, headers=request.headers())
        resp = conn.getresponse()
        if resp.status != 200:
            raise _error_from(resp, where)
        h, size = hashlib.sha256(), 0
        while True:
            if end is not None:
                left = end - time.monotonic()
                if left <= 0:
                    raise PeerError(f"peer {where} took longer than {deadline:.0f} s for file "
                                    f"0x{request.file_id.hex()}", "the peer is too slow; use another source",
                                    code="too_slow")
                sock.settimeout(min(timeout, left))
            chunk = resp.read1(CHUNK) if max_bytes is None else resp.read1(min(CHUNK, max_bytes - size + 1))
            if not chunk:
                break
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise PeerError(f"peer {where} sent more than {max_bytes} bytes for file "
                                f"0x{request.file_id.hex()}", "the peer is misbehaving; use another source",
                                code="too_large")
            h.update(chunk)
            _write(dst, chunk, where)
            if progress:
                progress(size)
        return FetchResult(size, h.digest())
    except OSError as exc:  # refused, reset, timed out, no route
        if isinstance(exc, TimeoutError) and end is not None and time.monotonic() >= end - 0.05:
            raise PeerError(f"peer {where} took longer than {deadline:.0f} s for file "
                            f"0x{request.file_id.hex()}", "the peer is too slow; use another source",
                            code="too_slow") from None
        raise PeerUnreachable(f"peer {where} is unreachable: {exc.strerror or exc}",
                              "check the peer's URL and that it is running, or fetch from storage",
                              code="unreachable") from None
    except http.client.HTTPException as exc:
        raise PeerError(f"peer {where} sent a broken HTTP response ({type(exc).__name__})",
                        "use another peer or fetch from storage", code="protocol") from None
    finally:
        conn.close()


def _write(dst: BinaryIO, chunk: bytes, where: str) -> None:
    # Kept apart so a full disk is not mistaken for an unreachable peer.
    try:
        dst.write(chunk)
    except OSError as exc:
        raise FogfedError(f"cannot write the file fetched from {where}: {exc.strerror or exc}") from exc


def _error_from(resp: http.client.HTTPResponse, where: str) -> PeerError:
    try:
        error = json.loads(resp.read(MAX_ERROR_BODY))["error"]
        code, message = str(error["code"])[:40], str(error["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return PeerError(f"peer {where} answered HTTP {resp.status} without a readable error",
                         code="protocol")
    text = f"peer {where} refused: {message} [{code}]"
    if code == "not_cached":
        return BlobNotCached(text, "fetch the file from storage instead", code=code)
    if code in _REFUSALS:
        return PeerRefused(text, "check your membership, clock and the peer's address", code=code)
    return PeerError(text, code=code)
