"""The auditor across chain reorganisations, on an Anvil of its own (reverting it would break
other modules' histories): blocks already replayed are replaced, the checkpoint sees it on resume
or in the middle of a replay, rewinds to the common ancestor and replays, so the rebuilt state
equals the chain's again (checked by a fresh replay and by verify against the contract)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from fogfed import audit
from fogfed.chain.devnet import start_anvil
from tests.audit.history import Script, base

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def w3(tmp_path_factory: pytest.TempPathFactory):
    with start_anvil(log=tmp_path_factory.mktemp("anvil-reorg") / "anvil.log") as node:
        yield audit.connect(node.url)


def _state(result: audit.ReplayResult) -> str:
    return json.dumps(result.state, sort_keys=True)


def _rpc(w3: Web3, method: str, *params):
    reply = w3.provider.make_request(method, list(params))
    assert "error" not in reply, reply
    return reply["result"]


def _summary(r: audit.ReplayResult) -> dict:
    s = r.state
    return {"head": r.head, "events": r.total_events, "members": sorted(s["members"]),
            "files": len(s["files"]), "removals": [x["node"] for x in s["removals"]]}


def _assert_equals_chain(w3: Web3, s: Script, r: audit.ReplayResult, tmp_path: Path) -> None:
    fresh = audit.replay(w3, s.address, tmp_path / f"fresh-{r.head}.sqlite", to_block=r.head)
    assert _state(r) == _state(fresh)
    assert r.total_events == fresh.total_events
    assert audit.verify(w3, s.address, r.state, r.head) == []


def test_a_reorg_after_the_events_were_consumed_is_rewound_on_resume(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    a = s.accounts
    ids = base(s)
    fork_point = w3.eth.block_number
    snap = _rpc(w3, "evm_snapshot")
    s.enrol(ids["f1"], a[5])  # the branch that will be lost: a[5] joins, uploads; a[2] is removed
    s.upload(a[5], ids["f1"], "lost")
    s.send(s.tas, "removeMember", a[2], "rogue")
    db = tmp_path / "audit.sqlite"
    before = audit.replay(w3, s.address, db)
    assert a[5] in before.state["members"] and [x["node"] for x in before.state["removals"]] == [a[2]]

    assert _rpc(w3, "evm_revert", snap)  # the chain drops those blocks ...
    s.upload(a[1], ids["f1"], "kept")  # ... and grows another branch at the same heights
    s.enrol(ids["f2"], a[7])
    after = audit.replay(w3, s.address, db)
    assert after.reorgs == 1 and after.rewound_to is not None and after.rewound_to <= fork_point
    assert a[5] not in after.state["members"] and after.state["removals"] == []
    assert a[7] in after.state["members"] and len(after.state["files"]) == 2
    assert after.new_events == after.total_events - before.total_events
    _assert_equals_chain(w3, s, after, tmp_path)
    print("\nreorg on resume: before", _summary(before), "\n                 after ", _summary(after),
          f"\n                 rewound to block {after.rewound_to} (fork point {fork_point})")


def test_anvil_reorg_of_the_last_blocks_is_rewound(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    a = s.accounts
    ids = base(s)
    s.enrol(ids["f1"], a[5])
    s.send(s.tas, "removeMember", a[3], "rogue")
    db = tmp_path / "audit.sqlite"
    before = audit.replay(w3, s.address, db)
    assert a[3] in [x["node"] for x in before.state["removals"]]
    _rpc(w3, "anvil_reorg", 2, [])  # the last two blocks (the join and the removal) replaced by empty ones
    after = audit.replay(w3, s.address, db)
    assert after.reorgs == 1 and after.rewound_to == before.head - 2
    assert a[5] not in after.state["members"] and after.state["removals"] == []
    _assert_equals_chain(w3, s, after, tmp_path)


def test_a_reorg_during_a_replay_is_caught_between_ranges(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    a = s.accounts
    ids = base(s)
    snap = _rpc(w3, "evm_snapshot")
    for n in (5, 6, 7):
        s.enrol(ids["f1"], a[n])
    s.mine(10)
    head = w3.eth.block_number
    fired = []

    def reorganise(start: int, done: int, to: int, events: int) -> None:
        if not fired and done > s.deploy_block + 4:  # some ranges committed, more to come
            fired.append(done)
            assert _rpc(w3, "evm_revert", snap)
            s.upload(a[1], ids["f1"], "other-branch")
            s.mine(20)

    r = audit.replay(w3, s.address, tmp_path / "mid.sqlite", span=2, progress=reorganise, to_block=head)
    assert fired and r.reorgs >= 1
    assert not {a[5], a[6], a[7]} & set(r.state["members"])
    _assert_equals_chain(w3, s, r, tmp_path)


def test_confirmations_keep_the_newest_blocks_out_of_the_replay(w3: Web3, tmp_path: Path) -> None:
    s = Script(w3)
    a = s.accounts
    ids = base(s)
    s.enrol(ids["f1"], a[5])
    head = w3.eth.block_number
    r = audit.replay(w3, s.address, tmp_path / "deep.sqlite", confirmations=1)
    assert r.head == head - 1 and a[5] not in r.state["members"]  # the join has no block on top yet
    s.mine(1)
    r = audit.replay(w3, s.address, tmp_path / "deep.sqlite", confirmations=1)
    assert r.head == head and a[5] in r.state["members"]
    with pytest.raises(audit.AuditError, match="confirmations"):
        audit.replay(w3, s.address, tmp_path / "x.sqlite", confirmations="bogus")
