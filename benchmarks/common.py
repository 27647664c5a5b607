"""Helpers shared by every benchmark script in ``benchmarks/``.

A benchmark is a command (``python -m benchmarks.<name>``) that measures, prints
a table, checks the SPEC targets (reporting PASS/FAIL, never failing the exit
code for speed) and writes JSON (and optionally a PNG plot). Typical use::

    from benchmarks.common import Report, measure, parse_ns

    report = Report("abe", args)                        # args from base_parser()
    t = measure(lambda: work(), repeat=args.repeat)     # Timing: median/p10/p90 in seconds
    report.row("encrypt", n=10, ms=t.ms, p90_ms=t.p90 * 1e3)
    report.target("10-leaf encrypt", t.ms, "<=", 8.0, "ms")
    report.finish()                                     # prints tables + targets, writes JSON/PNG

Timings are wall-clock medians after warm-up with the garbage collector off
(as ``timeit`` does), so one stray collection does not skew a sample.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Timing:
    """Wall-clock samples of one operation, in seconds."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def ms(self) -> float:
        """Median in milliseconds."""
        return self.median * 1e3

    @property
    def p10(self) -> float:
        return percentile(self.samples, 10)

    @property
    def p90(self) -> float:
        return percentile(self.samples, 90)

    @property
    def best(self) -> float:
        return min(self.samples)

    def to_dict(self) -> dict[str, float | int]:
        return {
            "median_s": self.median,
            "p10_s": self.p10,
            "p90_s": self.p90,
            "min_s": self.best,
            "samples": len(self.samples),
        }


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (0..100) of ``values``."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * pct / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def measure(
    fn: Callable[[], object],
    *,
    repeat: int = 20,
    warmup: int = 2,
    setup: Callable[[], object] | None = None,
) -> Timing:
    """Time ``fn()`` ``repeat`` times after ``warmup`` untimed calls.

    ``setup`` (untimed) runs before every call, e.g. to rewind a buffer.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    samples = []
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            if setup is not None:
                setup()
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    finally:
        if gc_was_on:
            gc.enable()
    return Timing(tuple(samples))


def measure_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    repeat: int = 5,
    warmup: int = 1,
    alternate: bool = False,
    between: Callable[[], object] | None = None,
) -> dict[str, Timing]:
    """Time several variants round-robin, so a burst of load on a shared
    machine hits all of them alike (use it for "X versus its baseline").

    ``alternate`` runs every other round in reverse order, so what one
    variant leaves behind (dirty pages being written back, a warm cache)
    hits each of its neighbours as often before as after. ``between`` runs
    untimed after each round (e.g. to remove what the round stored).
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for round_ in range(repeat):
            order = list(fns.items())
            if alternate and round_ % 2:
                order.reverse()
            for name, fn in order:
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
            if between is not None:
                between()
    finally:
        if gc_was_on:
            gc.enable()
    return {name: Timing(tuple(s)) for name, s in samples.items()}


def speed_ratio(candidate: Timing, baseline: Timing) -> float:
    """How fast ``candidate`` is relative to ``baseline`` (1.0 = as fast; 0.8 = 80 %).

    Both must come from one ``measure_interleaved`` call: the ratio is the
    median over rounds of baseline time / candidate time, each pair timed
    back to back, so load that comes and goes between rounds cancels out.
    """
    if len(candidate.samples) != len(baseline.samples):
        raise ValueError("speed_ratio needs samples from the same interleaved rounds")
    return statistics.median(b / c for b, c in zip(baseline.samples, candidate.samples))


def throughput_mb_s(nbytes: int, seconds: float) -> float:
    """Decimal megabytes (10^6 bytes) per second."""
    return nbytes / seconds / 1e6


