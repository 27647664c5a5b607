"""The chain goes away in the middle of an enrollment (SPEC section 6: "unreachable chain ... say so").

The TAS runs `fogfed tas enroll` (in-process, through fogfed.cli.main) against Anvil behind a relay
(tests/fixtures/outage.py) that is taken down at each named step of the enrollment (fogfed._faults
step names, the ones FOGFED_KILL_AT uses), or right after a transaction reached Anvil with its reply
lost. While it is down the command fails with one clear line naming the unreachable node; once it is
back a retry or `tas sync` finishes the enrollment: one federation, one MemberAdded, one funding, one
key for the current epoch, the TAS's lists equal to the chain, and nothing more sent on a third run.
The TAS uses the CLI's defaults for a JSON-RPC chain, so its transaction journal is on.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from fogfed._faults import at_step
from fogfed.chain import connect
from fogfed.tas import TrustedAuthority
from tests.cli.helpers import PASSPHRASE, cli_env, assert_one_line_error, run_inproc
from tests.fixtures.outage import RpcRelay
from tests.tas.test_faults import LIGHT, STEPS, check_member, new_request


@pytest.fixture(scope="module")
def world(tmp_path_factory, anvil_url: str):
    root = tmp_path_factory.mktemp("outages")
    direct = connect(anvil_url)
    key = Account.create()
    direct.fund(key.address, 100 * 10**18, sender=direct.dev_accounts()[7])
    TrustedAuthority.init(root / "tas", direct, PASSPHRASE, account=key, kdf=LIGHT)
    relay = RpcRelay(anvil_url).start()
    try:
        yield root, relay, TrustedAuthority.open(root / "tas", direct, PASSPHRASE)
    finally:
        relay.down()


@pytest.fixture()
def cli(world, monkeypatch, capsys):
    root, relay, _ = world
    cli_env(monkeypatch, root, relay.url)
    return lambda *args: run_inproc(capsys, *args)


def assert_unreachable(code: int, err: str, relay: RpcRelay) -> None:
    """One error line naming the node: lost mid-command, or not there when the command starts."""
    assert_one_line_error(code, err, 1, relay.url)
    assert f"error: cannot reach the Ethereum node at {relay.url}" in err and "hint: is it running?" in err, err


def finish_and_check(world, cli, ident, req: Path, location: str, finish: str) -> None:
    root, relay, tas = world
    relay.up()
    if finish == "retry":
        code, out, err = cli("tas", "enroll", str(req), "--approve", "--fund", "0.01", "--json")
        assert code == 0, err
        assert json.loads(out)["node"] == ident.address
    else:
        code, out, err = cli("tas", "sync", "--json")
        assert code == 0, err
    check_member(tas, ident, location)
    assert tas.status()["unfinished"] == [] and tas.status()["pending_keys"] == []
    sent = relay.count("eth_sendRawTransaction")
    assert cli("tas", "enroll", str(req), "--approve", "--fund", "0.01")[0] == 0  # already enrolled
    assert cli("tas", "sync")[0] == 0
    assert relay.count("eth_sendRawTransaction") == sent  # nothing sent twice
    assert json.loads((root / "tas" / "tx-journal").joinpath(  # the default journal, empty again
        f"31337-{tas.address.lower()}.json").read_text())["pending"] == {}


#: every step finished by a retry; three (before, at and after the member's addition) also by `tas sync`
CASES = [(s, "retry") for s in STEPS] + [(s, "sync") for s in ("enroll:journal", "enroll:addMember",
                                                                "enroll:fund-sent")]


@pytest.mark.parametrize("stop_at, finish", CASES)
def test_chain_stopped_at_any_step_of_enrollment(world, cli, stop_at: str, finish: str) -> None:
    root, relay, tas = world
    location = f"down{stop_at.replace(':', '').replace('-', '')}{finish}".lower()
    ident, req = new_request(root, tas, location)
    with at_step(stop_at, relay.down):
        code, _, err = cli("tas", "enroll", str(req), "--approve", "--fund", "0.01")
    assert_unreachable(code, err, relay)  # every step is followed by a chain call (the last: the member's leaf)
    code, _, err = cli("tas", "status")  # still down: says so too, before anything else
    assert_unreachable(code, err, relay)
    finish_and_check(world, cli, ident, req, location, finish)


@pytest.mark.parametrize("nth", [1, 2, 3, 4])  # createFederation, addMember, the funding, deliverKey
def test_reply_to_a_sent_transaction_lost_with_the_chain(world, cli, nth: int) -> None:
    """The transaction reached Anvil (and was mined), its answer did not come back: the retry finds it
    done on chain and does not send it again."""
    root, relay, tas = world
    location = f"lostreply{nth}"
    ident, req = new_request(root, tas, location)
    before = relay.count("eth_sendRawTransaction")
    relay.down_after("eth_sendRawTransaction", nth, deliver=False)
    code, _, err = cli("tas", "enroll", str(req), "--approve", "--fund", "0.01")
    assert_unreachable(code, err, relay)
    assert relay.count("eth_sendRawTransaction") == before + nth
    finish_and_check(world, cli, ident, req, location, "retry")
    assert relay.count("eth_sendRawTransaction") == before + 4  # each of the four sent once


def _two_members(world, cli, location: str):
    root, relay, tas = world
    members = [new_request(root, tas, location) for _ in range(2)]
    for _, req in members:
        assert cli("tas", "enroll", str(req), "--approve", "--fund", "0.01")[0] == 0
    return members


def _removal_finished(world, cli, gone, stays, location: str, finish: str, sent_before: int) -> None:
    """The retry (or sync) exits 0, the chain shows one removal with its note, nothing more is sent."""
    root, relay, tas = world
    if finish == "retry":
        code, out, err = cli("tas", "remove", gone.address, "--reason", "rogue", "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == "finished"
    else:
        code, out, err = cli("tas", "sync", "--json")
        assert code == 0, err
    removals = tas.fed.events(names=["MemberRemoved"], where={"node": gone.address})
    assert [(e.args["reason"], e.args["by"]) for e in removals] == [(1, tas.address)]
    assert [e.args["note"] for e in tas.fed.events(names=["RemovalNoted"], where={"node": gone.address})] == ["rogue"]
    assert relay.count("eth_sendRawTransaction") <= sent_before + 1  # at most the one removal, ever
    sent = relay.count("eth_sendRawTransaction")
    code, out, err = cli("tas", "remove", gone.address)
    assert code == 0 and "already removed" in out and "nothing sent" in out, err
    assert cli("tas", "sync")[0] == 0
    assert relay.count("eth_sendRawTransaction") == sent and tas.pending() == []
    assert tas.status()["unfinished"] == []
    check_member(tas, stays, location)
    assert gone.address not in tas.active_members(tas.fed.member(stays.address).federation_id)


def test_chain_lost_with_the_removal_reply(world, cli) -> None:
    """A removal is one transaction (member trees: no re-key); its reply lost with the chain, the
    retry finds it on chain, says so and exits 0; nothing else is owed."""
    root, relay, tas = world
    (gone, _), (stays, _) = _two_members(world, cli, "downremoval")
    sent = relay.count("eth_sendRawTransaction")
    relay.down_after("eth_sendRawTransaction", 1, deliver=False)
    code, _, err = cli("tas", "remove", gone.address, "--reason", "rogue")
    assert_unreachable(code, err, relay)
    relay.up()
    assert not tas.fed.member(gone.address).active  # it reached the chain
    _removal_finished(world, cli, gone, stays, "downremoval", "retry", sent)


#: after remove:removeMember nothing needs the chain (the kill tests cover that step)
@pytest.mark.parametrize("stop_at, finish", [("remove:journal", "retry"), ("remove:journal", "sync"),
                                             ("sent:removeMember", "retry")])
def test_chain_stopped_at_any_step_of_removal(world, cli, stop_at: str, finish: str) -> None:
    root, relay, tas = world
    location = f"downrm{stop_at.replace(':', '').replace('-', '')}{finish}".lower()
    (gone, _), (stays, _) = _two_members(world, cli, location)
    sent = relay.count("eth_sendRawTransaction")
    with at_step(stop_at, relay.down):
        code, _, err = cli("tas", "remove", gone.address, "--reason", "rogue")
    assert_unreachable(code, err, relay)
    relay.up()
    _removal_finished(world, cli, gone, stays, location, finish, sent)


def test_removal_in_the_mempool_when_the_chain_went_away_is_not_sent_twice(world, cli, anvil_url: str) -> None:
    """Anvil not mining: the removal waits in its mempool when the chain goes away. The retry waits for
    it (the transaction journal lists it) instead of sending a second removal, and finishes."""
    import threading

    import requests

    root, relay, tas = world
    (gone, _), (stays, _) = _two_members(world, cli, "mempoolrm")
    def rpc(method: str, *params: object) -> dict:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        return requests.post(anvil_url, json=body, timeout=10).json()

    sent = relay.count("eth_sendRawTransaction")
    rpc("evm_setAutomine", False)
    try:
        with at_step("sent:removeMember", relay.down):
            code, _, err = cli("tas", "remove", gone.address, "--reason", "rogue")
        assert_unreachable(code, err, relay)
        assert tas.fed.member(gone.address).active  # sent, not mined
        relay.up()
        miner = threading.Timer(2.0, lambda: rpc("evm_mine"))
        miner.start()
        code, out, err = cli("tas", "remove", gone.address, "--reason", "rogue", "--json")
        miner.join()
    finally:
        rpc("evm_setAutomine", True)
    assert code == 0, err
    assert json.loads(out)["status"] == "finished" and json.loads(out)["gas"] == {}
    assert relay.count("eth_sendRawTransaction") == sent + 1
    _removal_finished(world, cli, gone, stays, "mempoolrm", "sync", sent)
