"""``fogfed node ...``: the two-operator enrollment flow and the data path as separate processes
on the persistent embedded chain, then bad input in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fogfed.chain import FogFed, connect
from tests.cli.helpers import assert_one_line_error, ok_json, run_inproc, run_proc, tas_home


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
    out["status"] = ok_json(run_proc(root, "tas", "status", "--home", "tas", "--json"))
    out["remove"] = ok_json(run_proc(root, "tas", "remove", node["address"], "--home", "tas", "--json"))
    out["after_removal"] = run_proc(root, "node", "fetch", out["upload"]["file_id"], "-o", "again.bin",
                                    "--home", "n2")
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
        (("node", "join", "--home", "nowhere"), 1, "no node in"),
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
    assert code == 2 and "is a CID, not a file id" in err  # ids name the uploader too (issue 10, item 2)
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
