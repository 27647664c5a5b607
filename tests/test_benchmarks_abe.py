"""benchmarks/abe.py runs end to end and writes well-formed JSON and a PNG (behaviour, not speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    cmd = [
        sys.executable, "-m", "benchmarks.abe", "--quick", "--n", "1,3", "--repeat", "2",
        "--stream-mib", "2", "--chunks", "64",
        "--json", str(out / "abe.json"), "--plot", str(out / "abe.png"), "--no-fail",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads((out / "abe.json").read_text()), out / "abe.png"


def test_json_has_every_figure(run) -> None:
    _, data, _ = run
    assert data["benchmark"] == "abe" and data["quick"] is True
    assert data["pairing"]["median_s"] > 0
    for scheme in ("fabeo", "fame", "bsw07"):
        by_n = data["cpabe"][scheme]["by_n"]
        sizes = data["cpabe"][scheme]["sizes"]
        assert sizes["public key"] > 0 and sorted(k for k in sizes if k != "public key") == ["1", "3"]
        assert sorted(by_n) == ["1", "3"]
        for row in by_n.values():
            assert set(row) == {"keygen", "encrypt_and", "encrypt_or", "decrypt_and", "decrypt_or"}
            assert all(t["median_s"] > 0 and t["samples"] == 2 for t in row.values())
    ms, units = data["tables"]["ms"]["rows"], data["tables"]["pairings"]["rows"]
    assert [(r["scheme"], r["n"]) for r in ms] == [(s, n) for s in ("fabeo", "fame", "bsw07") for n in (1, 3)]
    names = {"keygen": "keygen", "enc AND": "encrypt_and", "enc OR": "encrypt_or", "dec AND": "decrypt_and", "dec OR": "decrypt_or"}
    for in_ms, in_units in zip(ms, units):  # pairing units: the op's median over the pairing's, timed together
        for column, op in names.items():
            fig = data["cpabe"][in_ms["scheme"]]["by_n"][str(in_ms["n"])][op]
            assert in_ms[column] == pytest.approx(fig["median_s"] * 1e3)
            assert in_units[column] == pytest.approx(fig["median_s"] / fig["pairing_median_s"]) == fig["pairings"]
            assert fig["best_pairings"] == pytest.approx(fig["min_s"] / fig["pairing_best_s"])


def test_json_has_streaming_and_targets(run) -> None:
    _, data, _ = run
    st = data["stream"]
    assert st["total_bytes"] == 2 * 1024 * 1024
    assert sorted(st["mb_s"], key=int) == ["65536", "262144"]  # asked-for 64 KiB plus the default chunk
    assert sorted(st["ratio"], key=int) == ["65536", "262144"]
    for ratio in st["ratio"].values():
        assert set(ratio) == {"stream encrypt", "stream encrypt + SHA-256"} and all(v > 0 for v in ratio.values())
    for mb in st["mb_s"].values():
        assert {"raw AES-GCM", "stream encrypt", "stream decrypt + SHA-256"} <= set(mb)
        assert all(v > 0 for v in mb.values())
    assert 0 < st["peak_memory_bytes"] < 8 * 262144
    names = [t["name"] for t in data["targets"]]
    assert len(names) == 6 + 9 and any("10-leaf" in n for n in names) and any("5 attributes" in n for n in names)
    assert any("per extra OR leaf" in n for n in names) and any("n=1..100" in n for n in names)
    assert all(t["unit"] == "pairings" for t in data["targets"][:4])
    assert sorted(data["target_rows"], key=int) == ["1", "3", "5", "10", "100"]  # measured for the default scheme
    for t in data["targets"]:
        assert t["passed"] == (t["value"] <= t["limit"] if t["op"] == "<=" else t["value"] >= t["limit"])


def test_json_has_the_cover_figures_and_targets(run) -> None:
    _, data, _ = run
    assert sorted(data["cover"], key=int) == ["16384", "100000"]
    ops = {"decrypt one-node cover", "decrypt cover (warm)", "decrypt cover (cold)", "encrypt one-node cover", "encrypt cover"}
    for n, c in data["cover"].items():
        assert c["revoked"] == 16 and 100 < c["cover_nodes"] < 260 and c["ct_bytes"] > c["ct_one_node_bytes"]
        assert set(c["figures"]) == ops and all(f["samples"] == 5 and f["min_s"] > 0 for f in c["figures"].values())
    cover_targets = [t for t in data["targets"] if "cover" in t["name"] or "file key" in t["name"]]
    assert len(cover_targets) == 9  # per N: warm and cold in pairings and x one-node; encrypt at 16,384
    assert sum(t["unit"] == "pairings" for t in cover_targets) == 4 and cover_targets[-1]["unit"] == "ms"
    assert sum(t["unit"] == "x" and "/ one-node cover" in t["name"] for t in cover_targets) == 4
    rows = data["tables"]["cover"]["rows"]
    assert len(rows) == 10 and rows[0]["operation"] == "decrypt one-node cover" and rows[0]["x one-node"] == 1


def test_prints_tables_and_targets(run) -> None:
    proc, _, _ = run
    for text in ("CP-ABE setup", "CP-ABE in ms", "CP-ABE in pairings", "best of", "CP-ABE sizes", "streaming, MB/s", "targets",
                 "fabeo", "fame", "bsw07"):
        assert text in proc.stdout
    assert "PASS" in proc.stdout or "FAIL" in proc.stdout


def test_plot_is_a_png(run) -> None:
    _, _, png = run
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000


def test_bad_arguments_are_refused() -> None:
    for bad in (["--n", "0"], ["--n", "x"], ["--schemes", "rsa"], ["--chunks", "99999"]):
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.abe", "--quick", *bad], cwd=ROOT, capture_output=True, text=True
        )
        assert proc.returncode == 2 and "error:" in proc.stderr, (bad, proc.stderr)


def test_exit_status_follows_the_targets() -> None:
    from benchmarks.abe import exit_status
    from benchmarks.common import Target

    ok, bad = Target("a", 1.0, "<=", 2.0, "x"), Target("b", 3.0, "<=", 2.0, "x")
    assert exit_status([ok], no_fail=False) == 0
    assert exit_status([ok, bad], no_fail=False) == 1
    assert exit_status([ok, bad], no_fail=True) == 0
