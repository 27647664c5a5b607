"""A hostile peer endpoint for attack tests: answers every request with a body of its choosing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator


class HostilePeer:
    """Accepts connections on 127.0.0.1 and streams ``body()`` as a chunked 200 to each, counting
    connections and the bytes the fetcher actually accepted (sendall returned)."""

    def __init__(self, body: Callable[[], Iterator[bytes]]) -> None:
        self.body = body
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.sent = 0
        self.connections = 0
        self._closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                for piece in self.body():
                    if self._closed:
                        return
                    conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.sent += len(piece)
                conn.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the fetcher hung up: what a bounded fetcher does

    def close(self) -> None:
        self._closed = True
        self.sock.close()
