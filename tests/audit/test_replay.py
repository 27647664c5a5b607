"""Replay and rebuild: the state rebuilt from events alone equals the contract's views."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from fogfed import audit
from fogfed.chain.artifacts import load_artifact
from tests.audit.conftest import Replayed
from tests.audit.history import Script, base, clean_history

pytestmark = pytest.mark.anvil


def test_every_abi_event_has_a_handler() -> None:
    names = {e["name"] for e in load_artifact()["abi"] if e["type"] == "event"}
    assert names - audit.HANDLED_EVENTS == set(), "events the rebuild ignores"


def test_every_view_verify_reads_is_in_the_abi() -> None:
    from fogfed.audit.verify import VIEWS_READ

    views = {e["name"] for e in load_artifact()["abi"]
             if e["type"] == "function" and e["stateMutability"] == "view"}
    assert set(VIEWS_READ) <= views


def test_clean_history_emits_every_event_kind(clean: Replayed) -> None:
    with audit.Checkpoint.open(clean.db) as cp:
        seen = {e.name for e in cp.events()}
    assert seen == {e["name"] for e in load_artifact()["abi"] if e["type"] == "event"}


def test_replayed_state_equals_the_contract_at_the_same_block(w3: Web3, clean: Replayed) -> None:
    r = clean.result
    assert r.start_block == clean.script.deploy_block
    assert r.state["unhandled"] == {}
    assert audit.verify(w3, clean.script.address, r.state, r.head) == []
    s = r.state
    a = clean.script.accounts
    assert len(s["federations"]) == 3 and len(s["files"]) == 4
    removals = {(x["node"], x["automatic"]) for x in s["removals"]}
    assert removals == {(a[3], True), (a[4], False), (a[6], False)}
    assert [h["kind"] for h in s["members"][a[3]]["history"]] == [
        "joined", "false_claim", "false_claim", "removed", "joined"]
    assert [h["kind"] for h in s["members"][a[6]]["history"]] == ["joined", "key_delivered", "removed", "joined"]
    assert s["accesses"] == {"granted": 2, "denied": 4}  # 2 of them a[3]'s strikes
    assert s["files"]["0x" + clean.ids["file_a"].hex()]["shared_with"] == [clean.ids["f2"]]
    assert s["members"][a[1]]["endpoint"].startswith("http://10.0.0.1:8123/")
    assert len(s["damage"]) == 1 and s["damage"][0]["uploader"] == a[1]


def test_verify_catches_a_state_that_differs_from_the_chain(w3: Web3, clean: Replayed) -> None:
    state = json.loads(json.dumps(clean.result.state))
    a = clean.script.accounts
    state["members"][a[1]]["active"] = False
    state["files"]["0x" + clean.ids["file_b"].hex()]["epoch"] = 7
    state["federations"]["2"]["epoch"] += 1
    found = audit.verify(w3, clean.script.address, state, clean.result.head)
    assert {f.subject for f in found} == {a[1], "file 0x" + clean.ids["file_b"].hex(), "federation 2"}
    assert all(f.kind == "state_mismatch" for f in found)


def test_verify_uses_the_replayed_block_not_the_head(w3: Web3, clean: Replayed) -> None:
    # A later change on chain must not show up when verifying the earlier block.
    s = clean.script
    f1 = clean.ids["f1"]
    s.send(s.tas, "bumpEpoch", f1, s.c.functions.federation(f1).call()[2], b"\x07" * 32)
    assert audit.verify(w3, s.address, clean.result.state, clean.result.head) == []
    found = audit.verify(w3, s.address, clean.result.state, w3.eth.block_number)
    assert [f.subject for f in found] == ["federation 1"]


def _state(result: audit.ReplayResult) -> str:
    return json.dumps(result.state, sort_keys=True)


def test_resume_from_a_checkpoint_equals_a_full_replay(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    clean_history(s)
    head = w3.eth.block_number
    full = audit.replay(w3, s.address, tmp_path / "full.sqlite")
    middle = (s.deploy_block + head) // 2
    first = audit.replay(w3, s.address, tmp_path / "parts.sqlite", to_block=middle)
    assert first.head == middle and first.resumed_from is None
    second = audit.replay(w3, s.address, tmp_path / "parts.sqlite")
    assert second.resumed_from == middle and second.head == head
    assert first.new_events + second.new_events == full.total_events == second.total_events
    assert _state(second) == _state(full)


def test_an_interrupted_replay_resumes_after_the_last_committed_range(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    clean_history(s)
    full = audit.replay(w3, s.address, tmp_path / "full.sqlite")
    calls = []

    def crash(start: int, done: int, head: int, events: int) -> None:
        calls.append(done)
        if len(calls) == 3:
            raise KeyboardInterrupt

    db = tmp_path / "crash.sqlite"
    with pytest.raises(KeyboardInterrupt):
        audit.replay(w3, s.address, db, span=4, progress=crash)
    with audit.Checkpoint.open(db) as cp:
        assert cp.last_block == calls[-1]  # the range being reported was committed
    resumed = audit.replay(w3, s.address, db)
    assert resumed.resumed_from == calls[-1]
    assert _state(resumed) == _state(full)
    assert resumed.total_events == full.total_events


def test_small_ranges_give_the_same_state(w3: Web3, clean: Replayed, tmp_path: Path) -> None:
    r = audit.replay(w3, clean.script.address, tmp_path / "small.sqlite", span=1,
                     to_block=clean.result.head)
    assert _state(r) == _state(clean.result)


def test_restore_from_the_checkpoint_needs_no_network(clean: Replayed) -> None:
    with audit.Checkpoint.open(clean.db) as cp:
        restored = audit.restore(cp).data
    assert json.dumps(restored, sort_keys=True) == _state(clean.result)
    # Same order too (reports list federations, members and files in chain order).
    assert json.dumps(restored) == json.dumps(clean.result.state)


def test_the_embedded_chain_replays_and_verifies(tmp_path: Path) -> None:
    # The persistent embedded chain (py-evm) the other commands share, selected as embedded:<dir>.
    w3 = audit.connect(f"embedded:{tmp_path / 'chain'}")
    s = Script(w3)
    ids = base(s)
    s.send(s.accounts[7], "recordAccess", ids["file_a"])
    r = audit.replay(w3, s.address, tmp_path / "embedded.sqlite")
    assert r.start_block == s.deploy_block and r.total_events > 5
    assert r.state["accesses"] == {"granted": 0, "denied": 1}
    assert audit.verify(w3, s.address, r.state, r.head) == []
