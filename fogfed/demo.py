"""The paper's whole scenario as one function: what ``fogfed demo`` runs.

Everything is real and in-process: an embedded (ephemeral) py-evm chain with
the compiled FogFed contract, the embedded content store, pairing-based
CP-ABE, and peer servers on 127.0.0.1 in threads. Each step checks what the
paper says should happen and records PASS or FAIL with its measurements.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fogfed.errors import FogfedError


class StepFailed(FogfedError):
    """A demo step saw something other than what the paper's scenario expects."""


def expect(condition: bool, what: str) -> None:
    """Fail the current step with ``what`` unless ``condition`` holds."""
    if not condition:
        raise StepFailed(what)


@dataclass
class Step:
    """One numbered step of the demo and its outcome."""

    number: int
    title: str
    algorithms: str
    checked: str = ""
    passed: bool = False
    seconds: float = 0.0
    error: str | None = None
    measurements: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoResult:
    """Every step, the gas table, and the verdict."""

    steps: list[Step]
    gas_rows: list[dict]
    seconds: float

    @property
    def failed(self) -> int:
        return sum(not s.passed for s in self.steps)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and self.failed == 0

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "seconds": round(self.seconds, 3),
                "steps": [asdict(s) for s in self.steps], "gas": self.gas_rows}


StepFn = Callable[["Scenario"], tuple[str, dict[str, Any]]]


def run_demo(workdir: Path | None = None, *, on_step: Callable[[Step], None] | None = None) -> DemoResult:
    """Run every step in order; a step that raises fails, and the steps after it are not run."""
    from fogfed.demo_steps import STEPS, Scenario

    start = time.perf_counter()
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="fogfed-demo-")) if own else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    steps: list[Step] = []
    scenario = Scenario(root)
    try:
        for number, (title, algorithms, fn) in enumerate(STEPS, 1):
            step = Step(number, title, algorithms)
            t0 = time.perf_counter()
            try:
                step.checked, step.measurements = fn(scenario)
                step.passed = True
            except FogfedError as exc:
                step.error = str(exc)
                step.checked = step.checked or exc.message
            except Exception as exc:  # the demo reports, it does not crash
                step.error = f"{type(exc).__name__}: {exc}"
            step.seconds = time.perf_counter() - t0
            steps.append(step)
            if on_step is not None:
                on_step(step)
            if not step.passed:
                break
    finally:
        scenario.close()
        if own:
            shutil.rmtree(root, ignore_errors=True)
    return DemoResult(steps, scenario.gas_rows, time.perf_counter() - start)
