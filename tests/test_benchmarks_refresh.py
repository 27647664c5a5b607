"""Smoke run of benchmarks/refresh.py at small N (a command, not a timing assertion; N = 10,000 is not run here)."""

from __future__ import annotations

import json

from benchmarks.refresh import main


def test_refresh_benchmark_quick(tmp_path):
    out = tmp_path / "refresh.json"
    code = main(["--quick", "--n", "12", "--chain", "embedded", "--setup-batch", "5", "--json", str(out)])
    data = json.loads(out.read_text())
    m = data["result"]
    assert code == 0 and all(t["passed"] for t in data["targets"])
    assert (m["n"], m["members"], m["txs"], m["deliveries"], m["late"]) == (12, 12, 1, 0, 0)
    assert m["lookup_found"] == 1 and m["lookup_key_ok"] and 0 < m["gas"] <= 150_000
    assert m["bundle_bytes"] > 12 * 500  # a sealed key each
