"""The TAS killed (SIGKILL) at every step of a move, then the same `fogfed tas move` again or `tas sync`:
the move is finished exactly once (tests/mobility/faults.py checks it against the chain and from the
node's side), a third run sends nothing, and the same request after that is only reported.

Real `fogfed` processes on one persistent embedded chain, killed at named steps (``FOGFED_KILL_AT``).
"""

from __future__ import annotations

import json
import signal

import pytest

from fogfed.chain import connect
from fogfed.node.mobility import move_request
from fogfed.protocol.move import MoveRequest
from fogfed.tas import TrustedAuthority
from fogfed.tas.mobility import MobilityAuthority
from tests.cli.helpers import PASSPHRASE
from tests.mobility.faults import MOVE_STEPS, check_moved, move_world
from tests.tas.test_faults import fogfed


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("movefaults")
    chain = connect(f"embedded:{root / 'chain'}")
    nodes = []
    tas, mobility, a, b, stayers, node = move_world(root, chain, chain.dev_accounts()[0], nodes)
    yield root, chain, tas, mobility, a, b, stayers, node
    for n in nodes:
        n.close()


#: every step finished by a retry; three (before, at and after the move's transaction) also by `tas sync`
CASES = [(s, "retry") for s in MOVE_STEPS] + [(s, "sync") for s in ("move:journal", "move:moveMember",
                                                                      "deliverKey")]


@pytest.mark.parametrize("kill_at, finish", CASES)
def test_move_killed_at_any_step_is_finished_once(world, tmp_path, kill_at: str, finish: str) -> None:
    root, chain, tas, mobility, a, b, stayers, node = world
    mover = node(f"m-{kill_at.replace(':', '-')}-{finish}", "riyadh")
    req = root / f"move-{mover.address}.json"
    req.write_text(move_request(mover, mobility, b).to_json())
    killed = fogfed(root, "tas", "move", str(req), kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (u,) = tas.status()["unfinished"]
    moved = tas.fed.member(mover.address).federation_id == b  # moveMember mined before the kill
    assert (u["request"], u["kind"], u["nodes"], u["federation_ids"], u["step"]) == (
        json.loads(req.read_text())["nonce"].removeprefix("0x"), "move", [mover.address], [b],
        "moved" if moved else "accepted")
    assert u["finish"] == ["fogfed tas sync", "fogfed tas move REQUEST"]
    if finish == "retry":
        again = fogfed(root, "tas", "move", str(req), "--json")
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["status"] == "finished"
    else:  # in this process (a CLI `tas sync` is the same call)
        TrustedAuthority.open(root / "tas", chain, PASSPHRASE).sync()
    check_moved(tas, mobility, mover, a, b, stayers, tmp_path)
    block = chain.block_number()
    assert MobilityAuthority(tas, mobility).move(MoveRequest.from_json(req.read_text())).status == "already moved"
    assert tas.sync() == [] and chain.block_number() == block
