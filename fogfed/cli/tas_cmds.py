"""``fogfed tas ...``: the trusted authority operator's commands (thin layer over fogfed.tas)."""

from __future__ import annotations

import contextlib
import inspect
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from fogfed.cli import cli
from fogfed.errors import InputError
from fogfed.cli.common import (add_config_command, common_options, connect_chain, count_progress, emit,
                               ether_to_wei, examples, guarded,
                               next_hint, optional_content_store, passphrase, read_input_file, resolve_rpc,
                               role_home, setting, to_plain, network_settings_to_remember, write_settings)

KEY_HELP = ("The TAS's Ethereum account is FOGFED_PRIVATE_KEY (0x-hex) when set, otherwise the "
            "devnet's first default account (funded on the embedded chain, Anvil and Ganache); `tas init` "
            "refuses that published key outside the embedded chain unless --allow-devnet-key is given.")


@cli.group(short_help="Trusted authority: federations, enroll, remove")
def tas() -> None:
    """Trusted authority: set up the system, federations, enroll and remove fog nodes.

    \b
    Typical session (embedded chain and store, no server needed):
      export FOGFED_PASSPHRASE=...            # or be asked on the terminal
      fogfed tas init                          # Algorithm 1 (+5: deploys FogFed)
      fogfed tas federation create riyadh health
      fogfed tas enroll req.json --approve     # a request from `fogfed node request`
      fogfed tas enroll --batch ./requests --approve   # many: one commitment per federation
      fogfed tas remove 0xNodeAddress          # Algorithm 10: revoke (one transaction)
      fogfed tas status                        # federations, members, unfinished operations
      fogfed tas sync                          # finish what a kill or an outage cut short
    """


def _open(home: Path | None, rpc: str | None, ipfs: str | None = None) -> Any:
    from fogfed.tas import TrustedAuthority

    where = role_home(home, "tas")
    tas = TrustedAuthority.open(where, connect_chain(rpc, where), passphrase())
    store = optional_content_store(ipfs, where)
    if store is not None:  # keys go to the content store, a 36-byte reference on chain (inline without one)
        tas.use_store(store)
    return tas


@tas.command("init", short_help="Set up the system, deploy FogFed (Alg. 1, 5)")
@common_options("tas")
@click.option("--contract", metavar="ADDRESS",
              help="Use this already deployed FogFed instead of deploying one (Algorithm 5).")
@click.option("--scheme", type=click.Choice(["fabeo", "fame", "bsw07"]), default="fabeo", show_default=True,
              help="CP-ABE scheme for the whole system.")
@click.option("--account-keystore", type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="FILE",
              help="The TAS's Ethereum account from this V3 keystore (cast, geth, `export-key`).")
@click.option("--keystore-passphrase-file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              metavar="FILE", help="The V3 keystore's passphrase (default: this home's passphrase).")
@click.option("--allow-devnet-key", is_flag=True,
              help="With --rpc, accept the devnet's published default account as TAS (anyone can then act "
                   "as the TAS: for throw-away devnets only).")
