"""The chain goes away in the middle of `fogfed tas move` (Anvil behind a relay, tests/fixtures/outage.py).

The TAS runs `tas move` in-process through fogfed.cli.main; the relay is taken down at each named
step of the move (the FOGFED_KILL_AT names) or right after a transaction reached Anvil with its reply
lost. While it is down the command fails with one line naming the node; once it is back the same
request again, or `tas sync`, finishes the move exactly once (tests/mobility/faults.py: checked
against the chain and from the node's side: it reads new files of the destination and not those of
the source), and nothing is sent on a third run.
"""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from fogfed._faults import at_step
from fogfed.chain import connect
from fogfed.node.mobility import move_request
from fogfed.tas.revocation import RefreshPolicy
from tests.cli.helpers import cli_env, run_inproc
from tests.fixtures.outage import RpcRelay
from tests.mobility.faults import check_moved, move_world
from tests.tas.test_outages import assert_unreachable


@pytest.fixture(scope="module")
def world(tmp_path_factory, anvil_url: str):
    root = tmp_path_factory.mktemp("moveoutages")
    direct = connect(anvil_url)
    key = Account.create()
    direct.fund(key.address, 100 * 10**18, sender=direct.dev_accounts()[5])
    nodes = []
    # these tests count the transactions a move sends; the moves pile revoked leaves up in the source, and a
    # sync would start a new generation there (tests/tas/test_tree_growth.py tests that): not here
    tas, mobility, a, b, stayers, node = move_world(
        root, direct, key, nodes, RefreshPolicy(max_cover_nodes=1 << 20, max_revoked_fraction=1.0))
    relay = RpcRelay(anvil_url).start()
    try:
        yield root, relay, tas, mobility, a, b, stayers, node
    finally:
        relay.down()
        for n in nodes:
            n.close()


@pytest.fixture()
def cli(world, monkeypatch, capsys):
    root, relay = world[0], world[1]
    cli_env(monkeypatch, root, relay.url)
    return lambda *args: run_inproc(capsys, *args)


def _mover(world, name: str):
    root, _, _, mobility, _, b, _, node = world
    mover = node(name, "riyadh")
    req = root / f"move-{mover.address}.json"
    req.write_text(move_request(mover, mobility, b).to_json())
    return mover, req


def _finish(world, cli, mover, req, finish: str, tmp_path) -> None:
    root, relay, tas, mobility, a, b, stayers, _ = world
    relay.up()
    if finish == "retry":
        code, out, err = cli("tas", "move", str(req), "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == "finished"
    else:
        code, _, err = cli("tas", "sync", "--json")
        assert code == 0, err
    check_moved(tas, mobility, mover, a, b, stayers, tmp_path)
    sent = relay.count("eth_sendRawTransaction")
    code, out, err = cli("tas", "move", str(req))
    assert code == 0 and "already moved" in out and "nothing sent" in out, err
    assert cli("tas", "sync")[0] == 0
    assert relay.count("eth_sendRawTransaction") == sent  # nothing sent twice
    assert json.loads((root / "tas" / "tx-journal").joinpath(
        f"31337-{tas.address.lower()}.json").read_text())["pending"] == {}


#: every step followed by a chain call; after move:deliverKey only local work is left
CASES = [("move:journal", "retry"), ("move:journal", "sync"), ("sent:moveMember", "retry"),
         ("move:moveMember", "retry"), ("move:moveMember", "sync"), ("sent:deliverKey", "retry"),
         ("deliverKey", "retry")]


@pytest.mark.parametrize("stop_at, finish", CASES)
def test_chain_stopped_at_any_step_of_a_move(world, cli, tmp_path, stop_at: str, finish: str) -> None:
    relay = world[1]
    mover, req = _mover(world, f"down-{stop_at.replace(':', '-')}-{finish}")
    with at_step(stop_at, relay.down):
        code, _, err = cli("tas", "move", str(req))
    assert_unreachable(code, err, relay)
    code, _, err = cli("tas", "status")  # still down: says so too
    assert_unreachable(code, err, relay)
    _finish(world, cli, mover, req, finish, tmp_path)


@pytest.mark.parametrize("nth", [1, 2])  # moveMember, deliverKey
def test_reply_to_a_move_transaction_lost_with_the_chain(world, cli, tmp_path, nth: int) -> None:
    """The transaction reached Anvil (and was mined), its answer did not come back: the retry finds it
    done on chain and does not send it again."""
    relay = world[1]
    mover, req = _mover(world, f"lost-{nth}")
    before = relay.count("eth_sendRawTransaction")
    relay.down_after("eth_sendRawTransaction", nth, deliver=False)
    code, _, err = cli("tas", "move", str(req))
    assert_unreachable(code, err, relay)
    assert relay.count("eth_sendRawTransaction") == before + nth
    _finish(world, cli, mover, req, "retry", tmp_path)
    assert relay.count("eth_sendRawTransaction") == before + 2  # each of the two sent once
