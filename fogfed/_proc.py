"""Start and stop local helper servers (devnets, an IPFS node) by PID.

Used by the test fixtures and the benchmarks; the product itself never
needs a server. Processes run in their own session so that stopping one
also stops anything it forked.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fogfed.errors import FogfedError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Server:
    """A child process with a readiness check; use as a context manager."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        ready: Callable[[], bool],
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        log: Path | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.name, self.argv, self.ready = name, list(argv), ready
        self.env, self.cwd, self.timeout = env, cwd, timeout
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Server":
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(self.env or {})}, cwd=self.cwd, start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise FogfedError(f"cannot start {self.name}: {self.argv[0]} not found",
                              "run scripts/test.sh once to install the npm tools") from exc
        finally:
            if self.log:
                out.close()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise FogfedError(f"{self.name} exited with code {self.proc.returncode} while starting",
                                  f"see {self.log}" if self.log else None)
            if self.ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise FogfedError(f"{self.name} did not become ready within {self.timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