def peak_traced_memory(fn: Callable[[], object]) -> tuple[object, int]:
    """Run ``fn`` and return (its result, peak bytes Python allocated meanwhile).

    Counts allocations made through Python's allocator (buffers, bytes
    objects), which is what grows when code holds a whole file in memory.
    """
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def parse_ints(text: str) -> list[int]:
    """``"1,2,5"``, ``"1-50"``, ``"1-50:5"`` (step) or mixes like ``"1,10-30:10"``."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                span, _, step = part.partition(":")
                lo, hi = (int(x) for x in span.split("-", 1))
                out.extend(range(lo, hi + 1, int(step) if step else 1))
            else:
                out.append(int(part))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a list of integers or ranges: {text!r} (e.g. 1,2,5 or 1-50)") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"need positive integers, got {text!r}")
    return sorted(set(out))


def _plot_path(text: str) -> Path:
    """--plot's type: refuses at once (exit 2) when matplotlib is missing, not after the run."""
    from fogfed import _plot

    if not _plot.available():
        raise argparse.ArgumentTypeError(f"matplotlib is not installed; {_plot.HINT}")
    return Path(text)


def base_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--repeat", type=int, default=None, help="timed samples per figure (default depends on --quick)")
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON to this path")
    p.add_argument("--plot", type=_plot_path, default=None,
                   help="write a PNG plot to this path (needs matplotlib: the plot extra)")
    p.add_argument("--quick", action="store_true", help="few samples and small sizes: a smoke run, not a measurement")
    p.add_argument("--no-fail", action="store_true",
                   help="exit 0 even when a target fails (exploration); the FAIL rows are still printed")
    return p


#: Reports finished in this process (exit_code() looks at their targets).
FINISHED: list["Report"] = []


def exit_code(result: Any = None) -> int:
    """The process exit code of a benchmark: 1 when a finished report has a failed target (unless
    --no-fail) or ``result`` is a non-zero int (the benchmark's own failure), else 0."""
    if isinstance(result, int) and not isinstance(result, bool) and result != 0:
        return result
    failed = [t.name for r in FINISHED if not getattr(r.args, "no_fail", False) for t in r.targets if not t.passed]
    if failed:
        print(f"FAIL: {len(failed)} target(s) missed: {'; '.join(failed)} (--no-fail to exit 0 anyway)",
              file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr (rich, when stderr is a terminal), else a line per step.

    Yields ``step(done=None, total=None, what=None)``: without ``done`` it advances by one.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        state = {"done": 0}

        def line(done: int | None = None, total_: int | None = None, what: str | None = None) -> None:
            state["done"] = state["done"] + 1 if done is None else done
            print(f"[{label}] {what or ''} {state['done']}/{total_ or total or '?'}".rstrip(), file=sys.stderr)
        yield line
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)

        def step(done: int | None = None, total_: int | None = None, what: str | None = None) -> None:
            if done is None:
                bar.advance(task)
            else:
                bar.update(task, completed=done)
            if total_ is not None:
                bar.update(task, total=total_)
            if what:
                bar.update(task, description=f"{label}: {what}")
        yield step


def machine_info() -> dict[str, Any]:
    """Where the figures were measured (they mean little without it)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git_commit": commit or None,
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass
class Target:
    """One SPEC target checked against a measured value."""

    name: str
    value: float
    op: str
    limit: float
    unit: str
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        checks = {"<=": self.value <= self.limit, ">=": self.value >= self.limit, "<": self.value < self.limit}
        if self.op not in checks:
            raise ValueError(f"target operator must be <=, >= or <, got {self.op!r}")
        self.passed = checks[self.op]


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a table with rich (plain text when stdout is not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(fmt(v) for v in row))
    console = Console(width=max(100, len(columns) * 14))
    console.print(title, style="bold", highlight=False)
    console.print(table)


def fmt(value: Any) -> str:
    """Numbers to at most 4 significant digits; others as str."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}" if abs(value) < 1e5 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")


_HLINE_STYLES = (("--", "grey"), (":", "red"), ("-.", "black"))


