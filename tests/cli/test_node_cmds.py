"""``fogfed node ...``: the two-operator enrollment flow and the data path as separate processes
on the persistent embedded chain, then bad input in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fogfed.chain import FogFed, connect
from tests.cli.helpers import PASSPHRASE, assert_one_line_error, ok_json, run_bytes, run_inproc, run_proc, tas_home


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """TAS and two nodes in their own homes; every step a real ``fogfed`` process."""
    root = tmp_path_factory.mktemp("flow")
    tas = ok_json(run_proc(root, "tas", "init", "--home", "tas", "--json"))
    contract = tas["contract"]
    out: dict = {"root": root, "tas": tas}
    for n in ("n1", "n2"):
        node = ok_json(run_proc(root, "node", "init", "--home", n, "--contract", contract, "--json"))
        ok_json(run_proc(root, "node", "request", "--home", n, "--location", "Riyadh", "--service", "health",
                         "-o", f"{n}.json", "--json"))
        out[f"{n}_enroll"] = ok_json(run_proc(root, "tas", "enroll", f"{n}.json", "--approve", "--home", "tas",
                                              "--json"))
        out[f"{n}_join"] = ok_json(run_proc(root, "node", "join", "--home", n, "--json"))
        out[n] = node
    (root / "report.bin").write_bytes(os.urandom(300_000))
    out["upload"] = ok_json(run_proc(root, "node", "upload", "report.bin", "--home", "n1", "--json"))
    out["fetch"] = ok_json(run_proc(root, "node", "fetch", out["upload"]["file_id"], "-o", "copy.bin",
                                    "--home", "n2", "--json"))
    out["ls"] = ok_json(run_proc(root, "node", "ls", "--home", "n1", "--json"))
    out["cache"] = ok_json(run_proc(root, "node", "cache", "ls", "--home", "n2", "--json"))
    # Unix conventions: upload from stdin, fetch to stdout, never overwrite without --force
    out["stdin_upload"] = ok_json(run_bytes(root, "node", "upload", "-", "--name", "piped.bin", "--home", "n1",
                                            "--json", data=b"piped bytes\x00\xff" * 1000))
    out["to_stdout"] = run_bytes(root, "node", "fetch", out["stdin_upload"]["file_id"], "-o", "-", "--home", "n2")
    out["no_overwrite"] = run_proc(root, "node", "fetch", out["upload"]["file_id"], "-o", "copy.bin",
                                   "--home", "n2", "--json")
    out["forced"] = run_proc(root, "node", "fetch", out["upload"]["file_id"], "-o", "copy.bin", "--force",
                             "--home", "n2", "--json")
    out["ls_after"] = ok_json(run_proc(root, "node", "ls", "--home", "n1", "--json"))
    out["readable"] = ok_json(run_proc(root, "node", "ls", "--readable", "--home", "n2", "--json"))
    out["node_status"] = ok_json(run_proc(root, "node", "status", "--home", "n1", "--json"))
    out["node_live"] = ok_json(run_proc(root, "node", "status", "--live", "--home", "n1", "--json"))
    # V3 keystores: export with --passphrase-file and a separate keystore passphrase, import into a new home
    (root / "home-pass.txt").write_text(PASSPHRASE + "\n")
    (root / "v3-pass.txt").write_text("another passphrase\n")
    out["export"] = run_proc(root, "node", "export-key", "--home", "n1", "-o", "n1.v3.json", "--json",
                             "--passphrase-file", "home-pass.txt", "--keystore-passphrase-file", "v3-pass.txt",
                             FOGFED_PASSPHRASE="not the passphrase")
    out["export_again"] = run_proc(root, "node", "export-key", "--home", "n1", "-o", "n1.v3.json")
    out["import"] = run_proc(root, "node", "init", "--home", "n3", "--contract", contract, "--json",
                             "--account-keystore", "n1.v3.json", "--keystore-passphrase-file", "v3-pass.txt")
    out["status"] = ok_json(run_proc(root, "tas", "status", "--home", "tas", "--json"))
    ok_json(run_proc(root, "tas", "label", out["n1"]["address"], "gateway one", "--home", "tas", "--json"))
    out["status_text"] = run_proc(root, "tas", "status", "--home", "tas")
    out["remove"] = ok_json(run_proc(root, "tas", "remove", node["address"], "--home", "tas", "--json"))
    out["after_removal"] = run_proc(root, "node", "fetch", out["upload"]["file_id"], "-o", "again.bin",
                                    "--home", "n2")
    out["upload_after_removal"] = ok_json(run_bytes(root, "node", "upload", "-", "--name", "late.bin", "--home",
                                                    "n1", "--json", data=b"after the removal"))
    out["readable_after_removal"] = ok_json(run_proc(root, "node", "ls", "--readable", "--home", "n2", "--json"))
    out["live_after_removal"] = run_proc(root, "node", "status", "--live", "--home", "n1")
    return out


def test_enrollment_across_two_operators(flow: dict) -> None:
    for n in ("n1", "n2"):
        assert flow[f"{n}_enroll"]["node"] == flow[n]["address"]
        assert flow[f"{n}_join"]["new_keys"] == 1
    assert flow["n1_enroll"]["federation_created"] is True  # the first request created riyadh/health
    assert flow["n2_enroll"]["federation_id"] == flow["n1_enroll"]["federation_id"]
    (fed,) = flow["status"]["federations"]
    assert (fed["location"], fed["service"]) == ("riyadh", "health")
    assert sorted(fed["members"]) == sorted([flow["n1"]["address"], flow["n2"]["address"]])


def test_upload_then_fetch_in_other_processes(flow: dict) -> None:
    root = flow["root"]
    assert (root / "copy.bin").read_bytes() == (root / "report.bin").read_bytes()
    assert flow["fetch"]["source"] == "storage"  # n1 does not serve, so its announced copy is unreachable
    assert flow["upload"]["size"] == 300_000
    assert [f["file_id"] for f in flow["ls"]["files"]] == [flow["upload"]["file_id"]]
    assert len(flow["cache"]["entries"]) == 1  # n2 keeps the verified ciphertext


def test_stdin_upload_and_stdout_fetch(flow: dict) -> None:
    assert flow["stdin_upload"]["size"] == len(b"piped bytes\x00\xff" * 1000)
    assert "piped.bin" in [f["name"] for f in flow["ls_after"]["files"]]
    proc = flow["to_stdout"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"piped bytes\x00\xff" * 1000  # the plaintext, nothing else, on stdout
    assert b"wrote stdout" in proc.stderr
    assert not list((flow["root"] / "n2" / "tmp").glob("fetch-*"))  # its temp copy is gone


def test_fetch_never_overwrites_without_force(flow: dict) -> None:
    refused = flow["no_overwrite"]
    assert refused.returncode == 2 and refused.stderr == ""
    assert json.loads(refused.stdout)["error"]["message"] == "copy.bin already exists"  # the --json error form
    forced = flow["forced"]
    assert forced.returncode == 0 and json.loads(forced.stdout)["size"] == 300_000


def test_account_round_trips_through_a_v3_keystore(flow: dict) -> None:
    from eth_account import Account

    exported = ok_json(flow["export"])  # the wrong $FOGFED_PASSPHRASE lost to --passphrase-file
    path = flow["root"] / "n1.v3.json"
    assert exported["address"] == flow["n1"]["address"] and exported["kdf"] == "scrypt"
    assert path.stat().st_mode & 0o777 == 0o600
    key = Account.decrypt(json.loads(path.read_text()), "another passphrase")  # what Ape and cast do
    assert Account.from_key(key).address == flow["n1"]["address"]
    assert_one_line_error(flow["export_again"].returncode, flow["export_again"].stderr, 2, "already exists", "--force")
    assert ok_json(flow["import"])["address"] == flow["n1"]["address"]


def test_tas_status_is_readable_and_shows_labels(flow: dict) -> None:
    text = flow["status_text"]
    assert text.returncode == 0 and "{" not in text.stdout  # no Python dict reprs
    assert f"{flow['n1']['address']}  gateway one" in text.stdout
    assert "riyadh/health  epoch 0  2 members" in text.stdout
    assert "unfinished   none" in text.stdout and "[]" not in text.stdout


def test_member_lists_what_it_may_read_from_chain_events(flow: dict) -> None:
    """n2 uploaded nothing, yet sees both files of its federation (from FileRegistered events)."""
    listed = flow["readable"]
    assert listed["federation"] == flow["n2_enroll"]["federation_id"] and listed["active"] is True
    rows = {f["file_id"]: f for f in listed["files"]}
    assert set(rows) == {flow["upload"]["file_id"], flow["stdin_upload"]["file_id"]}
    assert all(r["uploader"] == flow["n1"]["address"] and r["key_held"] is True for r in rows.values())


def test_removed_member_sees_a_later_upload_as_not_readable(flow: dict) -> None:
    """key_held is the file's policy (with its member-tree cover) checked against the node's keys."""
    listed = flow["readable_after_removal"]
    rows = {f["file_id"]: f["key_held"] for f in listed["files"]}
    assert listed["active"] is False
    assert rows == {flow["upload"]["file_id"]: True, flow["stdin_upload"]["file_id"]: True,
                    flow["upload_after_removal"]["file_id"]: False}


def test_node_status_local_and_live(flow: dict) -> None:
    local, live = flow["node_status"], flow["node_live"]
    assert local["address"] == flow["n1"]["address"] and local["contract"] == flow["tas"]["contract"]
    assert local["chain"].startswith("embedded:") and "federation" not in local  # local only, no chain
    assert live["federation"] == flow["n1_enroll"]["federation_id"] and live["active"] is True
    assert {"federation": live["federation"], "epoch": live["epoch"]} in live["keys"]
    assert (live["generation"], live["current_key"]) == (0, True)
    assert live["balance_wei"] > 0


def test_a_removal_elsewhere_does_not_ask_the_others_to_join_again(flow: dict) -> None:
    """The removal advanced the epoch; n1's key still serves its tree generation (nobody is re-keyed)."""
    proc = flow["live_after_removal"]
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1, tree generation 0" in proc.stdout and "node join" not in proc.stdout


