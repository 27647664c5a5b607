"""``fogfed deploy`` and ``fogfed gas-report``: embedded, Anvil, a real process, and bad input."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from pathlib import Path

import pytest

from fogfed._proc import free_port
from fogfed.chain import FogFed, connect, gasreport
from fogfed.chain.gasreport import PAPER_TABLE4
from fogfed.cli import main
from tests.cli.helpers import FOGFED, assert_one_line_error, run_inproc

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


# -- deploy -----------------------------------------------------------------------------------

def test_deploy_embedded_says_the_chain_is_temporary(capsys) -> None:
    code, out, err = run_inproc(capsys, "deploy")
    assert code == 0, err
    assert out.startswith("FogFed deployed at 0x")
    assert "gas used" in out and "block 1" in out
    assert "lives only for this process" in err


def test_deploy_json(capsys) -> None:
    code, out, _ = run_inproc(capsys, "deploy", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["address"].startswith("0x") and len(doc["address"]) == 42
    assert doc["block"] >= 1 and doc["gas_used"] > 100_000 and doc["persistent"] is False


@pytest.mark.anvil
def test_deploy_to_anvil_leaves_a_fogfed_there(capsys, anvil_url: str) -> None:
    code, out, err = run_inproc(capsys, "deploy", "--rpc", anvil_url, "--chain-id", "31337", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["persistent"] is True and doc["chain_id"] == 31337
    assert doc["deployer"] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    chain = connect(anvil_url)
    fed = FogFed.at(chain, doc["address"])  # checks the runtime code is FogFed's
    assert fed.settings().admin == doc["deployer"]
    receipt = chain.w3.eth.get_transaction_receipt(doc["tx"])
    assert receipt["gasUsed"] == doc["gas_used"] and receipt["blockNumber"] == doc["block"]


@pytest.mark.anvil
def test_deploy_with_a_private_key_from_the_environment(capsys, anvil_url: str, monkeypatch) -> None:
    # Anvil's second default account, given as FOGFED_PRIVATE_KEY.
    monkeypatch.setenv("FOGFED_PRIVATE_KEY", "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
    code, out, err = run_inproc(capsys, "deploy", "--rpc", anvil_url, "--json")
    assert code == 0, err
    assert json.loads(out)["deployer"] == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.mark.parametrize("args, exit_code, words", [
    (["deploy", "--rpc", "DEAD"], 1, ["cannot reach", "--rpc"]),
    (["deploy", "--rpc", "ftp://example.org"], 2, ["not an http(s) RPC URL"]),
    (["deploy", "--rpc", "http://127.0.0.1:99999"], 2, ["invalid port"]),
    (["deploy", "--chain-id", "5"], 1, ["not the stated chain 5"]),
    (["gas-report", "--rpc", "DEAD", "--scale", "2"], 1, ["cannot reach"]),
    (["gas-report", "--chain-id", "1", "--scale", "2"], 1, ["not the stated chain 1"]),
    (["gas-report", "--scale", "2", "--json-file", "/nonexistent-dir/r.json"], 2, ["/nonexistent-dir", "writable"]),
    (["gas-report", "--scale", "2", "--plot", "/nonexistent-dir/r.png"], 2, ["/nonexistent-dir"]),
])
def test_bad_input_gives_one_line_errors(capsys, args: list[str], exit_code: int, words: list[str]) -> None:
    args = [dead_url() if a == "DEAD" else a for a in args]
    code, out, err = run_inproc(capsys, *args)
    assert_one_line_error(code, err, exit_code, *words)
    assert "Gas per operation" not in out  # refused before measuring


def test_bad_private_key(capsys, monkeypatch) -> None:
    monkeypatch.setenv("FOGFED_PRIVATE_KEY", "0x1234")
    code, _, err = run_inproc(capsys, "deploy")
    assert_one_line_error(code, err, 2, "private key", "FOGFED_PRIVATE_KEY")


@pytest.mark.parametrize("scale", ["0", "1", "-5", "abc", "1e3", "100001"])
def test_bad_scale_is_a_usage_error(capsys, scale: str) -> None:
    code, _, err = run_inproc(capsys, "gas-report", "--scale", scale)
    assert code == 2
    assert "Invalid value for '--scale'" in err and "Traceback" not in err


# -- gas-report -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str, Path]:
    """One in-process ``fogfed gas-report --json --plot --scale 8`` on the embedded chain."""
    # capsys is function-scoped, so this module-wide run captures by hand.
    folder = tmp_path_factory.mktemp("gas")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["gas-report", "--scale", "8", "--json-file", str(folder / "gas.json"),
                     "--plot", str(folder / "gas.png")])
    return code, out.getvalue(), err.getvalue(), folder


def test_gas_report_json_has_the_spec_shape(embedded_run) -> None:
    code, _, _, folder = embedded_run
    doc = json.loads((folder / "gas.json").read_text())
    assert [r["paper_row"] for r in doc["rows"]] == [p.name for p in PAPER_TABLE4]
    for row, paper in zip(doc["rows"], PAPER_TABLE4):
        assert type(row["paper_gas"]) is int and type(row["gas"]) is int and type(row["ratio"]) is float
        assert row["paper_gas"] == paper.paper_gas and row["target"] == paper.target
        assert row["ratio"] == pytest.approx(row["gas"] / row["paper_gas"], abs=1e-6)
        assert row["passed"] == (row["gas"] <= row["target"])
        assert isinstance(row["operation"], str) and row["operation"]
    assert doc["scale"]["n"] == 8 and len(doc["scale"]["rows"]) == 6
    assert doc["passed"] == (all(r["passed"] for r in doc["rows"]) and doc["scale"]["flat"])
    assert code == (0 if doc["passed"] else 1)


def test_gas_report_table_shows_every_row(embedded_run) -> None:
    code, out, err, folder = embedded_run
    doc = json.loads((folder / "gas.json").read_text())
    for row in doc["rows"]:
        assert row["paper_row"] in out
        assert f"{row['gas']:,}" in out and f"{row['paper_gas']:,}" in out
    assert "after +8" in out
    assert ("PASS" in out) == doc["passed"]
    if code:
        assert_one_line_error(code, err, 1, "gas report failed")
    assert "Traceback" not in out + err


def test_gas_report_plot_is_a_png(embedded_run) -> None:
    png = (embedded_run[3] / "gas.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000


def _with_targets(monkeypatch, target: int) -> None:
    rows = tuple(p.__class__(p.name, p.paper_gas, target, p.operation) for p in PAPER_TABLE4)
    monkeypatch.setattr(gasreport, "PAPER_TABLE4", rows)


def test_missed_target_exits_non_zero_naming_the_row(capsys, monkeypatch) -> None:
    _with_targets(monkeypatch, 25_000)  # below every real figure
    code, out, err = run_inproc(capsys, "gas-report", "--scale", "2")
    assert_one_line_error(code, err, 1, "SC Deployment", "Verifying FN by attribute")
    assert "MISSED" in out


def test_all_targets_met_exits_zero(capsys, monkeypatch) -> None:
    _with_targets(monkeypatch, 10**9)
    code, out, err = run_inproc(capsys, "gas-report", "--scale", "2")
    assert code == 0, err
    assert "PASS" in out and "MISSED" not in out


@pytest.mark.anvil
def test_gas_report_on_anvil(capsys, anvil_url: str, tmp_path: Path) -> None:
    code, out, err = run_inproc(capsys, "gas-report", "--rpc", anvil_url, "--scale", "3",
                                "--json-file", str(tmp_path / "a.json"))
    doc = json.loads((tmp_path / "a.json").read_text())
    assert code == (0 if doc["passed"] else 1), err
    assert doc["chain"]["rpc"] == anvil_url and doc["chain"]["chain_id"] == 31337
    assert anvil_url in out


# -- the console script, as a real process ---------------------------------------------------

def test_console_script_gas_report(tmp_path: Path) -> None:
    """--json: the report is the one document on stdout (also when a target is missed), and
    --json-file writes the same document."""
    proc = subprocess.run([str(FOGFED), "gas-report", "--scale", "2", "--json", "--json-file", str(tmp_path / "g.json")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    doc = json.loads(proc.stdout)
    assert doc == json.loads((tmp_path / "g.json").read_text())
    assert proc.returncode == (0 if doc["passed"] else 1), proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_console_script_unreachable_rpc() -> None:
    proc = subprocess.run([str(FOGFED), "deploy", "--rpc", dead_url()], capture_output=True, text=True,
                          timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, 1, "cannot reach the Ethereum node at")
    assert proc.stdout == ""


def test_plot_without_matplotlib_names_the_extra(capsys, monkeypatch) -> None:
    """matplotlib is the optional `plot` extra: refused before measuring, with the install line."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the extra sees
    code, out, err = run_inproc(capsys, "gas-report", "--scale", "2", "--plot", "r.png")
    assert_one_line_error(code, err, 1, "matplotlib is not installed", "fogfed[plot]")
    assert "Gas per operation" not in out


def test_benchmark_plot_without_matplotlib_is_a_usage_error(capsys, monkeypatch) -> None:
    import sys

    from benchmarks.common import base_parser

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit) as exit_info:
        base_parser("x").parse_args(["--plot", "p.png"])
    assert exit_info.value.code == 2 and "fogfed[plot]" in capsys.readouterr().err
