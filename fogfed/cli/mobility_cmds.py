"""Mobility commands on the existing groups: `fogfed tas mobility-deploy/move`, `fogfed node move/send/recv`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fogfed.cli.common import (common_options, emit, examples, guarded, read_input_file)
from fogfed.cli.node_cmds import _open as open_node
from fogfed.cli.node_cmds import node
from fogfed.cli.tas_cmds import _open as open_tas
from fogfed.cli.tas_cmds import tas
from fogfed.errors import InputError

_MOBILITY = click.option("--mobility", envvar="FOGFED_MOBILITY", metavar="ADDRESS", required=True,
                         help="The FogFedMobility contract (fogfed tas mobility-deploy; or $FOGFED_MOBILITY).")
_TAS_MOBILITY = click.option("--mobility", envvar="FOGFED_MOBILITY", metavar="ADDRESS",
                             help="The FogFedMobility contract (default: the one this TAS deployed or used; "
                                  "or $FOGFED_MOBILITY).")
MAX_MOVE_REQUEST = 64 * 1024


def _mobility(fed: Any, address: str) -> Any:
    from fogfed.chain.mobility import FogFedMobility

    return FogFedMobility.at(fed.chain, address, fed)


def _authority(t: Any, address: str | None) -> Any:
    """The TAS's mobility operations on ``address``, or on the contract the TAS recorded."""
    from fogfed.tas.mobility import MobilityAuthority

    mob = _mobility(t.fed, address) if address else t.mobility
    if mob is None:
        raise InputError("this TAS has no mobility contract yet",
                         "deploy one (fogfed tas mobility-deploy) or give --mobility ADDRESS")
    return MobilityAuthority(t, mob)


@tas.command("mobility-deploy", short_help="Deploy FogFedMobility for this TAS's FogFed")
@common_options("tas")
@guarded
@examples(
    'fogfed tas mobility-deploy',
    'fogfed tas mobility-deploy --json | jq -r .mobility',
)
def tas_mobility_deploy(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Deploy FogFedMobility for this TAS's FogFed and grant it the operator role (admin only).

    The TAS records it for `fogfed tas move`. Backward secrecy needs no
    setting: covers hold only the leaves assigned when a file was uploaded.
    """
    from fogfed.chain.mobility import deploy_mobility

    t = open_tas(home, rpc, ipfs)
    if t.mobility is not None:
        raise InputError(f"this TAS already uses the mobility contract {t.mobility.address}",
                         f"export FOGFED_MOBILITY={t.mobility.address}")
    mob = t.use_mobility(deploy_mobility(t.fed.chain, t.account, t.fed))
    emit(as_json, {"mobility": mob.address}, f"mobility contract {mob.address}\nexport FOGFED_MOBILITY={mob.address}")


@tas.command("move", short_help="Hand a node over to another federation")
@click.argument("request", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@_TAS_MOBILITY
@common_options("tas")
@guarded
@examples(
    'fogfed tas move move-req.json',
    'fogfed tas move move-req.json --mobility 0xMobility --json',
)
def tas_move(request: Path, mobility: str | None, home: Path | None, rpc: str | None, ipfs: str | None,
             as_json: bool) -> None:
    """Hand a node over to another federation after checking its on-chain record (fogfed node move).

    Safe to run again: the same request finishes a move that a kill or an
    unreachable chain interrupted (`fogfed tas sync` does too), sends nothing
    twice, and only reports a move that already completed.
    """
    from fogfed.protocol.move import MoveRequest

    req = MoveRequest.from_json(read_input_file(request, "move request", MAX_MOVE_REQUEST))
    res = _authority(open_tas(home, rpc, ipfs), mobility).move(req)

    def text() -> str:
        where = f"{res.node}: federation {res.from_federation} -> {res.to_federation}"
        if res.status == "already moved":
            return f"already moved {where} by this request; nothing sent"
        head = "finished the interrupted move of" if res.status == "finished" else "moved"
        sent = "one key delivered" if "deliverKey" in res.gas else "its key was already delivered"
        return (f"{head} {where} (record found {res.level} level(s) up), {sent}; "
                "its old leaf is revoked, nobody re-keyed")
    emit(as_json, res, text)


@node.command("move", short_help="Ask to be handed over to another federation")
@click.option("--to", "to_federation", type=click.IntRange(min=1, max=2**32 - 1), help="Destination federation id.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the request here.")
@click.option("--finish", is_flag=True, help="After the TAS moved the node: pull the key for the destination.")
@_MOBILITY
@common_options("node")
@guarded
@examples(
    'fogfed node move --to 2 -o move-req.json',
    'fogfed node move --finish',
)
def node_move(to_federation: int | None, output: Path | None, finish: bool, mobility: str, home: Path | None,
              rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Ask to be handed over to another federation with the current device keys (signed request)."""
    from fogfed.node.mobility import move_request

    if finish == (to_federation is not None):
        raise InputError("give either --to FEDERATION (make a request) or --finish (pull the keys after the move)")
    with open_node(home, rpc, ipfs) as n:
        mob = _mobility(n.fed, mobility)
        if finish:
            keys = n.refresh_keys()
            emit(as_json, {"keys": keys}, f"{keys} new key(s)" + ("" if keys else
                 " (the TAS has not moved this node yet, or its key is already here)"))
            return
        _check_destination(n, to_federation)
        text = move_request(n, mob, to_federation).to_json()
    if output is None:
        click.echo(text)
    else:
        output.write_text(text)
        emit(as_json, {"request": str(output)}, f"wrote {output}; give it to the TAS: fogfed tas move {output}")


def _check_destination(n: Any, to_federation: int) -> None:
    """Free view calls before the TAS spends gas: the destination exists and is not the node's own."""
    if to_federation > n.fed.settings().federation_count:
        raise InputError(f"there is no federation {to_federation}",
                         "the TAS operator lists them: fogfed tas status")
    current, active = n.membership()
    if active and current == to_federation:
        raise InputError(f"this node is already a member of federation {to_federation}")


@node.command("send", short_help="Encrypt a message to a node or a federation")
@click.option("--to", "recipient", metavar="ADDRESS", help="A node: sealed to its key on chain.")
@click.option("--federation", type=click.IntRange(min=1, max=2**32 - 1), help="A federation: CP-ABE for its members.")
@click.option("--message", help="The text to send (or --file).")
@click.option("--file", "file_", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--expect-key", metavar="HEX", help="The recipient key you know; refuse if the chain shows another.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), required=True,
              help="Write the message blob here (- for stdout).")
