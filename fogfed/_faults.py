"""Named kill points for fault tests: ``FOGFED_KILL_AT=<step>`` makes the process SIGKILL itself there.

Multi-step operations call :func:`step` between their steps; the fault tests
set the variable in a child process and then check that running the
operation again (or ``tas sync``) finishes it. Unset (always, in normal use)
the call costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "FOGFED_KILL_AT"


def step(name: str) -> None:
    """A point between two steps of a multi-step operation; the fault hook kills the process here."""
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
