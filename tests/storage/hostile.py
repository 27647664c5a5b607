"""Hostile IPFS nodes: proxies in front of a real node that tamper with what they relay, or lose replies."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class _Proxy:
    """An HTTP server on 127.0.0.1 for ``handler``, serving on a thread while the ``with`` block runs."""

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _body(handler: BaseHTTPRequestHandler) -> Iterator[bytes] | bytes:
        """The request body, streamed on as it arrives (chunked), or read whole when sized."""
        if handler.headers.get("Content-Length"):
            return handler.rfile.read(int(handler.headers["Content-Length"]))
        if "chunked" not in handler.headers.get("Transfer-Encoding", ""):
            return b""

        def chunks() -> Iterator[bytes]:
            while True:
                size = int(handler.rfile.readline().split(b";")[0], 16)
                data = handler.rfile.read(size + 2)[:size]
                if size == 0:
                    return
                yield data
        return chunks()


class HostileProxy(_Proxy):
    """Forwards RPC calls to ``upstream``; flips a byte in every block and lies about added CIDs."""

    def __init__(self, upstream: str, fake_cid: str) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                if self.path.startswith("/api/v0/add"):
                    proxy._drain(self)
                    self._send(200, json.dumps({"Name": "f", "Hash": fake_cid, "Size": "1"}).encode())
                    return
                reply = requests.post(upstream + self.path, timeout=30)
                body = reply.content
                if self.path.startswith("/api/v0/block/get") and reply.ok and body:
                    body = bytes([body[0] ^ 1]) + body[1:]
                self._send(reply.status_code, body)

            def _send(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._serve(Handler)

    @classmethod
    def _drain(cls, handler: BaseHTTPRequestHandler) -> None:
        """Read a chunked (or sized) request body to its end."""
        body = cls._body(handler)
        if not isinstance(body, bytes):
            for _ in body:
                pass


class ReplyDroppingProxy(_Proxy):
    """Relays every RPC call to ``upstream`` (a real node), but for the first ``drop`` adds it waits for
    the node's answer (the file is then pinned there) and closes the connection instead of relaying it:
    an add whose reply is lost on the way back. ``added`` lists the CIDs the node answered those adds
    with; ``on_dropped`` (if set) runs just before a reply is dropped (e.g. to kill the uploader)."""

    def __init__(self, upstream: str, *, drop: int = 1) -> None:
        proxy = self
        self.added: list[str] = []
        self.on_dropped: Callable[[], None] | None = None
        self._left = drop
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                with proxy._lock:
                    dropping = self.path.startswith("/api/v0/add") and proxy._left > 0
                    proxy._left -= dropping
                headers = {k: v for k, v in self.headers.items() if k.lower() == "content-type"}
                reply = requests.post(upstream + self.path, data=proxy._body(self), headers=headers, timeout=120)
                if not dropping:
                    self.send_response(reply.status_code)
                    self.send_header("Content-Type", reply.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(reply.content)))
                    self.end_headers()
                    self.wfile.write(reply.content)
                    return
                assert reply.ok, reply.text
                proxy.added.append(json.loads(reply.text.strip().splitlines()[-1])["Hash"])
                if proxy.on_dropped is not None:
                    proxy.on_dropped()
                self.close_connection = True  # no status line, no body: the client sees the peer hang up

        self._serve(Handler)