@common_options("node")
@guarded
@examples(
    'fogfed node send --to 0xNodeAddress --message "cache warm-up at 02:00" -o msg.json',
    'fogfed node send --federation 1 --file notice.txt -o msg.json',
    'fogfed node send --to 0xNodeAddress --message hi -o - | ssh peer fogfed node recv -',
)
def node_send(recipient: str | None, federation: int | None, message: str | None, file_: Path | None,
              expect_key: str | None, output: Path, home: Path | None, rpc: str | None, ipfs: str | None,
              as_json: bool) -> None:
    """Encrypt a message to a node or a federation with the keys published on chain."""
    if str(output) == "-" and as_json:
        raise InputError("-o - and --json both want stdout", "write the message to a path, or drop --json")
    from fogfed.node.messaging import MAX_MESSAGE, send_to_federation, send_to_node
    from fogfed.protocol.keydelivery import check_address

    if (recipient is None) == (federation is None) or (message is None) == (file_ is None):
        raise InputError("give one of --to/--federation and one of --message/--file")
    body = message.encode() if message is not None else read_input_file(file_, "message file", MAX_MESSAGE)
    key = None
    if expect_key is not None:
        try:
            key = bytes.fromhex(expect_key.removeprefix("0x"))
        except ValueError:
            key = b""
        if len(key) != 32:
            raise InputError("--expect-key must be 32 bytes of hex")
    with open_node(home, rpc, ipfs) as n:
        blob = send_to_node(n, check_address(recipient, "recipient"), body, expected_key=key) if recipient \
            else send_to_federation(n, federation, body)
    if str(output) == "-":
        click.get_binary_stream("stdout").write(blob)
        click.echo(f"wrote {len(blob)} bytes to stdout", err=True)
        return
    output.write_bytes(blob)
    emit(as_json, {"message": str(output), "bytes": len(blob)}, f"wrote {output} ({len(blob)} bytes)")


@node.command("recv", short_help="Verify and open a message")
@click.argument("message", type=click.Path(dir_okay=False, exists=True, allow_dash=True, path_type=Path))
@common_options("node")
@guarded
@examples(
    'fogfed node recv msg.json',
    'ssh peer fogfed node send --to 0xMe --message hi -o - | fogfed node recv -',
    'fogfed node recv msg.json --json | jq -r .body',
)
def node_recv(message: Path, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Verify and open a message (sender on chain, key, freshness, replay); MESSAGE - reads stdin."""
    from fogfed.node.messaging import MAX_BLOB, receive

    if str(message) == "-":
        blob = click.get_binary_stream("stdin").read(MAX_BLOB + 1)
        if len(blob) > MAX_BLOB:
            raise InputError(f"the message on stdin is larger than {MAX_BLOB} bytes", "is it really a message?")
    else:
        blob = read_input_file(message, "message", MAX_BLOB)
    with open_node(home, rpc, ipfs) as n:
        msg = receive(n, blob)
    emit(as_json, {"sender": msg.sender, "kind": msg.kind, "federation": msg.federation_id,
                   "timestamp": msg.timestamp, "body": msg.body.decode("utf-8", "replace")},
         lambda: f"from {msg.sender} ({msg.kind}):\n{msg.body.decode('utf-8', 'replace')}")
