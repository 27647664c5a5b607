"""``fogfed audit replay|verify|report`` end to end on Anvil."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from web3 import Web3

from fogfed.cli import main
from tests.audit.history import Script, base, clean_history

pytestmark = pytest.mark.anvil


def test_replay_verify_report(anvil_url: str, w3: Web3, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    s = Script(w3)
    clean_history(s)
    db = str(tmp_path / "cli.sqlite")
    args = ["--rpc", anvil_url, "--address", s.address, "--db", db]
    assert main(["audit", "replay", *args, "--quiet"]) == 0
    assert "replayed" in capsys.readouterr().out
    prober = s.accounts[7]
    for _ in range(3):
        s.send(prober, "recordAccess", b"\x00" * 32)
    assert main(["audit", "replay", *args]) == 0
    assert "resumed after block" in capsys.readouterr().out
    assert main(["audit", "verify", *args]) == 0
    assert "rebuilt state equals the contract's views" in capsys.readouterr().out
    out_json, out_html, out_csv = tmp_path / "r.json", tmp_path / "r.html", tmp_path / "csv"
    assert main(["audit", "report", "--db", db, "--json-file", str(out_json), "--html", str(out_html),
                 "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    assert "[probing]" in printed and prober in printed
    assert json.loads(out_json.read_text())["findings"][0]["kind"] == "probing"
    assert out_html.stat().st_size > 0 and (out_csv / "events.csv").is_file()


def test_wrong_address_is_a_one_line_error(anvil_url: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    code = main(["audit", "replay", "--rpc", anvil_url, "--address", "0x" + "34" * 20,
                 "--db", str(tmp_path / "x.sqlite"), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("error: no contract at") and "Traceback" not in err


def test_unreachable_node_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["audit", "verify", "--rpc", "http://127.0.0.1:9", "--address", "0x" + "34" * 20,
                 "--db", str(tmp_path / "x.sqlite")])
    err = capsys.readouterr().err
    assert code == 1 and "cannot reach the Ethereum node at http://127.0.0.1:9" in err and "Traceback" not in err


def test_report_without_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["audit", "report", "--db", str(tmp_path / "none.sqlite")]) != 0
    assert "run `fogfed audit replay` first" in capsys.readouterr().err


def test_verify_reports_mismatch_exit_code(anvil_url: str, w3: Web3, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    s = Script(w3)
    base(s)
    db = tmp_path / "v.sqlite"
    args = ["--rpc", anvil_url, "--address", s.address, "--db", str(db)]
    assert main(["audit", "replay", *args, "--quiet"]) == 0
    # Tamper with the local snapshot: verify must notice the rebuilt state no longer matches.
    con = sqlite3.connect(db)
    contract = json.loads(con.execute("SELECT value FROM snapshot WHERE section = 'contract'").fetchone()[0])
    contract["false_claim_threshold"] = 99
    con.execute("UPDATE snapshot SET value = ? WHERE section = 'contract'", (json.dumps(contract),))
    con.commit()
    con.close()
    capsys.readouterr()
    assert main(["audit", "verify", *args, "--no-replay"]) == 1
    captured = capsys.readouterr()
    assert "MISMATCH contract" in captured.out and "1 difference(s)" in captured.err


def test_confirmations_flag_beats_the_environment(anvil_url: str, w3: Web3, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """--confirmations keeps the newest blocks out, like the writers' flag, and wins over $FOGFED_CONFIRMATIONS."""
    s = Script(w3)
    base(s)
    for _ in range(3):
        s.send(s.accounts[7], "recordAccess", b"\x00" * 32)
    monkeypatch.setenv("FOGFED_CONFIRMATIONS", "1")
    args = ["--rpc", anvil_url, "--address", s.address, "--json"]
    head = w3.eth.block_number
    assert main(["audit", "replay", *args, "--db", str(tmp_path / "a.sqlite"), "--quiet",
                 "--confirmations", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["head"] == head - 2
    assert main(["audit", "verify", *args, "--db", str(tmp_path / "b.sqlite"), "--confirmations", "0"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["block"] == head and verified["verified"] is True
    assert main(["audit", "verify", *args, "--db", str(tmp_path / "c.sqlite")]) == 0  # the variable applies
    assert json.loads(capsys.readouterr().out)["block"] == head - 1


def test_bad_confirmations_flag_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["audit", "replay", "--rpc", "http://127.0.0.1:9", "--address", "0x" + "34" * 20,
                 "--db", str(tmp_path / "x.sqlite"), "--confirmations", "soon"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: confirmations must be") and "(from --confirmations)" in err


def test_without_rpc_the_auditor_follows_the_tas_home(anvil_url: str, w3: Web3, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`fogfed tas init --rpc URL` remembers the chain; `fogfed audit` with no --rpc reads it there (and its
    confirmations), not the embedded chain."""
    s = Script(w3)
    base(s)
    monkeypatch.delenv("FOGFED_RPC", raising=False)
    monkeypatch.delenv("FOGFED_CONFIRMATIONS", raising=False)
    monkeypatch.setenv("FOGFED_HOME", str(tmp_path))
    (tmp_path / "tas").mkdir()
    (tmp_path / "tas" / "settings.toml").write_text(f'rpc = "{anvil_url}"\nconfirmations = "1"\n')
    assert main(["audit", "verify", "--address", s.address, "--json"]) == 0
    verified = json.loads(capsys.readouterr().out)
    assert verified["verified"] is True and verified["block"] == w3.eth.block_number - 1
