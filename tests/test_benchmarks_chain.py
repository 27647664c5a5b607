"""benchmarks/chain.py runs end to end on a small chain and writes well-formed JSON (behaviour, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_chain_benchmark_smoke(tmp_path: Path) -> None:
    out = tmp_path / "chain.json"
    cmd = [sys.executable, "-m", "benchmarks.chain", "--at", "20,60", "--repeat", "3", "--no-fail",
           "--dir", str(tmp_path / "state"), "--json", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    rows = data["tables"]["tx"]["rows"]
    assert [r["transactions on chain"] for r in rows] == [20, 60]
    assert all(r["median ms"] > 0 and r["other process ms"] > 0 for r in rows)
    assert data["targets"][0]["limit"] == 1.5 and data["ratio"] > 0
    # the chains really hold that many transactions (the filling is not a pretence)
    from fogfed.chain import connect
    chain = connect(f"embedded:{tmp_path / 'state' / 'chain-60'}")
    assert sum(chain.w3.eth.get_transaction_count(a.address) for a in chain.dev_accounts()[:2]) >= 60 + 3