def bar_plot(path: Path, title: str, labels: Sequence[str], values: Sequence[float], ylabel: str, *,
             target: float | None = None, target_label: str = "target") -> None:
    """A PNG bar chart, each bar labelled with its value; an optional horizontal target line."""
    from fogfed import _plot

    plt = _plot.pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 2), 4.8))
    try:
        bars = ax.bar(range(len(labels)), values, color="#4878a8")
        for bar, value in zip(bars, values):
            ax.annotate(fmt(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                        va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
        if target is not None:
            ax.axhline(target, color="#c0392b", linestyle="--", linewidth=1.2, label=f"{target_label} ({fmt(target)})")
            ax.legend(loc="best", fontsize=8)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


def line_plot(
    path: Path,
    panels: Sequence[dict[str, Any]],
    *,
    title: str = "",
    ncols: int = 2,
) -> None:
    """Write a PNG with one subplot per panel, ``ncols`` to a row.

    Each panel: ``{"title", "xlabel", "ylabel", "series": {label: (xs, ys)}}``,
    optional ``"logx"``/``"logy": True`` and ``"hlines": {label: y}`` (e.g. a target).
    """
    from fogfed import _plot

    plt = _plot.pyplot()
    import matplotlib.ticker

    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, 4.2 * nrows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, panel in zip(axes.flat, panels):
        for label, (xs, ys) in panel["series"].items():
            ax.plot(list(xs), list(ys), marker="o", markersize=3, label=label)
        for i, (label, y) in enumerate(panel.get("hlines", {}).items()):
            style, color = _HLINE_STYLES[i % len(_HLINE_STYLES)]
            ax.axhline(y, linestyle=style, linewidth=1.2, color=color, label=label)
        if panel.get("logx"):
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted({x for xs, _ in panel["series"].values() for x in xs}))
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        if panel.get("logy"):
            ax.set_yscale("log")
        ax.set_title(panel.get("title", ""))
        ax.set_xlabel(panel.get("xlabel", ""))
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


class Report:
    """Collects a benchmark's tables, targets and extra data; prints and saves them."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name = name
        self.args = args
        self.tables: dict[str, dict[str, Any]] = {}
        self.targets: list[Target] = []
        self.data: dict[str, Any] = {}

    def table(self, key: str, title: str, columns: Sequence[str]) -> None:
        """Declare a table; rows are then added with ``row(key, ...)``."""
        self.tables[key] = {"title": title, "columns": list(columns), "rows": []}

    def row(self, key: str, *values: Any) -> None:
        table = self.tables[key]
        if len(values) != len(table["columns"]):
            raise ValueError(f"table {key}: {len(values)} values for {len(table['columns'])} columns")
        table["rows"].append(list(values))

    def target(self, name: str, value: float, op: str, limit: float, unit: str) -> Target:
        t = Target(name, value, op, limit, unit)
        self.targets.append(t)
        return t

    def print(self) -> None:
        for table in self.tables.values():
            print_table(table["title"], table["columns"], table["rows"])
        if self.targets:
            print_table(
                "targets",
                ["target", "measured", "limit", "result"],
                [
                    (t.name, f"{fmt(t.value)} {t.unit}", f"{t.op} {fmt(t.limit)} {t.unit}", "PASS" if t.passed else "FAIL")
                    for t in self.targets
                ],
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "benchmark": self.name,
            "quick": bool(getattr(self.args, "quick", False)),
            "machine": machine_info(),
            "tables": {
                key: {"title": t["title"], "rows": [dict(zip(t["columns"], r)) for r in t["rows"]]}
                for key, t in self.tables.items()
            },
            "targets": [asdict(t) for t in self.targets],
            **self.data,
        }

    def finish(self) -> dict[str, Any]:
        """Print everything and write the JSON file if asked; returns the JSON payload."""
        self.print()
        FINISHED.append(self)
        payload = self.to_dict()
        if getattr(self.args, "json", None):
            write_json(self.args.json, payload)
            sys.stdout.flush()
            print(f"wrote {self.args.json}", file=sys.stderr)
        return payload