@guarded
def tas_init(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool, contract: str | None,
             scheme: str, account_keystore: Path | None, keystore_passphrase_file: Path | None,
             allow_devnet_key: bool) -> None:
    """Set up the system (paper Algorithm 1) and deploy FogFed (Algorithm 5).

    Writes the master key, encrypted with the passphrase, to the home folder,
    and prints the contract address nodes need (`fogfed node init --contract`).

    \b
    Example:
      FOGFED_PASSPHRASE=s3cret fogfed tas init --home ./tas
    """
    from fogfed.tas import TrustedAuthority

    from eth_account import Account

    from fogfed.chain.connection import is_published_dev_key
    from fogfed.cli.node_cmds import _imported_account
    from fogfed.errors import InputError

    where = role_home(home, "tas")
    secret = passphrase(confirm=True)  # before the chain is touched
    imported = _imported_account(account_keystore, keystore_passphrase_file, secret)
    chain = connect_chain(rpc, where, create=True)
    # dev_accounts() puts FOGFED_PRIVATE_KEY first when it is set
    account = Account.from_key(imported) if imported is not None else chain.dev_accounts()[0]
    if not chain.is_embedded and is_published_dev_key(account):
        if not allow_devnet_key:
            raise InputError(f"the TAS account would be {account.address}, the devnet's published default "
                             "account: anyone could remove members and take the admin role",
                             "set FOGFED_PRIVATE_KEY to a key of your own (or --account-keystore), or pass "
                             "--allow-devnet-key on a throw-away devnet")
        click.echo(f"WARNING: the TAS account {account.address} is the devnet's PUBLISHED default account; "
                   "anyone can act as this TAS. Use it on a throw-away devnet only.", err=True)
    t = TrustedAuthority.init(where, chain, secret, fed=contract, account=account, scheme=scheme)
    write_settings(where, {"rpc": resolve_rpc(rpc), "ipfs": setting("ipfs", ipfs, None)[0],
                           "contract": t.contract_address, **network_settings_to_remember()})
    info = {"home": role_home(home, "tas"), "contract": t.contract_address, "tas": t.address,
            "chain_id": t.chain_id, "scheme": scheme}
    emit(as_json, info, lambda: (
        f"TAS ready in {info['home']}\n"
        f"contract {t.contract_address} on chain {info['chain_id']}, TAS account {t.address}\n"
        f"next: export FOGFED_CONTRACT={t.contract_address}   (nodes need it for `fogfed node init`)\n"
        + next_hint("fogfed tas enroll REQUEST.json", home)
        + "   (creates the federation the request names, or: fogfed tas federation create LOCATION SERVICE)"))


tas_init.help = inspect.cleandoc(tas_init.help or "") + "\n\n" + KEY_HELP


@tas.group("federation", short_help="Create and list federations")
def federation() -> None:
    """Create and list fog federations (one per location and service)."""


def _fed_line(f: Any) -> str:
    members = len(f.members)
    return (f"federation {f.federation_id}: location={f.location} service={f.service} "
            f"epoch={f.epoch} members={members}" + (f" parent={f.parent}" if f.parent else ""))


@federation.command("create", short_help="Create a federation (Algorithm 6)")
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


