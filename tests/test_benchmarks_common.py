"""Shared benchmark rules: a failed target fails the run unless --no-fail; --plot writes a PNG."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import common
from benchmarks.common import Report, base_parser, exit_code

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _fresh_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "FINISHED", [])


def _finish(args: list[str], value: float, capsys) -> int:
    report = Report("t", base_parser("t").parse_args(args))
    report.target("speed", value, ">=", 1.0, "x")
    report.finish()
    capsys.readouterr()
    return exit_code(report.to_dict())


def test_a_failed_target_fails_the_run(capsys) -> None:
    assert _finish([], 0.5, capsys) == 1


def test_no_fail_turns_that_off(capsys) -> None:
    assert _finish(["--no-fail"], 0.5, capsys) == 0


def test_targets_met_exit_zero(capsys) -> None:
    assert _finish([], 2.0, capsys) == 0


def test_own_failure_code_wins(capsys) -> None:
    assert exit_code(2) == 2


def test_storage_benchmark_honours_plot(tmp_path: Path, capsys) -> None:
    from benchmarks import storage

    plot = tmp_path / "storage.png"
    payload = storage.main(["--quick", "--mib", "2", "--repeat", "1", "--no-ipfs", "--plot", str(plot)])
    assert plot.read_bytes()[:8] == PNG_MAGIC and plot.stat().st_size > 10_000
    assert payload["tables"]["ops"]["rows"]
    assert "wrote" in capsys.readouterr().err


def test_bar_plot_labels_and_target(tmp_path: Path) -> None:
    path = tmp_path / "b.png"
    common.bar_plot(path, "t", ["a", "b"], [1.5, 3000.0], "MB/s", target=2.0)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_interleaved_rounds_alternate_and_run_between_untimed() -> None:
    from benchmarks.common import measure_interleaved

    calls: list[str] = []
    t = measure_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                            repeat=4, warmup=0, alternate=True, between=lambda: calls.append("|"))
    assert "".join(calls) == "ab|ba|ab|ba|"
    assert len(t["a"].samples) == len(t["b"].samples) == 4


def test_datapath_ratio_rounds_fit_the_budget() -> None:
    from benchmarks.datapath import MAX_ROUNDS, MIN_ROUNDS, ratio_rounds

    assert ratio_rounds(0.04) == 25 == MAX_ROUNDS  # a 16 MiB call: as many as allowed
    assert ratio_rounds(0.3) == MIN_ROUNDS  # 128 MiB: the minimum
    assert MIN_ROUNDS < ratio_rounds(0.08, budget_s=4.0) < MAX_ROUNDS
