"""``fogfed tas ...`` in-process: federations, enrollment checks, removal, sync, watch, status, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.helpers import assert_one_line_error, run_inproc, tas_home


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Path:
    tas_home(tmp_path, monkeypatch, capsys)
    return tmp_path


def _request(capsys, node: str, location: str, service: str) -> str:
    assert run_inproc(capsys, "node", "init", "--home", node)[0] == 0
    assert run_inproc(capsys, "node", "request", "--home", node, "--location", location, "--service", service,
                      "-o", f"{node}.json")[0] == 0
    return f"{node}.json"


def test_federations_enroll_remove_sync(home: Path, capsys) -> None:
    code, out, err = run_inproc(capsys, "tas", "federation", "create", "riyadh", "health", "--json")
    assert code == 0, err
    assert json.loads(out)["federation_id"] == 1
    code, _, err = run_inproc(capsys, "tas", "federation", "create", "Riyadh", "Health")
    assert_one_line_error(code, err, 1, "FederationExists")

    req = _request(capsys, "n1", "riyadh", "health")
    code, _, err = run_inproc(capsys, "tas", "enroll", req)  # neither --approve nor an allowlist
    assert_one_line_error(code, err, 2, "refused")
    allow = home / "allow.json"
    address = json.loads((home / req).read_text())["address"]
    allow.write_text(json.dumps({address: {"location": "riyadh", "service": "health"}}))
    code, out, err = run_inproc(capsys, "tas", "enroll", req, "--allowlist", str(allow), "--json")
    assert code == 0, err
    assert json.loads(out)["federation_id"] == 1
    code, out, err = run_inproc(capsys, "tas", "enroll", req, "--approve", "--json")  # idempotent: nothing sent
    assert code == 0 and json.loads(out)["gas"] == {}, err

    code, out, _ = run_inproc(capsys, "tas", "federation", "list", "--json")
    (fed,) = json.loads(out)["federations"]
    assert fed["members"] == [address]
    code, _, err = run_inproc(capsys, "tas", "remove", address, "--reason", "x" * 257)
    assert_one_line_error(code, err, 2, "257")  # bad input: refused before the TAS opens, nothing sent
    code, out, err = run_inproc(capsys, "tas", "remove", address, "--reason", "served tampered copies", "--json")
    assert code == 0, err
    removal = json.loads(out)
    assert removal["new_epoch"] == 1 and removal["rekey"] is None and list(removal["gas"]) == ["removeMember"]
    code, out, err = run_inproc(capsys, "tas", "remove", address)  # again: said so, exit 0, nothing sent
    assert code == 0 and "already removed" in out and "nothing sent" in out, err
    code, _, err = run_inproc(capsys, "tas", "remove", "0x" + "12" * 20)
    assert_one_line_error(code, err, 2, "not a member of any federation of this TAS")
    code, _, err = run_inproc(capsys, "tas", "enroll", req, "--approve")  # removed: the old request is a replay
    assert_one_line_error(code, err, 2, "replay")
    code, out, _ = run_inproc(capsys, "tas", "sync", "--json")
    assert code == 0 and json.loads(out)["rekeyed"] == []
    code, out, _ = run_inproc(capsys, "tas", "watch", "--count", "2", "--interval", "0.1")
    assert code == 0 and out == ""
    code, out, _ = run_inproc(capsys, "tas", "status", "--json")
    status = json.loads(out)
    fed = status["federations"][0]
    assert (fed["epoch"], fed["leaves_assigned"], fed["leaves_revoked"], fed["cover_nodes"]) == (1, 1, 1, 0)
    code, out, _ = run_inproc(capsys, "tas", "watch", "--count", "2", "--interval", "0.1", "--json")
    checks = [json.loads(line) for line in out.splitlines()]  # JSON Lines: one document per check
    assert code == 0 and [c["check"] for c in checks] == [1, 2] and all(c["rekeyed"] == [] for c in checks)
    code, out, _ = run_inproc(capsys, "tas", "status")
    assert code == 0 and f"contract     {status['contract']}" in out and "{" not in out
    assert "epoch 1  0 members" in out and "nothing to re-key" in out


def test_tas_bad_input(home: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "junk.json").write_text("{not json")
    (home / "big.json").write_bytes(b" " * 100_000)
    (home / "empty").mkdir()
    cases = [
        (("tas", "enroll", "junk.json", "--approve"), 2, "not valid JSON"),
        (("tas", "enroll", "big.json", "--approve"), 2, "larger than"),
        (("tas", "enroll", "absent.json", "--approve"), 2, "cannot read"),
        (("tas", "enroll", "junk.json", "--fund", "lots"), 2, "ether"),
        (("tas", "remove", "0xnot-an-address"), 2, "address"),
        (("tas", "federation", "create", "", "health"), 2, "location"),
        (("tas", "init"), 1, "already initialised"),
        (("tas", "status", "--home", "elsewhere"), 2, "no TAS"),  # a wrong --home is bad input
        (("tas", "enroll"), 2, "no enrollment request given"),
        (("tas", "enroll", "--batch", "empty"), 2, "no *.json enrollment requests"),
        (("tas", "enroll", "junk.json", "junk.json"), 2, "given twice"),
        (("tas", "refresh", "999"), 2, "not one of this TAS"),
        (("tas", "reissue", "0x" + "12" * 20), 2, "not enrolled"),
        (("tas", "fund", "0x" + "12" * 20), 2, "not an active member"),
        (("tas", "watch", "--count", "1", "--top-up-below", "0.1", "--top-up-to", "0.05"), 2, "0 < below"),
        (("tas", "watch", "--count", "1", "--top-up-below", "0.01", "--top-up-limit", "0"), 2, "positive limit"),
        (("tas", "status", "--rpc", "http://127.0.0.1:9"), 1, "127.0.0.1:9"),
        (("tas", "status", "--rpc", "ftp://x"), 2, "http"),
    ]
    for args, expected, words in cases:
        code, out, err = run_inproc(capsys, *args)
        assert_one_line_error(code, err, expected, words)
        assert out == "", args  # refused before any work: a watch ran no check
    for args in (("tas", "refresh", "0"), ("tas", "refresh", "one"), ("tas", "refresh-policy", "--max-cover", "0"),
                 ("tas", "refresh-policy", "--max-revoked", "1.5"), ("tas", "enroll", "junk.json", "--chunk", "0"),
                 ("tas", "watch", "--interval", "0"), ("tas", "move", "absent.json")):
        code, _, err = run_inproc(capsys, *args)  # click's own usage errors
        assert code == 2 and "Usage:" in err and "Traceback" not in err, args
    monkeypatch.setenv("FOGFED_PASSPHRASE", "wrong passphrase!")
    code, _, err = run_inproc(capsys, "tas", "status")
    assert_one_line_error(code, err, 2, "passphrase")


def test_help_texts_have_examples(capsys) -> None:
    for args in (("tas",), ("tas", "enroll"), ("node",), ("node", "upload"), ("node", "fetch"), ("demo",)):
        code, out, _ = run_inproc(capsys, *args, "--help")
        assert code == 0 and "Usage:" in out
        assert "Example" in out or "fogfed" in out.split("Usage:", 1)[1]


def test_refresh_from_the_command_line(home: Path, capsys) -> None:
    req = _request(capsys, "r1", "tabuk", "health")
    code, out, err = run_inproc(capsys, "tas", "enroll", req, "--approve", "--json")
    assert code == 0, err
    fid = json.loads(out)["federation_id"]
    code, out, err = run_inproc(capsys, "tas", "refresh", str(fid), "--json")
    assert code == 0, err
    r = json.loads(out)
    assert (r["generation"], r["members"]) == (1, 1) and r["gas_used"] <= 150_000
    code, out, err = run_inproc(capsys, "node", "join", "--home", "r1", "--json")
    assert code == 0, err
    assert json.loads(out)["new_keys"] == 2  # the enrollment key and the refresh's
    code, _, err = run_inproc(capsys, "tas", "refresh", "999")
    assert_one_line_error(code, err, 2, "not one of this TAS", "fogfed tas federation list")


def test_batch_enroll_checks_all_then_enrolls_all_and_nodes_take_their_keys(home: Path, capsys) -> None:
    (home / "reqs").mkdir()
    for i in range(3):
        run_inproc(capsys, "node", "init", "--home", f"b{i}")
        assert run_inproc(capsys, "node", "request", "--home", f"b{i}", "--location", "riyadh" if i else "mecca",
                          "--service", "health", "-o", f"reqs/b{i}.json")[0] == 0
    code, _, err = run_inproc(capsys, "tas", "enroll", "--batch", "reqs")  # no approval: all refused, no gas
    assert code == 2 and "3 enrollment request(s) refused" in err and "reqs/b1.json" in err, err
    code, _, err = run_inproc(capsys, "tas", "enroll", "--batch", "empty-dir-missing")
    assert code == 2, err
    code, out, err = run_inproc(capsys, "tas", "enroll", "--batch", "reqs", "--approve", "--fund", "0.01", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert len(res["members"]) == 3 and not res["resumed"] and res["gas"]["bumpEpoch"] > 0
    assert sorted(f["newcomers"] for f in res["federations"]) == [1, 2]
    for i in range(3):  # each node finds and checks its entry in the bundle
        code, out, err = run_inproc(capsys, "node", "join", "--home", f"b{i}", "--json")
        assert code == 0 and json.loads(out)["new_keys"] == 1, err
    code, out, err = run_inproc(capsys, "tas", "enroll", "reqs/b0.json", "reqs/b1.json", "reqs/b2.json")
    assert code == 0 and "finished a batch begun earlier" in out and "0 transaction(s)" in out, err
    code, out, _ = run_inproc(capsys, "tas", "enroll", "--help")
    assert "--batch" in out and "fogfed tas enroll --batch ./requests" in out


def test_refresh_policy_remove_hint_and_sync_refresh(home: Path, capsys) -> None:
    reqs = [_request(capsys, f"p{i}", "tabuk", "health") for i in range(2)]
    for req in reqs:
        assert run_inproc(capsys, "tas", "enroll", req, "--approve")[0] == 0
    code, out, err = run_inproc(capsys, "tas", "refresh-policy", "--json")
    assert code == 0 and json.loads(out) == {"max_cover_nodes": 64, "max_revoked_fraction": 0.5, "due": {}}, err
    code, out, err = run_inproc(capsys, "tas", "refresh-policy", "--max-revoked", "0.25")
    assert code == 0 and "more than 0.25 of the leaves" in out and "no federation is due" in out, err
    code, _, err = run_inproc(capsys, "tas", "refresh-policy", "--max-revoked", "2")
    assert code == 2, err
    address = json.loads((home / reqs[0]).read_text())["address"]
    code, out, err = run_inproc(capsys, "tas", "remove", address)
    assert code == 0 and "hint: federation 1 is due for a refresh (1 of 2 leaves revoked" in out, err
    code, out, err = run_inproc(capsys, "tas", "sync", "--json")
    synced = json.loads(out)
    assert code == 0 and [r["generation"] for r in synced["refreshed"]] == [1] and synced["refresh_due"] == {}, err
    code, out, _ = run_inproc(capsys, "tas", "sync", "--json")  # done: nothing due any more
    assert code == 0 and json.loads(out)["refreshed"] == []
    code, out, _ = run_inproc(capsys, "tas", "refresh-policy", "--reset", "--json")
    assert code == 0 and json.loads(out)["max_revoked_fraction"] == 0.5
    code, out, _ = run_inproc(capsys, "tas", "status", "--json")
    fed = json.loads(out)["federations"][0]
    assert (fed["tree_generation"], fed["tree_height"], fed["leaves_assigned"], fed["leaves_revoked"]) == (1, 4, 1, 0)


def test_status_lists_unfinished_operations_readably(home: Path, capsys) -> None:
    from tests.cli.helpers import run_embedded

    single = _request(capsys, "u1", "riyadh", "health")
    (home / "reqs").mkdir()
    for i in range(3):
        _request(capsys, f"reqs/u{i + 2}", "mecca", "health")
    address = json.loads((home / single).read_text())["address"]
    assert run_inproc(capsys, "tas", "label", address, "clinic-3 gateway")[0] == 0
    assert run_embedded(home, "tas", "enroll", single, "--approve", kill_at="enroll:addMember").returncode == -9
    assert run_embedded(home, "tas", "enroll", "--batch", "reqs", "--approve",
                        kill_at="batch:fund-recorded").returncode == -9
    code, out, err = run_inproc(capsys, "tas", "status")
    assert code == 0 and "{" not in out and "None" not in out, err
    lines = out.splitlines()
    at = lines.index(next(ln for ln in lines if ln.startswith("unfinished")))
    assert "2 operation(s) cut short; `fogfed tas sync` finishes them all" in lines[at]
    assert lines[at + 1].split() == ["OPERATION", "FEDERATION", "STEP", "STARTED", "(UTC)", "NODE(S)"]
    one, batch = lines[at + 2].split(), lines[at + 4].split()
    assert one[:3] == ["enroll", "1", "member-added"] and one[-3:] == [address, "(clinic-3", "gateway)"]
    assert batch[:3] == ["enroll-batch", "2", "funding"] and batch[-2:] == ["3", "nodes"]
    assert "ago)" in lines[at + 2] and "ago)" in lines[at + 4]
    assert lines[at + 3].strip() == ("the node is a member on chain; finish: `fogfed tas sync`, or the same "
                                     "`fogfed tas enroll REQUEST.json` again")
    code, out, _ = run_inproc(capsys, "tas", "status", "--json")
    u1, u2 = json.loads(out)["unfinished"]
    assert (u1["kind"], u1["nodes"], u1["federation_ids"], u1["step"]) == ("enroll", [address], [1], "member-added")
    assert (u2["kind"], u2["node_count"], u2["federation_ids"], u2["step"]) == ("enroll-batch", 3, [2], "funding")
    assert len(u2["nodes"]) == 3 and u2["progress"] == {"done": 0, "total": 3}
    assert all(isinstance(u["started"], float) and u["finish"][0] == "fogfed tas sync" for u in (u1, u2))
    code, out, err = run_inproc(capsys, "tas", "sync")
    assert code == 0, err
    code, out, _ = run_inproc(capsys, "tas", "status")
    assert code == 0 and "unfinished   none" in out
