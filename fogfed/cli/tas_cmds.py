"""``fogfed tas ...``: the trusted authority operator's commands (thin layer over fogfed.tas)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from fogfed.cli import cli
from fogfed.cli.common import (common_options, connect_chain, emit, ether_to_wei, guarded, open_content_store,
                               passphrase, read_input_file, role_home, to_plain)

KEY_HELP = ("The TAS's Ethereum account is FOGFED_PRIVATE_KEY (0x-hex) when set, otherwise the "
            "devnet's first default account (funded on the embedded chain, Anvil and Ganache); `tas init` "
            "refuses that published key outside the embedded chain unless --allow-devnet-key is given.")


@cli.group()
def tas() -> None:
    """Trusted authority: set up the system, federations, enroll and remove fog nodes.

    \b
    Typical session (embedded chain and store, no server needed):
      export FOGFED_PASSPHRASE=...            # or be asked on the terminal
      fogfed tas init                          # Algorithm 1 (+5: deploys FogFed)
      fogfed tas federation create riyadh health
      fogfed tas enroll req.json --approve     # a request from `fogfed node request`
      fogfed tas remove 0xNodeAddress          # Algorithm 10: revoke (one transaction)
    """


def _open(home: Path | None, rpc: str | None, ipfs: str | None = None) -> Any:
    from fogfed.tas import TrustedAuthority

    tas = TrustedAuthority.open(role_home(home, "tas"), connect_chain(rpc), passphrase())
    tas.use_store(open_content_store(ipfs))  # keys go to the content store, a reference on chain
    return tas


@tas.command("init")
@common_options("tas")
@click.option("--contract", metavar="ADDRESS",
              help="Use this already deployed FogFed instead of deploying one (Algorithm 5).")
@click.option("--scheme", type=click.Choice(["fabeo", "fame", "bsw07"]), default="fabeo", show_default=True,
              help="CP-ABE scheme for the whole system.")
@click.option("--allow-devnet-key", is_flag=True,
              help="With --rpc, accept the devnet's published default account as TAS (anyone can then act "
                   "as the TAS: for throw-away devnets only).")
@guarded
def tas_init(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool, contract: str | None,
             scheme: str, allow_devnet_key: bool) -> None:
    """Set up the system (paper Algorithm 1) and deploy FogFed (Algorithm 5).

    Writes the master key, encrypted with the passphrase, to the home folder,
    and prints the contract address nodes need (`fogfed node init --contract`).

    \b
    Example:
      FOGFED_PASSPHRASE=s3cret fogfed tas init --home ./tas
    """
    from fogfed.tas import TrustedAuthority

    from fogfed.chain.connection import is_published_dev_key
    from fogfed.errors import InputError

    chain = connect_chain(rpc)
    # dev_accounts() puts FOGFED_PRIVATE_KEY first when it is set
    account = chain.dev_accounts()[0]
    if not chain.is_embedded and is_published_dev_key(account):
        if not allow_devnet_key:
            raise InputError(f"the TAS account would be {account.address}, the devnet's published default "
                             "account: anyone could remove members and take the admin role",
                             "set FOGFED_PRIVATE_KEY to a key of your own, or pass --allow-devnet-key "
                             "on a throw-away devnet")
        click.echo(f"WARNING: the TAS account {account.address} is the devnet's PUBLISHED default account; "
                   "anyone can act as this TAS. Use it on a throw-away devnet only.", err=True)
    t = TrustedAuthority.init(role_home(home, "tas"), chain, passphrase(confirm=True), fed=contract,
                              account=account, scheme=scheme)
    info = {"home": role_home(home, "tas"), "contract": t.contract_address, "tas": t.address,
            "chain_id": t.chain_id, "scheme": scheme}
    emit(as_json, info, lambda: (
        f"TAS ready in {info['home']}\n"
        f"contract {t.contract_address} on chain {info['chain_id']}, TAS account {t.address}\n"
        f"next: export FOGFED_CONTRACT={t.contract_address}   (nodes need it for `fogfed node init`)"))


tas_init.help = (tas_init.help or "") + "\n\n" + KEY_HELP


@tas.group("federation")
def federation() -> None:
    """Create and list fog federations (one per location and service)."""


def _fed_line(f: Any) -> str:
    members = len(f.members)
    return (f"federation {f.federation_id}: location={f.location} service={f.service} "
            f"epoch={f.epoch} members={members}" + (f" parent={f.parent}" if f.parent else ""))


@federation.command("create")
@click.argument("location")
@click.argument("service")
@click.option("--parent", type=click.IntRange(min=0), default=0, show_default=True,
              help="Parent federation id (0: a root federation).")
@common_options("tas")
@guarded
def federation_create(location: str, service: str, parent: int, home: Path | None, rpc: str | None,
                      ipfs: str | None, as_json: bool) -> None:
    """Create the federation for LOCATION and SERVICE (paper Algorithm 6).

    \b
    Example:
      fogfed tas federation create riyadh health
    """
    f = _open(home, rpc, ipfs).create_federation(location, service, parent)
    emit(as_json, f, lambda: f"created {_fed_line(f)}" + (f", gas {f.gas_used:,}" if f.gas_used else ""))


@federation.command("list")
@common_options("tas")
@guarded
def federation_list(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """List every federation recorded on chain."""
    feds = _open(home, rpc, ipfs).federations()
    emit(as_json, {"federations": feds},
         lambda: "\n".join(_fed_line(f) for f in feds) if feds else "no federations yet")


@tas.command("enroll")
@click.argument("request_file", metavar="REQUEST.json", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--approve", is_flag=True,
              help="You checked the node's location and service yourself: accept them.")
@click.option("--allowlist", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help='Accept nodes listed as {"0xAddress": {"location": ..., "service": ...}}.')
@click.option("--fund", default="0.05", show_default=True, metavar="ETHER",
              help="Ether sent to the node for its gas (0: none).")
@common_options("tas")
@guarded
def tas_enroll(request_file: Path, approve: bool, allowlist: Path | None, fund: str, home: Path | None,
               rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Enroll the node that wrote REQUEST.json (paper Algorithms 2, 7 and 3).

    Checks the request's signature, chain, contract and age; verifies the
    attributes (--approve or --allowlist); assigns the node to the federation
    of its location and service (created if none exists); registers it on
    chain (the contract's event order gives it a fresh leaf of the
    federation's member tree) and delivers its one key, sealed to the node, on
    chain. Nobody else is re-keyed; files uploaded before the join stay out of
    its reach (their covers hold only the leaves assigned then).

    \b
    Example:
      fogfed tas enroll req.json --approve
    """
    from fogfed.protocol.enrollment import EnrollmentRequest
    from fogfed.tas import OperatorApproval

    fund_wei = ether_to_wei(fund)
    request = EnrollmentRequest.from_json(read_input_file(request_file, "enrollment request", 64 * 1024))
    t = _open(home, rpc, ipfs)
    r = t.enroll(request, verifier=OperatorApproval(approved=approve, allowlist=allowlist),
                 approve=approve, fund_wei=fund_wei)
    emit(as_json, r, lambda: (
        f"enrolled {r.node} in federation {r.federation_id}"
        + (" (new federation)" if r.federation_created else "") + f", epoch {r.epoch}\n"
        f"attributes: {', '.join(r.attributes)}\nverified: {r.verdict}\n"
        + f"leaf {r.leaf} of the federation's member tree\n"
        + "next (on the node): fogfed node join"))


