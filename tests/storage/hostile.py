"""A hostile IPFS node: a proxy in front of a real node that tampers with what it relays."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests


class HostileProxy:
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

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def _drain(handler: BaseHTTPRequestHandler) -> None:
        """Read a chunked (or sized) request body to its end."""
        if handler.headers.get("Content-Length"):
            handler.rfile.read(int(handler.headers["Content-Length"]))
            return
        while True:
            size = int(handler.rfile.readline().split(b";")[0], 16)
            handler.rfile.read(size + 2)
            if size == 0:
                return

    def __enter__(self) -> "HostileProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
