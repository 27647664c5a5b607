"""benchmarks/throughput.py runs end to end with two processes (behaviour, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_throughput_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "tp.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.throughput", "--quick", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    [row] = doc["tables"]["t"]["rows"]
    assert doc["overlapped"], "the node processes ran one after the other, not at once"
    assert row["uploads"] == 4 and row["uploads/min"] > 0 and row["p90 s"] >= row["p50 s"] > 0
