"""benchmarks/audit.py runs end to end on a tiny workload and writes well-formed JSON (behaviour, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.anvil
def test_audit_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    cmd = [sys.executable, "-m", "benchmarks.audit", "--quick", "--events", "300",
           "--accesses", "20,40", "--json", str(out), "--plot", str(tmp_path / "audit.png"),
           "--no-fail"]  # a smoke run: shape, not speed
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "events/s" in proc.stdout and "targets" in proc.stdout
    assert (tmp_path / "audit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(out.read_text())
    assert data["benchmark"] == "audit"
    runs = data["runs"]
    assert [(r["workload"], r["events"]) for r in runs] == [("members", 300), ("accesses", 20), ("accesses", 40)]
    for r in runs:
        assert r["events_per_s"] > 0 and r["seconds"] > 0 and r["generate_s"] > 0
        assert r["peak_mb"] >= r["state_mb"] >= 0 and r["working_mb"] == pytest.approx(r["peak_mb"] - r["state_mb"])
    names = [t["name"] for t in data["targets"]]
    assert names[0] == "replay rate (slowest run)" and "working memory growth" in names[1]
