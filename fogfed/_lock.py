"""An exclusive lock between processes (``flock``) whose waits are bounded and whose holder is named.

The holder writes its pid and command line into the lock file (advisory:
the ``flock`` is the lock, and it dies with the process, so a killed holder
never leaves a stale lock). A waiter tells the user whom it waits for after
a few seconds, and gives up with :class:`LockBusy` after ``timeout`` seconds.
``$FOGFED_LOCK_TIMEOUT`` (seconds, default 30) sets the default timeout.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from pathlib import Path

from fogfed.errors import FogfedError

LOCK_TIMEOUT_ENV = "FOGFED_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 30.0
NOTICE_AFTER = 3.0  # seconds of waiting before saying who holds the lock


class LockBusy(FogfedError):
    """Another process has held a lock for longer than the wait allowed."""


def lock_timeout(env: str = LOCK_TIMEOUT_ENV) -> float:
    """The timeout from ``$env`` (a positive number of seconds), else the default."""
    raw = os.environ.get(env)
    if not raw:
        return DEFAULT_LOCK_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise FogfedError(f"{env}={raw!r} is not a positive number of seconds")
    return value


def _me() -> bytes:
    command = " ".join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])
    return json.dumps({"pid": os.getpid(), "command": command[:300]}).encode()


class ProcessLock:
    """An exclusive ``flock`` on ``path`` (not re-entrant: callers count their own depth)."""

    def __init__(self, path: Path, what: str, timeout: float | None = None, env: str = LOCK_TIMEOUT_ENV) -> None:
        self.path, self.what, self.env = Path(path), what, env
        self.timeout = lock_timeout(env) if timeout is None else float(timeout)
        self._file = open(self.path, "a+b")  # noqa: SIM115 (held for the object's life)

    def fileno(self) -> int:
        return self._file.fileno()

    def acquire(self) -> None:
        fd = self._file.fileno()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._wait(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _me()[:-1] + b', "since": %.3f}' % time.time(), 0)

    def release(self) -> None:
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)

    def close(self) -> None:
        self._file.close()

    def __del__(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()

    def _wait(self, fd: int) -> None:
        start = time.monotonic()
        pause, told = 0.001, False
        while True:
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            waited = time.monotonic() - start
            if waited >= self.timeout:
                raise LockBusy(f"{self.what} is busy: {self.holder()}; gave up after {waited:.0f} s",
                               f"wait for it to finish, or stop it if it is stuck; {self.env}=<seconds> waits longer")
            if not told and waited >= NOTICE_AFTER:
                told = True
                print(f"fogfed: waiting for {self.what}: {self.holder()}", file=sys.stderr, flush=True)

    def holder(self) -> str:
        """Who holds the lock, from what it wrote into the lock file."""
        try:
            info = json.loads(os.pread(self._file.fileno(), 4096, 0))
            pid, command, since = int(info["pid"]), str(info["command"]), float(info["since"])
        except (OSError, ValueError, KeyError, TypeError):
            return "another process holds its lock"
        return f"process {pid} ({command}) has held its lock for {max(0.0, time.time() - since):.0f} s"
