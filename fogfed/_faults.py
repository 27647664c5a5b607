"""Named fault points for fault tests: ``FOGFED_KILL_AT=<step>`` makes the process SIGKILL itself there.

Multi-step operations call :func:`step` between their steps; the fault tests
set the variable in a child process and then check that running the
operation again (or ``tas sync``) finishes it. In-process tests may instead
run an action at a step (:func:`at_step`: e.g. stop the chain or the IPFS
daemon there). Unset (always, in normal use) the call costs two dictionary
look-ups.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator

KILL_AT_ENV = "FOGFED_KILL_AT"
_ACTIONS: dict[str, Callable[[], None]] = {}


def step(name: str) -> None:
    """A point between two steps of a multi-step operation; the fault hook kills the process here."""
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    action = _ACTIONS.get(name)
    if action is not None:
        action()


@contextlib.contextmanager
def at_step(name: str, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` whenever this process reaches step ``name`` (tests only), until the block ends."""
    _ACTIONS[name] = action
    try:
        yield
    finally:
        _ACTIONS.pop(name, None)
