"""benchmarks/swarm.py runs end to end on a tiny file and writes well-formed JSON (behaviour, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.ipfs
def test_swarm_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "swarm.json"
    cmd = [sys.executable, "-m", "benchmarks.swarm", "--mib", "1", "--repeat", "1", "--no-fail", "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["benchmark"] == "swarm"
    rows = data["tables"]["fetch"]["rows"]
    assert [r["operation"] for r in rows][:3] == ["single daemon: cat from A (local blocks)",
                                                  "swarm: cat through C from A+B (Bitswap, cold)",
                                                  "replicate: B pins by CID (Bitswap from A)"]
    assert all(r["MB/s"] > 0 for r in rows[:3])
    assert [t["name"] for t in data["targets"]] == ["swarm fetch rate / the daemon's own pin rate"]