@federation.command("list", short_help="List the federations on chain")
@common_options("tas")
@guarded
@examples(
    'fogfed tas federation list',
    "fogfed tas federation list --json | jq '.federations[] | {federation_id, epoch}'",
)
def federation_list(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """List every federation recorded on chain."""
    feds = _open(home, rpc, ipfs).federations()
    emit(as_json, {"federations": feds},
         lambda: "\n".join(_fed_line(f) for f in feds) if feds else "no federations yet")


@tas.command("enroll", short_help="Enroll nodes from their requests (Alg. 2, 7, 3)")
@click.argument("request_files", metavar="REQUEST.json...", nargs=-1,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--batch", "batch_dir", type=click.Path(file_okay=False, exists=True, path_type=Path), metavar="DIR",
              help="Also enroll every *.json request in DIR (one batch with the REQUEST files given).")
@click.option("--approve", is_flag=True,
              help="You checked the node's location and service yourself: accept them.")
@click.option("--allowlist", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help='Accept nodes listed as {"0xAddress": {"location": ..., "service": ...}}.')
@click.option("--fund", default="0.05", show_default=True, metavar="ETHER",
              help="Ether sent to each node for its gas (0: none).")
@click.option("--chunk", type=click.IntRange(min=1, max=1000), default=200, show_default=True, metavar="N",
              help="Batch: members per addMembers transaction (lowered to fit the block gas limit).")
@click.option("--skip-rejected", is_flag=True,
              help="Batch: enroll the acceptable requests and list the refused ones (default: refuse all).")
@common_options("tas")
@guarded
def tas_enroll(request_files: tuple[Path, ...], batch_dir: Path | None, approve: bool, allowlist: Path | None,
               fund: str, chunk: int, skip_rejected: bool, home: Path | None, rpc: str | None, ipfs: str | None,
               as_json: bool) -> None:
    """Enroll the nodes that wrote the REQUEST files (paper Algorithms 2, 7 and 3).

    Checks the request's signature, chain, contract and age; verifies the
    attributes (--approve or --allowlist); assigns the node to the federation
    of its location and service (created if none exists); registers it on
    chain (the contract's event order gives it a fresh leaf of the
    federation's member tree) and delivers its one key, sealed to the node, on
    chain. Nobody else is re-keyed; files uploaded before the join stay out of
    its reach (their covers hold only the leaves assigned then).

    Several requests (or --batch DIR) are one batch: every request is checked
    before any gas is spent (nothing changes if one is refused, unless
    --skip-rejected); then one addMembers per federation (in chunks) and one
    transaction per federation committing to a bundle of sealed keys in the
    content store, as a refresh does (every member of the federation gets a
    fresh key of a new tree generation in it, at no gas per member). Each node
    then runs `fogfed node join` to take its key from the bundle. A batch cut
    short (killed, chain lost) is finished by the same command or `tas sync`.

    \b
    Examples:
      fogfed tas enroll req.json --approve
      fogfed tas enroll req1.json req2.json req3.json --approve --json
      fogfed tas enroll --batch ./requests --allowlist allow.json --fund 0.01
    """
    from fogfed.protocol.enrollment import EnrollmentRequest
    from fogfed.tas import OperatorApproval

    fund_wei = ether_to_wei(fund)
    files = list(request_files)
    if batch_dir is not None:
        found = sorted(batch_dir.glob("*.json"))
        if not found:
            raise InputError(f"no *.json enrollment requests in {batch_dir}", "write them with `fogfed node request`")
        files += found
    if not files:
        raise InputError("no enrollment request given", "pass REQUEST.json files or --batch DIR")
    if len(set(files)) != len(files):
        raise InputError("the same request file is given twice")
    requests = [EnrollmentRequest.from_json(read_input_file(f, "enrollment request", 64 * 1024)) for f in files]
    verifier = OperatorApproval(approved=approve, allowlist=allowlist)
    t = _open(home, rpc, ipfs)
    if len(requests) == 1 and batch_dir is None:
        r = t.enroll(requests[0], verifier=verifier, approve=approve, fund_wei=fund_wei)
        emit(as_json, r, lambda: (
            f"enrolled {r.node} in federation {r.federation_id}"
            + (" (new federation)" if r.federation_created else "") + f", epoch {r.epoch}\n"
            f"attributes: {_attributes_text(r.attributes)}\nverified: {r.verdict}\n"
            + f"leaf {r.leaf} of the federation's member tree\n"
            + "next (on the node): fogfed node join"))
        return
    with count_progress(f"enroll {len(requests)}", not as_json) as progress:
        b = t.enroll_batch(requests, labels=[str(f) for f in files], verifier=verifier, fund_wei=fund_wei,
                           chunk=chunk, skip_rejected=skip_rejected, progress=progress)
    emit(as_json, b, lambda: _batch_text(b))


def _batch_text(b: Any) -> str:
    lines = [f"enrolled {sum(m['active'] for m in b.members)} node(s) in {len(b.federations)} federation(s)"
             + (" (finished a batch begun earlier)" if b.resumed else "")
             + f": {b.transactions} transaction(s), {sum(b.gas.values()):,} gas"]
    for f in b.federations:
        r = f["refresh"]
        lines.append(f"  federation {f['federation_id']} ({f['location']}, {f['service']})"
                     + (" new" if f["created"] else "") + f": {f['newcomers']} newcomer(s), "
                     + (f"keys of generation {f['generation']} in one {r['bundle_bytes']:,}-byte bundle of "
                        f"{r['members']} ({r['gas_used']:,} gas)" if r else f"generation {f['generation']}"))
    for rej in b.rejected:
        lines.append(f"  refused {rej['label']}: {rej['reason']}")
    lines.append("gas: " + ", ".join(f"{k} {v:,}" for k, v in sorted(b.gas.items())))
    lines.append("next (on each node): fogfed node join")
    return "\n".join(lines)


def _attributes_text(attributes: list[str]) -> str:
    """The key's attributes, its member-tree path summed up (``--json`` lists every one)."""
    path = [a for a in attributes if a.startswith("ct:")]
    text = ", ".join(a for a in attributes if not a.startswith("ct:"))
    prefixes = sorted({a.rsplit(":", 1)[0] for a in path})
    return text + (f" and the {len(path)} tree nodes of its leaf's path ({', '.join(p + ':*' for p in prefixes)})"
                   if path else "")


@tas.command("remove", short_help="Remove a node: revoke its leaf (Algorithm 10)")
@click.argument("node_address", metavar="ADDRESS")
@click.option("--reason", default="removed by the TAS operator", show_default=True,
              help="Stored on chain with the removal (RemovalNoted event; at most 256 bytes of UTF-8, "
                   "no control characters; \"\" for none). Auditors see it in the audit report.")
@common_options("tas")
@guarded
def tas_remove(node_address: str, reason: str, home: Path | None, rpc: str | None, ipfs: str | None,
               as_json: bool) -> None:
    """Remove a rogue node (paper Algorithm 10): one transaction, no key delivered to anyone.

    The contract revokes the node's leaf of its federation's member tree;
    files uploaded after this leave that leaf out of their cover, so they are
    unreadable with any key the node held.

    Safe to run again: after a kill or an unreachable chain it finishes the
    removal (waiting first for a removal still in the mempool), never sends a
    second one, and exits 0 saying so when the chain shows the node removed.
    An address that is no member of this TAS's federations is an error (2).

    \b
    Example:
      fogfed tas remove 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --reason "served tampered copies"
    """
    from fogfed.chain.args import note
    from fogfed.chain.contract import MAX_REMOVAL_NOTE
    from fogfed.protocol.keydelivery import check_address

    address = check_address(node_address, "node address")
    note(reason, "--reason", MAX_REMOVAL_NOTE)  # bad input: exit 2 before the TAS is even opened
    t = _open(home, rpc, ipfs)
    r = t.remove(address, reason=reason)
    due = t.refreshes_due(r.federation_id).get(r.federation_id)
    hint = (f"\nhint: federation {r.federation_id} is due for a refresh ({due}): `fogfed tas refresh "
            f"{r.federation_id}`, or let `fogfed tas sync`/`watch` do it" if due else "")

    def text() -> str:
        if "removeMember" in r.gas:
            head = "finished the interrupted removal of" if r.status == "finished" else "removed"
            return (f"{head} {r.node} from federation {r.federation_id} in one transaction "
                    f"({r.gas['removeMember']:,} gas); its leaf is revoked from epoch {r.new_epoch} on, "
                    "nobody re-keyed" + hint)
        what = ("the removal sent by an earlier, interrupted run is on chain" if r.status == "finished"
                else "already removed")
        return (f"{r.node}: {what} (federation {r.federation_id}, block {r.block}, by {r.removed_by}, "
                f"note {r.reason!r}); its leaf is revoked from epoch {r.new_epoch} on; nothing sent" + hint)
    emit(as_json, {**to_plain(r), "refresh_due": due}, text)


def _rekey_lines(results: list[Any]) -> str:
    if not results:
        return "every active member holds its key"
    return "\n".join(f"federation {r.federation_id}: delivered the missing key to {len(r.nodes)} member(s)"
                     for r in results)


def _refresh_line(r: Any) -> str:
    return (f"federation {r.federation_id}: generation {r.generation} from epoch {r.epoch}, "
            f"{r.members} member key(s) in a {r.bundle_bytes:,}-byte bundle, one transaction ({r.gas_used:,} gas)")


def _maintain(t: Any) -> dict[str, Any]:
    """The refreshes the policy calls for: run them with a content store, else report them as due."""
    if t.store is None:
        return {"refreshed": [], "refresh_due": t.refreshes_due()}
    return {"refreshed": t.refresh_due(), "refresh_due": {}}


def _maintain_lines(m: dict[str, Any]) -> list[str]:
    lines = [_refresh_line(r) for r in m["refreshed"]]
    lines += [f"hint: federation {fid} is due for a refresh ({why}); give a content store (--ipfs) to run it"
              for fid, why in m["refresh_due"].items()]
    return lines


@tas.command("refresh", short_help="Start a new member-tree generation")
@click.argument("federation", type=click.IntRange(min=1), metavar="FID")
@common_options("tas")
@guarded
def tas_refresh(federation: int, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Start a new member-tree generation of federation FID: one transaction, keys in one bundle.

    Every active member gets a fresh key for its leaf of the new generation;
    the sealed keys go into one bundle in the content store and the chain
    commits to its digest (no gas per member). Covers shrink back to a few
    nodes, and the new generation's tree is sized to the federation (room for
    2 to 4 times its members). Members pick their entry up by themselves on
    their next upload or fetch (`fogfed node join` also does). A removal while
    the bundle is built makes the TAS build it again. Interrupted (a kill, the
    chain away), running it again, or `fogfed tas sync`, finishes the same
    refresh: never two generations. `fogfed tas refresh-policy` sets when
    `tas sync`/`watch` refresh by themselves.

    \b
    Example:
      fogfed tas refresh 1
    """
    t = _open(home, rpc, ipfs)
    with _key_progress(len(t.trees.get(federation).refresh_order()), not as_json) as bar:
        r = t.refresh(federation, bar)
    emit(as_json, r, lambda: _refresh_line(r))


@contextlib.contextmanager
def _key_progress(total: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr counting the keys a refresh generates (None when disabled or not a TTY)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("member keys"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("keys", total=total)
        yield lambda n: bar.advance(task, n)


@tas.command("refresh-policy", short_help="Show or set when sync and watch refresh")
@click.option("--max-cover", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refresh when the next upload's cover would have more than N nodes (default 64).")
@click.option("--max-revoked", type=click.FloatRange(min=0, max=1, min_open=True), default=None, metavar="F",
              help="Refresh when more than this fraction of the assigned leaves is revoked (default 0.5).")
@click.option("--reset", is_flag=True, help="Back to the defaults.")
@common_options("tas")
@guarded
@examples(
    'fogfed tas refresh-policy',
    'fogfed tas refresh-policy --max-cover 32 --max-revoked 0.25',
    'fogfed tas refresh-policy --reset --json',
)
def tas_refresh_policy(max_cover: int | None, max_revoked: float | None, reset: bool, home: Path | None,
                       rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Show or set when `tas sync`/`tas watch` start a new tree generation, and list the federations due.

    A join into a full tree always refreshes first (it never fails). Besides
    that, a federation is refreshed when its cover grew past --max-cover
    nodes (every file carries one ciphertext row per node) or more than
    --max-revoked of its leaves are revoked. A refresh is one transaction and
    one keygen per member; the setting lives in this TAS home (tas.sqlite).
    """
    from fogfed.tas.revocation import RefreshPolicy

    t = _open(home, rpc, ipfs)
    policy = RefreshPolicy() if reset else t.refresh_policy()
    if reset or max_cover is not None or max_revoked is not None:
        policy = RefreshPolicy(policy.max_cover_nodes if max_cover is None else max_cover,
                               policy.max_revoked_fraction if max_revoked is None else max_revoked)
        t.set_refresh_policy(policy)
    due = t.refreshes_due()
    emit(as_json, {"max_cover_nodes": policy.max_cover_nodes, "max_revoked_fraction": policy.max_revoked_fraction,
                   "due": due}, lambda: "\n".join(
        [f"refresh when the cover exceeds {policy.max_cover_nodes} nodes or more than "
         f"{policy.max_revoked_fraction:g} of the leaves are revoked (and always before a join into a full tree)"]
        + ([f"federation {fid} is due: {why}" for fid, why in due.items()] or ["no federation is due"])))


@tas.command("sync", short_help="Finish interrupted work, deliver missing keys")
@click.option("--rebuild", is_flag=True,
              help="Read the TAS's cache of the chain (tas.sqlite) again from the deployment block first.")
@common_options("tas")
@guarded
@examples(
    'fogfed tas sync',
    'fogfed tas sync --rebuild',
    'fogfed tas sync --home ./tas --json',
)
def tas_sync(rebuild: bool, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Finish what the chain shows undone: interrupted enrollments and refreshes, missing keys; due refreshes.

    Enrollments and refreshes interrupted after their journal entry are
    completed, and every active member whose latest join has no key for its
    leaf gets its one key, once. Removals (by the TAS or automatic after
    false claims) need nothing: the revoked leaf is read from the chain's
    events by every uploader. Then every federation the refresh policy
    (`fogfed tas refresh-policy`) calls due gets a new tree generation (with a
    content store; without one they are listed as hints).
    """
    t = _open(home, rpc, ipfs)
    if rebuild:
        t.cache.rebuild()
    results = t.sync()
    m = _maintain(t)
    emit(as_json, {"rekeyed": results, **m}, lambda: "\n".join([_rekey_lines(results), *_maintain_lines(m)]))


@tas.command("watch", short_help="Run tas sync in a loop; optional top-ups")
@click.option("--interval", type=click.FloatRange(min=0.1), default=5.0, show_default=True, metavar="SECONDS",
              help="Time between checks.")
@click.option("--count", type=click.IntRange(min=1), default=None, metavar="N",
              help="Stop after N checks (default: run until Ctrl-C).")
@click.option("--top-up-below", metavar="ETHER", default=None,
              help="Also send members whose balance is below this much ether back up to --top-up-to.")
@click.option("--top-up-to", metavar="ETHER", default="0.05", show_default=True, help="Balance a top-up restores.")
@click.option("--top-up-limit", metavar="ETHER", default="1", show_default=True,
              help="At most this much ether sent per check.")
@common_options("tas")
@guarded
@examples(
    'fogfed tas watch --interval 10',
    'fogfed tas watch --json >> tas-watch.jsonl',
    'fogfed tas watch --count 1',
    'fogfed tas watch --top-up-below 0.01 --top-up-to 0.05 --top-up-limit 1',
)
def tas_watch(interval: float, count: int | None, top_up_below: str | None, top_up_to: str, top_up_limit: str,
              home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Run `fogfed tas sync` every few seconds until stopped (Ctrl-C); optionally top members up.

    Text mode prints a line per re-keyed or refreshed federation and per
    top-up (refreshes follow `fogfed tas refresh-policy`). --json prints JSON
    Lines: one document per check, {"check": N, "time": UNIX, "rekeyed":
    [...], "refreshed": [...], "refresh_due": {FID: REASON}, "topped_up":
    [...]} (and "busy": MESSAGE when another
    TAS command held the lock), flushed at once, so `jq` or a log shipper
    sees every check as it happens. The last example keeps every member able
    to pay for its transactions, sending at most 1 ETH per check.
    """
    import json

    from fogfed._lock import LockBusy

    policy = None
    if top_up_below is not None:
        from fogfed.tas.funding import check_top_up

        policy = (ether_to_wei(top_up_below), ether_to_wei(top_up_to), ether_to_wei(top_up_limit))
        check_top_up(*policy)  # bad input: exit 2 before the first check does any work
    t = _open(home, rpc, ipfs)
    done, hinted = 0, {}
    while count is None or done < count:
        check: dict[str, Any] = {"check": done + 1, "time": round(time.time(), 3), "rekeyed": [], "topped_up": [],
                                 "refreshed": [], "refresh_due": {}}
        try:
            check["rekeyed"] = t.sync()
            check.update(_maintain(t))
            if not as_json:
                for r in check["rekeyed"]:
                    click.echo(_rekey_lines([r]))
                for line in _maintain_lines({**check, "refresh_due": {} if check["refresh_due"] == hinted
                                             else check["refresh_due"]}):
                    click.echo(line)  # a hint once, not on every check
            hinted = check["refresh_due"]
            if policy is not None:
                from fogfed.tas.funding import top_up

                check["topped_up"] = top_up(t, *policy)
                if not as_json:
                    for u in check["topped_up"]:
                        click.echo(f"topped up {u.node}: +{u.wei / 1e18:g} ETH (had {u.balance_before / 1e18:g})")
        except LockBusy as exc:  # another TAS command is working: check again next time
            check["busy"] = exc.message
            if not as_json:
                click.echo(f"note: {exc.message}", err=True)
        if as_json:
            click.echo(json.dumps(to_plain(check), sort_keys=True))
        sys.stdout.flush()
        done += 1
        if count is None or done < count:
            time.sleep(interval)


@tas.command("status", short_help="Federations, members, pending and unfinished work")
@common_options("tas")
@guarded
@examples(
    'fogfed tas status',
    'fogfed tas status --json | jq .federations',
)
def tas_status(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Show the TAS account, contract, federations, pending re-keys and unfinished operations.

    An operation cut short (a kill, the chain away) is listed under
    "unfinished" with its federation, node(s), the step it reached, when it
    started and the command that finishes it (`fogfed tas sync` finishes
    them all; running the same command again finishes that one). --json
    lists them under "unfinished" with the fields of docs/cli.md.
    """
    status = _open(home, rpc, ipfs).status()
    labels = _read_labels(role_home(home, "tas"))
    if labels:
        named = [a for f in status.get("federations", []) for a in f.get("members", [])]
        named += [a for u in status.get("unfinished", []) for a in u.get("nodes", [])]
        status["labels"] = {a: labels[a] for a in named if a in labels}
    emit(as_json, status, lambda: _status_text(status))


def _status_text(status: dict) -> str:
    """`tas status` for a person: one line per federation, members listed under it."""
    feds = status.get("federations", [])
    lines = [f"TAS account  {status.get('tas')}",
             f"contract     {status.get('contract')} on chain {status.get('chain_id')}",
             f"scheme       {status.get('scheme')}",
             f"mobility     {status.get('mobility') or 'none (fogfed tas mobility-deploy)'}",
             f"federations  {len(feds)}" + ("" if feds else " (fogfed tas federation create LOCATION SERVICE)")]
    for f in feds:
        members = f.get("members", [])
        parent = f", parent {f['parent']}" if f.get("parent") else ""
        lines.append(f"  {f['id']:>3}  {f['location']}/{f['service']}  epoch {f['epoch']}{parent}  "
                     f"{len(members)} member{'' if len(members) == 1 else 's'}")
        labels = status.get("labels", {})
        lines += [f"         {m}" + (f"  {labels[m]}" if m in labels else "") for m in members]
    pending = status.get("pending_keys") or []
    lines.append("pending      " + (f"re-keys for federation {', '.join(map(str, pending))} (run: fogfed tas sync)"
                                    if pending else "nothing to re-key"))
    unfinished = status.get("unfinished") or []
    lines.append("unfinished   " + ("none" if not unfinished else
                                    f"{len(unfinished)} operation(s) cut short; `fogfed tas sync` finishes "
                                    "them all"))
    lines += _unfinished_lines(unfinished, status.get("labels", {}))
    for key, value in status.items():  # whatever newer TAS versions add
        if key not in {"tas", "contract", "chain_id", "scheme", "mobility", "federations", "pending_keys", "labels",
                       "unfinished"}:
            lines.append(f"{key:<12} {to_plain(value)}")
    return "\n".join(lines)


def _unfinished_lines(unfinished: list[dict], labels: dict[str, str], now: float | None = None) -> list[str]:
    """A table of the journal's unfinished operations, each row followed by what its step means and how
    to finish it."""
    from fogfed.tas.inflight import STEPS

    rows = [("OPERATION", "FEDERATION", "STEP", "STARTED (UTC)", "NODE(S)")]
    for u in unfinished:
        feds = ", ".join(map(str, u.get("federation_ids", [])))
        new = ", ".join(f"{p} (new)" for p in u.get("new_federations", []))
        nodes = u.get("nodes", [])
        if len(nodes) == 1:
            who = nodes[0] + (f" ({labels[nodes[0]]})" if nodes[0] in labels else "")
        else:
            who = f"{len(nodes)} nodes" if nodes else "-"
        progress = u.get("progress")
        step = str(u.get("step")) + (f" {progress['done']}/{progress['total']}" if progress else "")
        rows.append((str(u.get("kind")), ", ".join(x for x in (feds, new) if x) or "-", step,
                     _when(u.get("started"), now), who))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
        if i:
            u = unfinished[i - 1]
            meaning = STEPS.get(str(u.get("kind")), {}).get(str(u.get("step")))
            first, *again = u.get("finish") or ["fogfed tas sync"]
            lines.append("    " + (f"{meaning}; " if meaning else "") + f"finish: `{first}`"
                         + "".join(f", or the same `{c}` again" for c in again))
    return [line.rstrip() for line in lines]


def _when(started: float | None, now: float | None = None) -> str:
    """``2026-12-02 04:31:05 (3 min ago)``; ``unknown`` for an entry written before the time was recorded."""
    if started is None:
        return "unknown"
    age = max(0, int((time.time() if now is None else now) - started))
    ago = (f"{age} s" if age < 120 else f"{age // 60} min" if age < 7200 else f"{age // 3600} h"
           if age < 172800 else f"{age // 86400} days")
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)) + f" ({ago} ago)"


add_config_command(
    tas, "tas",
    "fogfed tas config",
    "fogfed tas config --home ./tas --json | jq .settings.rpc",
)


LABELS_FILE = "labels.json"


def _read_labels(where: Path) -> dict[str, str]:
    """The operator's names for node addresses (``<tas home>/labels.json``); an annotation, not state."""
    from fogfed.cli.common import read_labels_file

    return read_labels_file(where / LABELS_FILE)


@tas.command("label", short_help="Name a node (tas status shows it)")
@click.argument("node_address", metavar="ADDRESS")
@click.argument("label", required=False)
@click.option("--clear", is_flag=True, help="Forget ADDRESS's label.")
@common_options("tas")
@examples(
    'fogfed tas label 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 "clinic-3 gateway"',
    "fogfed tas label 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --clear",
)
@guarded
def tas_label(node_address: str, label: str | None, clear: bool, home: Path | None, rpc: str | None,
              ipfs: str | None, as_json: bool) -> None:
    """Give a node a name people recognise; `tas status` shows it next to the address.

    Labels live in the TAS home (labels.json), not on chain: they are the
    operator's notes. The node's own label is `fogfed node init --label`.
    """
    import json
    import os

    from fogfed.errors import InputError
    from fogfed.protocol.keydelivery import check_address

    address = check_address(node_address, "node address")
    where = role_home(home, "tas")
    if not where.is_dir():
        raise InputError(f"no TAS in {where}", "run `fogfed tas init` first (or pass --home)")
    if (label is None) == (not clear):
        raise InputError("give a LABEL, or --clear", "e.g. fogfed tas label 0xNODE \"clinic-3 gateway\"")
    if label is not None and (not label.strip() or len(label) > 80 or not label.isprintable()):
        raise InputError(f"label {label!r:.90} must be 1-80 printable characters")
    labels = _read_labels(where)
    if clear:
        labels.pop(address, None)
    else:
        labels[address] = label.strip()
    tmp = where / (LABELS_FILE + ".tmp")
    tmp.write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, where / LABELS_FILE)
    emit(as_json, {"address": address, "label": labels.get(address)},
         f"{address}: " + (f"labelled {labels[address]!r}" if address in labels else "label cleared"))
