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
    code = main(["--quick", "--chain", "4,12", "--sizes", "4,32", "--json", str(out), "--plot", str(plot)])
    data = json.loads(out.read_text())
    targets = {t["name"]: t for t in data["targets"]}
    assert code == (1 if not all(t["passed"] for t in targets.values()) else 0)  # exit code follows the targets
    assert main(["--quick", "--chain", "4", "--sizes", "4", "--no-fail"]) == 0
    for m in data["chain"]:  # counted from the chain itself
        assert (m["leave"]["txs"], m["leave"]["deliveries"], m["join"]["deliveries"], m["move"]["deliveries"]) \
            == (1, 0, 1, 1)
        assert m["move"]["level"] == 1 and m["src_revoked"] == 2  # the removed node and the mover
    assert targets["removal: gas in total"]["passed"] and targets["join + delivery: gas"]["passed"]
    rows = {(r["op"], r["n"]): r for r in data["rows"]}
    assert rows[("leave", 32)]["fogfed"]["messages"] == 0 and rows[("join", 32)]["fogfed"]["messages"] == 1
    assert rows[("move", 32)]["off_chain"]["cover_nodes"] >= 1
    assert plot.stat().st_size > 10_000 and "fogfed on the chain" in capsys.readouterr().out
