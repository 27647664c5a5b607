"""``fogfed tas fund`` and ``fogfed tas reissue``: gas and lost keys for members (thin layer)."""

from __future__ import annotations

from pathlib import Path

import click

from fogfed.cli.common import common_options, emit, ether_to_wei, examples, guarded
from fogfed.cli.tas_cmds import _open, tas


@tas.command("fund", short_help="Send a member ether for its gas")
@click.argument("node_address", metavar="ADDRESS")
@click.option("--amount", default="0.05", show_default=True, metavar="ETHER", help="Ether to send.")
@common_options("tas")
@guarded
@examples(
    "fogfed tas fund 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --amount 0.05",
    "fogfed tas fund 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json",
)
def tas_fund(node_address: str, amount: str, home: Path | None, rpc: str | None, ipfs: str | None,
             as_json: bool) -> None:
    """Top a member up: send it ether for gas from the TAS account."""
    from fogfed.tas.funding import fund, operations_left

    t = _open(home, rpc)
    r = fund(t, node_address, ether_to_wei(amount))
    left = operations_left(t.fed.chain, r.node)
    emit(as_json, {**r.__dict__, "operations_left": left},
         f"sent {amount} ETH to {r.node}; it can now pay for about {left} operations")


@tas.command("reissue", short_help="Deliver a member's current key again")
@click.argument("node_address", metavar="ADDRESS")
@common_options("tas")
@guarded
@examples(
    "fogfed tas reissue 0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "fogfed tas reissue 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --home ./tas --json",
)
def tas_reissue(node_address: str, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Deliver an active member's current key again (it lost its keyring); then `fogfed node join`."""
    from fogfed.protocol.keydelivery import check_address

    address = check_address(node_address, "node address")
    gas = _open(home, rpc).reissue(address)
    emit(as_json, {"node": address, "gas_used": gas},
         f"delivered {address}'s current key again; the node runs `fogfed node join` to store it")
