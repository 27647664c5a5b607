"""Worker threads kept between operations ("lanes"), each running its jobs in order.

Starting a thread waits until the scheduler first runs it: tens of
microseconds on an idle machine, but 1 to 3 ms per thread with both cores
busy, measured as part of the fixed cost of one embedded-store add (a pack's
directory fsync and the upload's plaintext hash each had a thread of their
own). So a lane is lent, used by one operation, and given back; at most
``MAX_IDLE`` wait. A lane never crosses a ``fork``: the child's threads do not
exist, so a child starts its own.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

MAX_IDLE = 4

_idle: list[ThreadPoolExecutor] = []
_pid = os.getpid()
_guard = threading.Lock()


def _forget_after_fork() -> None:
    global _pid
    _idle.clear()  # their threads stayed in the parent
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forget_after_fork)


class Lane:
    """One thread, lent: ``submit`` jobs (run in order), then ``release`` it (again: nothing)."""

    def __init__(self) -> None:
        with _guard:
            pool = _idle.pop() if _idle and _pid == os.getpid() else None
        self._pool: ThreadPoolExecutor | None = pool or ThreadPoolExecutor(1, thread_name_prefix="fogfed-lane")
        self._futures: list[Future] = []

    def submit(self, job: Callable[..., object], *args: object) -> Future:
        if self._pool is None:
            raise RuntimeError("this lane was released")
        future = self._pool.submit(job, *args)
        self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(future)
        return future

    def release(self, *, cancel: bool = False) -> None:
        """Wait for the jobs given (cancelling those not started yet with ``cancel``), then give the thread back."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for future in self._futures:
            if cancel:
                future.cancel()
        for future in self._futures:
            if not future.cancelled():
                future.exception()  # waits; the submitter already saw (or ignores) any failure
        self._futures = []
        with _guard:
            if len(_idle) < MAX_IDLE and _pid == os.getpid():
                _idle.append(pool)
                return
        pool.shutdown(wait=False)