def test_removed_node_is_refused_in_one_line(flow: dict) -> None:
    assert flow["remove"]["node"] == flow["n2"]["address"]
    proc = flow["after_removal"]
    assert_one_line_error(proc.returncode, proc.stderr, 1, "not an active member")
    assert not (flow["root"] / "again.bin").exists()


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> dict:
    """In-process: a TAS, one enrolled node n1 and one node n2 that never enrolled."""
    contract = tas_home(tmp_path, monkeypatch, capsys)
    for n in ("n1", "n2"):
        assert run_inproc(capsys, "node", "init", "--home", n)[0] == 0
    assert run_inproc(capsys, "node", "request", "--home", "n1", "--location", "jeddah", "--service", "traffic",
                      "-o", "req.json")[0] == 0
    assert run_inproc(capsys, "tas", "enroll", "req.json", "--approve")[0] == 0
    (tmp_path / "f.bin").write_bytes(b"x" * 1000)
    return {"root": tmp_path, "contract": contract}


def test_bad_input_is_one_line_with_the_right_exit_code(world: dict, capsys,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        (("node", "fetch", "not-a-file-id", "--home", "n1"), 2, "file id"),
        (("node", "fetch", "0x" + "00" * 31 + "01", "--home", "n1", "-o", "x.bin"), 1, "no file"),
        (("node", "upload", "f.bin", "--home", "n1", "--policy", "loc:riyadh and ("), 2, "policy"),
        (("node", "upload", "missing.bin", "--home", "n1"), 2, "missing.bin"),
        (("node", "upload", "f.bin", "--home", "n2"), 1, "not an active member"),
        (("node", "upload", "f.bin", "--home", "n1", "--rpc", "http://127.0.0.1:9"), 1, "127.0.0.1:9"),
        (("node", "upload", "f.bin", "--home", "n1", "--ipfs", "http://127.0.0.1:9"), 1, "127.0.0.1:9"),
        (("node", "init", "--home", "n3", "--contract", "0x1234"), 2, "contract"),
        (("node", "open-nothing",), 2, "no such command"),
        (("node", "cache", "evict", "0xzz", "--home", "n1"), 2, "file id"),
        (("node", "join", "--home", "nowhere"), 2, "no node in"),  # a wrong --home is bad input, as for status
    ]
    for args, expected, words in cases:
        code, out, err = run_inproc(capsys, *args)
        if args[1] == "open-nothing":  # click's own usage error: exit 2, no traceback
            assert code == 2 and "Traceback" not in err and words in err.lower()
            continue
        assert_one_line_error(code, err, expected, words)
    assert not (world["root"] / "x.bin").exists()


