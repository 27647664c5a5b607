"""``fogfed tas fund``, ``tas reissue``, ``tas watch --top-up-below``, the low-balance warning and the
unenrolled node's fetch (issue 13 items 8, 9)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fogfed.chain import connect
from fogfed.chain.funds import LOW_OPERATIONS, low_balance_warning, operations_left
from tests.cli.helpers import assert_one_line_error, run_inproc, tas_home


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Path:
    tas_home(tmp_path, monkeypatch, capsys)
    return tmp_path


def _node(capsys, name: str, fund: str) -> str:
    assert run_inproc(capsys, "node", "init", "--home", name)[0] == 0
    assert run_inproc(capsys, "node", "request", "--home", name, "--location", "riyadh", "--service", "health",
                      "-o", f"{name}.json")[0] == 0
    code, out, err = run_inproc(capsys, "tas", "enroll", f"{name}.json", "--approve", "--fund", fund, "--json")
    assert code == 0, err
    return json.loads(out)["node"]


def test_fund_reissue_and_automatic_top_up(home: Path, capsys) -> None:
    chain = connect(f"embedded:{home / 'chain'}")
    poor = _node(capsys, "n1", "0.001")
    assert operations_left(chain, poor) < LOW_OPERATIONS and "tas fund" in low_balance_warning(chain, poor)
    code, out, err = run_inproc(capsys, "tas", "fund", poor, "--amount", "0.1", "--json")
    assert code == 0, err
    assert json.loads(out)["operations_left"] >= LOW_OPERATIONS
    assert chain.balance(poor) == 10**15 + 10**17 and low_balance_warning(chain, poor) is None

    code, _, err = run_inproc(capsys, "tas", "fund", "0x" + "12" * 20)  # not a member
    assert_one_line_error(code, err, 2, "not an active member")
    code, _, err = run_inproc(capsys, "tas", "fund", poor, "--amount", "lots")
    assert_one_line_error(code, err, 2, "not an amount of ether")

    other = _node(capsys, "n2", "0.001")
    code, out, err = run_inproc(capsys, "tas", "watch", "--count", "1", "--top-up-below", "0.01",
                                "--top-up-to", "0.02", "--top-up-limit", "1", "--json")
    assert code == 0, err
    [check] = [json.loads(line) for line in out.splitlines()]  # one JSON line per check
    [topped] = check["topped_up"]
    assert check["rekeyed"] == [] and topped["node"] == other and chain.balance(other) == 2 * 10**16  # poor has 0.101: left alone

    code, out, err = run_inproc(capsys, "tas", "reissue", other, "--json")
    assert code == 0 and json.loads(out)["gas_used"] > 0, err
    code, out, err = run_inproc(capsys, "node", "join", "--home", "n2", "--json")
    assert code == 0, err
    code, _, err = run_inproc(capsys, "tas", "reissue", "0xbad")
    assert_one_line_error(code, err, 2, "address")


def test_unenrolled_node_fetch_says_so(home: Path, capsys) -> None:
    assert run_inproc(capsys, "node", "init", "--home", "lonely")[0] == 0
    code, _, err = run_inproc(capsys, "node", "fetch", "--home", "lonely", "0x" + "ab" * 32, "-o", "x.bin")
    assert_one_line_error(code, err, code or 1, "not an active member", "enroll")
    assert "cannot pay" not in err and not (home / "x.bin").exists()


def test_bad_input_exits_2(home: Path, capsys) -> None:
    code, _, err = run_inproc(capsys, "audit", "verify", "--address", "0xbad")
    assert_one_line_error(code, err, 2, "not an Ethereum address")
    assert run_inproc(capsys, "node", "init", "--home", "r")[0] == 0
    (home / "garbage.bin").write_bytes(b"not a message at all" * 3)
    code, _, err = run_inproc(capsys, "node", "recv", "--home", "r", "garbage.bin")
    assert_one_line_error(code, err, 2, "not a fogfed message")
