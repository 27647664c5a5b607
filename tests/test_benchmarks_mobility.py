"""Smoke run of benchmarks/mobility.py (a command, not a timing assertion) and the LKH baseline's counts."""

from __future__ import annotations

import json

from benchmarks.lkh import WRAP_BYTES, LKHTree, move
from benchmarks.mobility import main


def test_lkh_rekeys_one_path():
    tree = LKHTree.with_members(1000)
    assert tree.depth == 10 and tree.keys_per_member() == 11
    join = tree.join("new")
    assert join.keys == 11 and 10 <= join.wraps <= 20 and join.bytes == join.wraps * WRAP_BYTES
    leave = tree.leave("m5")
    assert 1 <= leave.keys <= 10 and leave.wraps <= 20
    assert move(LKHTree.with_members(8), LKHTree.with_members(8), "m0").wraps > 0


def test_mobility_benchmark_quick(tmp_path, capsys):
    out, plot = tmp_path / "mob.json", tmp_path / "mob.png"
    assert main(["--quick", "--measure", "3", "--sizes", "4,32", "--json", str(out), "--plot", str(plot)]) == 0
    data = json.loads(out.read_text())
    rows = {(r["op"], r["n"]): r for r in data["rows"]}
    assert rows[("leave", 32)]["fogfed"]["deliveries"] == 31 and rows[("move", 32)]["fogfed"]["deliveries"] == 64
    assert data["measured"][0]["move"]["level"] == 1 and data["measured"][0]["move"]["deliveries"] == 6
    assert plot.stat().st_size > 10_000 and "fogfed model" in capsys.readouterr().out