@tas.command("remove")
@click.argument("node_address", metavar="ADDRESS")
@click.option("--reason", default="removed by the TAS operator", show_default=True,
              help="Recorded in the TAS log.")
@common_options("tas")
@guarded
def tas_remove(node_address: str, reason: str, home: Path | None, rpc: str | None, ipfs: str | None,
               as_json: bool) -> None:
    """Remove a rogue node (paper Algorithm 10): one transaction, no key delivered to anyone.

    The contract revokes the node's leaf of its federation's member tree;
    files uploaded after this leave that leaf out of their cover, so they are
    unreadable with any key the node held.

    \b
    Example:
      fogfed tas remove 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --reason "served tampered copies"
    """
    from fogfed.protocol.keydelivery import check_address

    address = check_address(node_address, "node address")
    r = _open(home, rpc, ipfs).remove(address, reason=reason)
    emit(as_json, r, lambda: (
        f"removed {r.node} from federation {r.federation_id} in one transaction "
        f"({r.gas['removeMember']:,} gas); its leaf is revoked from epoch {r.new_epoch} on, nobody re-keyed"))


def _rekey_lines(results: list[Any]) -> str:
    if not results:
        return "every active member holds its key"
    return "\n".join(f"federation {r.federation_id}: delivered the missing key to {len(r.nodes)} member(s)"
                     for r in results)


