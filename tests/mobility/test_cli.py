"""`fogfed tas mobility-deploy/move` and `fogfed node move/send/recv` in-process on the persistent chain."""

from __future__ import annotations

import json
import subprocess

from tests.cli.helpers import FOGFED, assert_one_line_error, run_inproc, tas_home


def _ok(capsys, *args):
    code, out, err = run_inproc(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_move_and_messages_from_the_command_line(tmp_path, monkeypatch, capsys):
    tas_home(tmp_path, monkeypatch, capsys)
    monkeypatch.setenv("FOGFED_MOBILITY", _ok(capsys, "tas", "mobility-deploy")["mobility"])
    region = _ok(capsys, "tas", "federation", "create", "region", "health")
    parent = str(region["federation_id"])
    for loc in ("riyadh", "jeddah"):
        _ok(capsys, "tas", "federation", "create", loc, "health", "--parent", parent)
    for name, loc in (("n1", "riyadh"), ("n2", "jeddah")):
        _ok(capsys, "node", "init", "--home", name)
        _ok(capsys, "node", "request", "--home", name, "--location", loc, "--service", "health", "-o", f"{name}.json")
        _ok(capsys, "tas", "enroll", f"{name}.json", "--approve")
        _ok(capsys, "node", "join", "--home", name)
    code, _, err = run_inproc(capsys, "node", "move", "--home", "n1", "--to", "9", "-o", "move.json")
    assert_one_line_error(code, err, 2, "there is no federation 9", "tas status")  # a free view, before any gas
    code, _, err = run_inproc(capsys, "node", "move", "--home", "n1", "--to", "2", "-o", "move.json")
    assert_one_line_error(code, err, 2, "already a member of federation 2")
    assert not (tmp_path / "move.json").exists()

    _ok(capsys, "node", "move", "--home", "n1", "--to", "3", "-o", "move.json")
    moved = _ok(capsys, "tas", "move", "move.json")
    assert (moved["from_federation"], moved["to_federation"], moved["level"]) == (2, 3, 1)
    assert _ok(capsys, "node", "move", "--home", "n1", "--finish")["keys"] == 1
    again = _ok(capsys, "tas", "move", "move.json")  # the same request again: reported, nothing sent
    assert (again["status"], again["gas"], again["to_federation"]) == ("already moved", {}, 3)
    _ok(capsys, "node", "move", "--home", "n1", "--to", "2", "-o", "back.json")
    _ok(capsys, "tas", "move", "back.json")
    code, _, err = run_inproc(capsys, "tas", "move", "move.json")  # the node moved on: now a replay
    assert_one_line_error(code, err, code or 1, "replay")

    n2 = json.loads((tmp_path / "n2.json").read_text())["address"]
    _ok(capsys, "node", "send", "--home", "n1", "--to", n2, "--message", "hello n2", "-o", "msg.bin")
    assert _ok(capsys, "node", "recv", "--home", "n2", "msg.bin")["body"] == "hello n2"
    code, _, err = run_inproc(capsys, "node", "recv", "--home", "n2", "msg.bin")
    assert_one_line_error(code, err, code or 1, "replay")
    # -o - and recv -: the blob travels through a pipe (real processes, the same environment)
    sent = subprocess.run([str(FOGFED), "node", "send", "--home", "n1", "--to", n2, "--message", "piped", "-o", "-"],
                          capture_output=True, cwd=tmp_path, timeout=300)
    assert sent.returncode == 0 and b"bytes to stdout" in sent.stderr, sent.stderr
    got = subprocess.run([str(FOGFED), "node", "recv", "--home", "n2", "-", "--json"], input=sent.stdout,
                         capture_output=True, cwd=tmp_path, timeout=300)
    assert got.returncode == 0 and json.loads(got.stdout)["body"] == "piped", got.stderr
    code, _, err = run_inproc(capsys, "node", "send", "--home", "n1", "--to", n2, "--message", "x", "-o", "m2.bin",
                              "--expect-key", "11" * 32)
    assert_one_line_error(code, err, code or 1, "pinned")
    code, _, err = run_inproc(capsys, "node", "move", "--home", "n2")
    assert_one_line_error(code, err, code or 1, "--to")


def _join(capsys, name, loc):
    _ok(capsys, "node", "init", "--home", name)
    _ok(capsys, "node", "request", "--home", name, "--location", loc, "--service", "health", "-o", f"{name}.json")
    joined = _ok(capsys, "tas", "enroll", f"{name}.json", "--approve")
    _ok(capsys, "node", "join", "--home", name)
    return joined


def test_plain_enroll_rekeys_nobody_with_or_without_a_mobility_contract(tmp_path, monkeypatch, capsys):
    tas_home(tmp_path, monkeypatch, capsys)
    _join(capsys, "n1", "riyadh")
    second = _join(capsys, "n2", "riyadh")
    assert (second["epoch"], second["leaf"]) == (0, 1) and set(second["gas"]) == {"addMember", "deliverKey", "fund"}
    assert not {"newcomer_rekey", "history_epochs"} & set(second)  # removed (issue 13): always null

    deployed = _ok(capsys, "tas", "mobility-deploy")["mobility"]  # recorded by the TAS; no FOGFED_MOBILITY set
    assert _ok(capsys, "tas", "status")["mobility"] == deployed
    code, _, err = run_inproc(capsys, "tas", "mobility-deploy")
    assert_one_line_error(code, err, code or 1, "already uses", deployed)
    third = _join(capsys, "n3", "riyadh")  # still nobody re-keyed: covers give backward secrecy
    assert (third["epoch"], third["leaf"]) == (0, 2)
    assert set(third["gas"]) == {"addMember", "deliverKey", "fund"}
    again = _ok(capsys, "tas", "enroll", "n3.json", "--approve")  # the same request: reported, nothing sent
    assert again["gas"] == {} and again["leaf"] == 2
    status = _ok(capsys, "tas", "status")["federations"][0]
    assert (status["epoch"], status["leaves_assigned"], status["leaves_revoked"]) == (0, 3, 0)