def test_passphrase_problems(world: dict, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOGFED_PASSPHRASE", "not the passphrase")
    code, _, err = run_inproc(capsys, "node", "ls", "--home", "n1")
    assert_one_line_error(code, err, 2, "passphrase")
    monkeypatch.delenv("FOGFED_PASSPHRASE")  # pytest's stdin is not a terminal: no prompt possible
    code, _, err = run_inproc(capsys, "node", "ls", "--home", "n1")
    assert_one_line_error(code, err, 2, "FOGFED_PASSPHRASE")


def test_cache_commands_and_json(world: dict, capsys) -> None:
    code, out, err = run_inproc(capsys, "node", "upload", "f.bin", "--home", "n1", "--json")
    assert code == 0, err
    up = json.loads(out)
    assert up["file_id"].startswith("0x") and up["cid"].startswith("Qm") and up["announced"] is True
    code, out, _ = run_inproc(capsys, "node", "cache", "ls", "--home", "n1", "--json")
    assert [e["file_id"] for e in json.loads(out)["entries"]] == [up["file_id"]]
    code, out, _ = run_inproc(capsys, "node", "cache", "refresh", "--home", "n1", "--margin", "999999", "--json")
    assert code == 0 and json.loads(out)["reannounced"] == 1
    code, out, err = run_inproc(capsys, "node", "cache", "evict", up["cid"], "--home", "n1", "--json")
    # ids name the uploader too (issue 10, item 2); under --json the error is the JSON document on stdout
    assert code == 2 and err == "" and "is a CID, not a file id" in json.loads(out)["error"]["message"]
    code, out, _ = run_inproc(capsys, "node", "cache", "evict", up["file_id"], "--home", "n1", "--json")
    assert code == 0 and json.loads(out)["removed"] is True
    code, out, _ = run_inproc(capsys, "node", "cache", "evict", up["file_id"], "--home", "n1")
    assert code == 0 and "was not cached" in out


def test_serve_keeps_cache_announcements_fresh(world: dict, capsys) -> None:
    chain = connect(f"embedded:{world['root'] / 'chain'}")
    fed = FogFed.at(chain, world["contract"])
    fed.configure(chain.dev_accounts()[0], fed.settings().false_claim_threshold, 6)  # TAS: 6 s announcements
    code, out, err = run_inproc(capsys, "node", "upload", "f.bin", "--home", "n1", "--json")
    assert code == 0, err
    up = json.loads(out)
    file_id = bytes.fromhex(up["file_id"][2:])
    [holder] = fed.fresh_cache_holders(file_id)
    first = holder.expires_at
    assert first <= chain.timestamp() + 6
    # default interval: a third of the 6 s lifetime; each turn renews what would lapse within two turns
    code, out, err = run_inproc(capsys, "node", "serve", "--home", "n1", "--duration", "8", "--json")
    assert code == 0, err
    renewals = fed.events(names=["CacheAnnounced"], where={"fileId": file_id})
    assert len(renewals) >= 3  # the upload's announcement, then renewals while serving
    assert fed.cache_expiry(file_id, holder.holder) > first + 4
    for earlier, later in zip(renewals, renewals[1:]):  # each renewal landed before the previous one lapsed
        assert chain.w3.eth.get_block(later.block_number)["timestamp"] <= earlier.args["expiresAt"]
    assert [h.holder for h in fed.fresh_cache_holders(file_id)] == [holder.holder]  # still fresh at the end


def test_policy_help_examples_are_policies_the_node_accepts(capsys) -> None:
    import re

    from fogfed.protocol.attributes import check_user_policy

    code, out, _ = run_inproc(capsys, "node", "upload", "--help")
    assert code == 0
    text = " ".join(out.split())
    examples = re.findall(r'"([^"]+)"', text)
    assert len(examples) >= 3 and "location:" not in text and "service:" not in text
    for policy in examples:
        check_user_policy(policy)  # raises InputError for an attribute fogfed does not issue
