"""Moves through the FogFedMobility contract, replayed along with FogFed on the embedded chain."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from fogfed import audit
from fogfed.audit.verify import MOBILITY_VIEWS_READ
from fogfed.chain.artifacts import load_artifact
from fogfed.cli import main
from tests.audit.history import Script, base, digest

MOBILITY_ABI = load_artifact("FogFedMobility")["abi"]


def deploy_mobility(s: Script, fogfed: str) -> Any:
    art = load_artifact("FogFedMobility")
    tx = s.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(fogfed).transact({"from": s.tas})
    address = s.w3.eth.wait_for_transaction_receipt(tx).contractAddress
    return s.w3.eth.contract(address=address, abi=art["abi"])


def send(s: Script, contract: Any, fn: str, *args: Any) -> None:
    receipt = s.w3.eth.wait_for_transaction_receipt(getattr(contract.functions, fn)(*args).transact({"from": s.tas}))
    assert receipt.status == 1, fn


@dataclass
class Moved:
    w3: Web3
    rpc: str
    s: Script
    mobility: Any
    ids: dict[str, Any]
    with_mob: audit.ReplayResult
    without: audit.ReplayResult
    home: Path


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Moved:
    """a[1] uploads in federation 1, moves to federation 2, uploads again at once; a[2] is removed for real."""
    home = tmp_path_factory.mktemp("mobility")
    rpc = f"embedded:{home / 'chain'}"
    w3 = audit.connect(rpc)
    s = Script(w3)
    ids = base(s)  # a[1] registered file_a in f1 in the last block
    a, f1, f2 = s.accounts, ids["f1"], ids["f2"]
    mob = deploy_mobility(s, s.address)
    s.send(s.tas, "setOperator", mob.address, True)
    send(s, mob, "moveMember", a[1], f2, digest("ek" + a[1]))
    s.upload(a[1], f2, "after-move", "lyon and storage")
    s.send(s.tas, "bumpEpoch", f2, s.c.functions.federation(f2).call()[2], b"\x07" * 32)
    s.send(s.tas, "removeMember", a[2], "rogue")
    with_mob = audit.replay(w3, s.address, home / "with.sqlite", mobility=mob.address)
    without = audit.replay(w3, s.address, home / "without.sqlite")
    return Moved(w3, rpc, s, mob, ids, with_mob, without, home)


def test_every_mobility_abi_event_has_a_handler() -> None:
    names = {e["name"] for e in MOBILITY_ABI if e["type"] == "event"}
    assert names - audit.HANDLED_EVENTS == set(), "mobility events the rebuild ignores"
    views = {e["name"] for e in MOBILITY_ABI if e["type"] == "function" and e["stateMutability"] == "view"}
    assert set(MOBILITY_VIEWS_READ) <= views


def test_a_move_is_shown_as_a_move(moved: Moved) -> None:
    state, a, f1, f2 = moved.with_mob.state, moved.s.accounts, moved.ids["f1"], moved.ids["f2"]
    assert state["unhandled"] == {} and state["mobility"] == moved.mobility.address
    assert [(m["node"], m["from"], m["to"], m["level"]) for m in state["moves"]] == [(a[1], f1, f2, 1)]
    history = state["members"][a[1]]["history"]
    assert [h["kind"] for h in history] == ["joined", "removed", "joined"]
    removed, joined = history[1], history[2]
    assert (removed["reason"], removed["to"], removed["level"], removed["fogfed_reason"]) == ("moved", f2, 1, 1)
    assert joined["moved_from"] == f1 and removed["tx"] == joined["tx"] == state["moves"][0]["tx"]
    # A real removal stays a removal.
    assert [r["reason_text"] for r in state["removals"] if r["node"] == a[2]] == ["removed by TAS"]
    # Uploads right before and after a handover are not "around a removal".
    kinds = [f.kind for f in audit.anomalies(state, moved.with_mob.head_time)]
    assert "write_near_removal" not in kinds
    assert audit.verify(moved.w3, moved.s.address, state, moved.with_mob.head) == []


def test_without_mobility_the_move_looks_like_a_removal(moved: Moved) -> None:
    state, a, f1, f2 = moved.without.state, moved.s.accounts, moved.ids["f1"], moved.ids["f2"]
    assert state["mobility"] is None and state["moves"] == []
    assert {r["node"]: r["reason_text"] for r in state["removals"]} == {a[1]: "removed by TAS",
                                                                       a[2]: "removed by TAS"}
    near = [f for f in audit.anomalies(state, moved.without.head_time) if f.kind == "write_near_removal"]
    assert {f.subject for f in near} == {a[1]}
    views = {v["id"]: v for v in audit.federation_views(state)}
    assert [(m["node"], m["to"]) for m in views[f1]["moved_out"]] == [(a[1], f2)]
    assert views[f1]["moves_out"] == [] and views[f2]["moves_in"] == []
    assert audit.verify(moved.w3, moved.s.address, state, moved.without.head) == []


def test_reports_list_moves(moved: Moved, tmp_path: Path) -> None:
    a, f1, f2 = moved.s.accounts, moved.ids["f1"], moved.ids["f2"]
    with audit.Checkpoint.open(moved.home / "with.sqlite") as cp:
        report = audit.build_report(cp)
        audit.write_html(report, cp, tmp_path / "r.html")
    views = {v["id"]: v for v in report["federations"]}
    assert [(m["node"], m["to"]) for m in views[f1]["moves_out"]] == [(a[1], f2)]
    assert [(m["node"], m["from"]) for m in views[f2]["moves_in"]] == [(a[1], f1)]
    assert views[f1]["moved_out"] == [] and [r["node"] for r in views[f1]["left"]] == [a[2]]
    assert report["summary"]["moves"] == 1 and report["summary"]["removals"] == 1
    page = (tmp_path / "r.html").read_text()
    assert f"moved to {f2}" in page and f"moved from {f1}" in page


def test_verify_checks_the_mobility_contract_serves_this_fogfed(moved: Moved) -> None:
    """A checkpoint whose mobility contract belongs to another FogFed is a finding (tampered checkpoint)."""
    state = json.loads(json.dumps(moved.with_mob.state))
    foreign = deploy_mobility(moved.s, Script(moved.w3).address)
    state["mobility"] = foreign.address
    found = audit.verify(moved.w3, moved.s.address, state, moved.w3.eth.block_number)
    assert [(f.kind, f.subject) for f in found] == [("state_mismatch", f"mobility contract {foreign.address}")]
    assert "the FogFed it serves" in found[0].message


def test_wrong_mobility_addresses_are_clear_errors(moved: Moved, tmp_path: Path) -> None:
    s = moved.s
    other = Script(moved.w3)  # another FogFed, with its own mobility contract
    foreign = deploy_mobility(s, other.address)
    cases = [(s.address, "is not a FogFedMobility contract"), ("0x" + "34" * 20, "is not a FogFedMobility contract"),
             (foreign.address, f"serves FogFed {other.address}"), ("0x1234", "is not an Ethereum address")]
    for address, message in cases:
        with pytest.raises(audit.AuditError, match=message) as info:
            audit.replay(moved.w3, s.address, tmp_path / "x.sqlite", mobility=address)
        assert info.value.hint
    # A checkpoint keeps the choice it was made with.
    with pytest.raises(audit.AuditError, match="replayed without a mobility contract"):
        audit.replay(moved.w3, s.address, moved.home / "without.sqlite", mobility=moved.mobility.address)
    with pytest.raises(audit.AuditError, match="replayed with mobility contract"):
        audit.replay(moved.w3, s.address, moved.home / "with.sqlite")


def test_cli_replay_and_verify_with_mobility(moved: Moved, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    db = str(tmp_path / "cli.sqlite")
    args = ["--rpc", moved.rpc, "--address", moved.s.address, "--db", db, "--mobility", moved.mobility.address]
    assert main(["audit", "replay", *args, "--quiet"]) == 0
    assert main(["audit", "verify", *args]) == 0
    assert "rebuilt state equals the contract's views" in capsys.readouterr().out
    assert main(["audit", "report", "--db", db]) == 0
    assert "1 move, " in capsys.readouterr().out
    code = main(["audit", "replay", "--rpc", moved.rpc, "--address", moved.s.address, "--db",
                 str(tmp_path / "bad.sqlite"), "--mobility", moved.s.address, "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("error: the contract at") and "Traceback" not in err
    assert main(["audit", "verify", "--rpc", moved.rpc, "--address", moved.s.address, "--db", db,
                 "--no-replay"]) != 0
    assert "replayed with mobility contract" in capsys.readouterr().err
