"""matplotlib, an optional dependency (the ``plot`` extra), behind one import.

Plots are for researchers; operators need not install matplotlib (about 150 MB
with its dependencies). Whatever writes a PNG calls :func:`require` before it
measures anything, so a missing matplotlib is reported at once, with the fix.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from fogfed.errors import FogfedError

HINT = "install the plot extra: pip install 'fogfed[plot]' (or pip install matplotlib)"


def available() -> bool:
    """True when matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def require() -> None:
    """Raise a FogfedError naming the ``plot`` extra unless matplotlib is installed."""
    if not available():
        raise FogfedError("matplotlib is not installed, and writing a plot needs it", HINT)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    require()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