@tas.command("refresh")
@click.argument("federation", type=click.IntRange(min=1), metavar="FID")
@common_options("tas")
@guarded
def tas_refresh(federation: int, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Start a new member-tree generation of federation FID: one transaction, keys in one bundle.

    Every active member gets a fresh key for its leaf of the new generation;
    the sealed keys go into one bundle in the content store and the chain
    commits to its digest (no gas per member). Covers shrink back to a few
    nodes. Members pick their entry up by themselves on their next upload or
    fetch (`fogfed node join` also does). Refused if a removal happened while
    the bundle was being built; run it again.

    \b
    Example:
      fogfed tas refresh 1
    """
    r = _open(home, rpc, ipfs).refresh(federation)
    emit(as_json, r, lambda: (f"federation {r.federation_id}: generation {r.generation} from epoch {r.epoch}, "
                              f"{r.members} member key(s) in a {r.bundle_bytes:,}-byte bundle, "
                              f"one transaction ({r.gas_used:,} gas)"))


@tas.command("sync")
@common_options("tas")
@guarded
def tas_sync(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Finish interrupted joins: deliver the key to active members that have none.

    Removals (by the TAS or automatic after false claims) need nothing: the
    revoked leaf is read from the chain's events by every uploader.
    """
    results = _open(home, rpc, ipfs).sync()
    emit(as_json, {"delivered": results}, lambda: _rekey_lines(results))


@tas.command("watch")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True, metavar="SECONDS",
              help="Time between checks.")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N checks (default: run until Ctrl-C).")
@common_options("tas")
@guarded
def tas_watch(interval: float, count: int | None, home: Path | None, rpc: str | None, ipfs: str | None,
              as_json: bool) -> None:
    """Run `fogfed tas sync` every few seconds until stopped (Ctrl-C).

    In --json mode prints one JSON line per federation where a missing key was delivered.
    """
    import json

    t = _open(home, rpc, ipfs)
    done = 0
    while count is None or done < count:
        for r in t.sync():
            click.echo(json.dumps(to_plain(r)) if as_json else _rekey_lines([r]))
        done += 1
        if count is None or done < count:
            time.sleep(interval)


@tas.command("status")
@common_options("tas")
@guarded
def tas_status(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Show the TAS account, contract, federations (epochs, members, member trees)."""
    status = _open(home, rpc, ipfs).status()
    emit(as_json, status, lambda: _status_text(status))


def _status_text(status: dict) -> str:
    lines = []
    for key, value in status.items():
        if isinstance(value, (list, tuple)):
            lines.append(f"{key}:")
            lines += [f"  {to_plain(v)}" for v in value] or ["  (none)"]
        else:
            lines.append(f"{key}: {to_plain(value)}")
    return "\n".join(lines)
