"""``fogfed node ...``: a fog-node operator's commands (thin layer over fogfed.node.client)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import click

from fogfed.cli import cli
from fogfed.cli.common import (add_config_command, common_options, connect_chain, emit, examples, guarded, next_hint,
                               open_content_store, passphrase, resolve_rpc, role_home, setting, to_plain,
                               transfer_progress, network_settings_to_remember, write_settings)
from fogfed.errors import FogfedError, InputError


@cli.group(short_help="Fog node: join, upload, fetch, serve copies")
def node() -> None:
    """Fog node: join a federation, upload and fetch files, serve cached copies to peers.

    \b
    Enrollment across two operators (different --home folders):
      fogfed node init --contract 0xFogFed           # identity + keystores
      fogfed node request --location riyadh --service health -o req.json
      fogfed tas enroll req.json --approve            # on the TAS side
      fogfed node join                                # pulls its key from chain
    Then:
      fogfed node upload report.pdf                   # Algorithms 4 + 8
      fogfed node fetch 0xFILEID -o report.pdf        # Algorithm 9
      fogfed node serve                               # serve cached copies to peers
      fogfed node status --live                       # federation, epoch, keys held
    """


def _open(home: Path | None, rpc: str | None, ipfs: str | None) -> Any:
    from fogfed.node.client import FogNode

    where = role_home(home, "node")
    return FogNode.open(where, connect_chain(rpc, where), open_content_store(ipfs, where), passphrase())


def _imported_account(keystore: Path | None, passphrase_file: Path | None, secret: str) -> bytes | None:
    """The private key from ``--account-keystore`` (V3), or None for a fresh account."""
    if keystore is None:
        return None
    from fogfed.cli.common import read_passphrase_file
    from fogfed.cli.keys_cmds import read_v3_keystore

    password = read_passphrase_file(passphrase_file, "--keystore-passphrase-file") if passphrase_file else secret
    return read_v3_keystore(keystore, password)


def parse_file_id(text: str) -> bytes:
    from fogfed.node.client import parse_file_id as parse

    return parse(text)


@node.command("init", short_help="Create this node (account, keys, keystores)")
@click.option("--contract", envvar="FOGFED_CONTRACT", metavar="ADDRESS", required=True,
              help="The FogFed contract printed by `fogfed tas init` (or $FOGFED_CONTRACT).")
@click.option("--cache-size", type=click.IntRange(min=1), default=1024, show_default=True, metavar="MIB",
              help="Space for cached copies of files, in MiB.")
@click.option("--label", metavar="TEXT", help="A name for people (e.g. clinic-3-gateway), kept in settings.toml "
              "and shown by `fogfed node status`.")
@click.option("--account-keystore", type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="FILE",
              help="Use the Ethereum account in this V3 keystore (cast, geth, `export-key`) instead of a new one.")
@click.option("--keystore-passphrase-file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              metavar="FILE", help="The V3 keystore's passphrase (default: this home's passphrase).")
@common_options("node")
@guarded
def node_init(contract: str, cache_size: int, label: str | None, account_keystore: Path | None,
              keystore_passphrase_file: Path | None, home: Path | None, rpc: str | None,
              ipfs: str | None, as_json: bool) -> None:
    """Create this node: Ethereum account, X25519 key, keystores, cache.

    Remembers --rpc, --ipfs, --contract and --label in <home>/settings.toml,
    so later commands on this home need none of them (flags and FOGFED_*
    variables still override; `fogfed node config` shows what is in effect).

    \b
    Examples:
      FOGFED_PASSPHRASE=s3cret fogfed node init --home ./node1 --contract 0x5FbDB2315678afecb367f032d93F642f64180aa3
      fogfed node init --home ./node2 --rpc http://127.0.0.1:8545 --ipfs http://127.0.0.1:5001 --label gw-2
      fogfed node init --home ./node3 --account-keystore ~/.foundry/keystores/gw3 --passphrase-file pass.txt
    """
    from fogfed.node.client import FogNode
    from fogfed.protocol.keydelivery import check_address

    address = check_address(contract, "contract address")
    if label is not None and (not label.strip() or len(label) > 80 or not label.isprintable()):
        raise InputError(f"label {label!r:.90} must be 1-80 printable characters")
    where = role_home(home, "node")
    secret = passphrase(confirm=True)
    account = _imported_account(account_keystore, keystore_passphrase_file, secret)
    with FogNode.init(where, connect_chain(rpc, where, create=True), address,
                      open_content_store(ipfs, where, create=True), secret, account=account,
                      cache_bytes=cache_size << 20) as n:
        pass
    write_settings(where, {"rpc": resolve_rpc(rpc), "ipfs": setting("ipfs", ipfs, None)[0],
                           "contract": address, "label": label, **network_settings_to_remember()})
    info = {"home": role_home(home, "node"), "address": n.address, "contract": address}
    emit(as_json, info, lambda: (
        f"node {n.address} created in {info['home']}\n"
        + next_hint("fogfed node request --location LOCATION --service SERVICE -o req.json", home)))


@node.command("request", short_help="Write a signed enrollment request (Algorithm 2)")
@click.option("--location", required=True, help="Where this node is, e.g. riyadh.")
@click.option("--service", required=True, help="What it serves, e.g. health.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), metavar="FILE",
              help="Write the request here (default, or -: print it on stdout).")
@common_options("node")
@guarded
def node_request(location: str, service: str, output: Path | None, home: Path | None, rpc: str | None,
                 ipfs: str | None, as_json: bool) -> None:
    """Write a signed enrollment request for the TAS operator (paper Algorithm 2).

    \b
    Example:
      fogfed node request --location riyadh --service health -o req.json
    """
    with _open(home, rpc, ipfs) as n:
        req = n.enrollment_request(location, service)
    text = req.to_json()
    if output is None or str(output) == "-":
        click.echo(text)  # the request is itself the JSON document
        return
    try:
        output.write_text(text + "\n")
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}", "choose a writable path") from None
    emit(as_json, {"request": output, "address": req.address},
         f"wrote {output}: give it to the TAS operator (fogfed tas enroll {output.name})")


@node.command("join", short_help="Pull the keys the TAS delivered")
@common_options("node")
@guarded
@examples(
    'fogfed node join',
    'fogfed node join --home ./node1 --json',
)
def node_join(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Pull the keys the TAS delivered (after enrollment, a move or a tree refresh)."""
    with _open(home, rpc, ipfs) as n:
        new = n.refresh_keys()
        fid, active = n.membership()
        if active:
            new += n.pull_refreshes(fid)
    emit(as_json, {"address": n.address, "new_keys": new}, lambda: (
        f"stored {new} new key(s); node {n.address} can upload and fetch" if new else
        f"no new keys for {n.address} (not enrolled yet, or already up to date)"))


@node.command("upload", short_help="Encrypt, store and register a file (Alg. 4, 8)")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--policy", metavar="POLICY",
              help='CP-ABE policy over loc:LOCATION, svc:SERVICE and ff:FEDERATION_ID attributes, '
                   'e.g. "loc:riyadh and svc:health" or "ff:1 or ff:2". Every federation that satisfies it '
                   "may read the file. Default: members of this node's federation.")
@click.option("--name", metavar="NAME", help="Name recorded in `fogfed node ls` (default: PATH's name; stdin for -).")
@common_options("node")
@guarded
def node_upload(path: Path, policy: str | None, name: str | None, home: Path | None, rpc: str | None,
                ipfs: str | None, as_json: bool) -> None:
    """Encrypt PATH, store it, register it on chain (paper Algorithms 4 and 8).

    PATH - reads the file from standard input. The local file is never
    modified; a failed upload can simply be retried.

    \b
    Examples:
      fogfed node upload scan.dcm --policy "svc:health"
      fogfed node upload report.pdf --policy "ff:1 or ff:2" --json | jq -r .file_id
      pg_dump clinic | fogfed node upload - --name clinic.sql
    """
    import contextlib
    import shutil
    import tempfile

    from_stdin = str(path) == "-"
    if not from_stdin and not path.is_file():
        raise InputError(f"{path} is not a readable file", "give the path of the file to upload (or - for stdin)")
    with contextlib.ExitStack() as stack:
        if from_stdin or name:
            # upload() records the file's own name: give it a private copy (or stdin) under the chosen one
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=_tmp_dir(home), prefix="upload-")))
            source = work / (name or "stdin")
            if "/" in source.name or source.name in ("", ".", ".."):
                raise InputError(f"--name {name!r} is not a file name", "give a plain name such as report.pdf")
            if from_stdin:
                with open(source, "wb") as out:
                    shutil.copyfileobj(click.get_binary_stream("stdin"), out, 1 << 20)
            else:
                source.symlink_to(path.resolve())  # the recorded name, the same bytes
        else:
            source = path
        n = stack.enter_context(_open(home, rpc, ipfs))
        progress = stack.enter_context(
            transfer_progress(f"upload {source.name}", source.stat().st_size, not as_json))
        r = n.upload(source, policy=policy, progress=progress)
        _warn_low_balance(n)
    emit(as_json, r, lambda: (
        f"uploaded {'stdin' if from_stdin else path} ({r.size:,} bytes) to federation {r.federation_id}\n"
        f"file id 0x{r.file_id.hex()}\ncid {r.cid}\npolicy {r.policy}"))


def _tmp_dir(home: Path | None) -> Path:
    """The node's own temp folder (same file system as its store, private to the node)."""
    path = role_home(home, "node") / "tmp"
    if not path.parent.is_dir():
        raise InputError(f"no node in {path.parent}", "create one with `fogfed node init` (or pass --home)")
    path.mkdir(exist_ok=True)
    return path


def _warn_low_balance(n: Any) -> None:
    from fogfed.chain.funds import low_balance_warning

    warning = low_balance_warning(n.fed.chain, n.address)
    if warning:
        click.echo(f"warning: {warning}", err=True)


@node.command("fetch", short_help="Fetch and verify a file (Algorithm 9)")
@click.argument("file_id", metavar="FILE_ID")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), metavar="PATH",
              help="Where to write the file (default: ./<file id>; - for stdout).")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@common_options("node")
@guarded
def node_fetch(file_id: str, output: Path | None, force: bool, home: Path | None, rpc: str | None,
               ipfs: str | None, as_json: bool) -> None:
    """Retrieve a file from a peer's cache or from storage, verified (paper Algorithm 9).

    A damaged copy is reported on chain and never written out. With -o -
    the verified plaintext goes to stdout (and the summary to stderr). An
    existing file is never overwritten unless --force.

    \b
    Examples:
      fogfed node fetch 0x3b1f...c9 -o scan.dcm
      fogfed node fetch 0x3b1f...c9 -o scan.dcm --force --json
      fogfed node fetch 0x3b1f...c9 -o - | sha256sum
    """
    import contextlib
    import shutil
    import tempfile

    fid = parse_file_id(file_id)
    to_stdout = output is not None and str(output) == "-"
    if to_stdout and as_json:
        raise InputError("-o - and --json both want stdout", "write the file to a path, or drop --json")
    dest = output or Path(f"0x{fid.hex()}")
    if not to_stdout and dest.exists() and not force:
        raise InputError(f"{dest} already exists", "pass --force to overwrite it, or choose another -o PATH")
    with contextlib.ExitStack() as stack:
        if to_stdout:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=_tmp_dir(home), prefix="fetch-")))
            dest = work / "plaintext"
        n = stack.enter_context(_open(home, rpc, ipfs))
        progress = stack.enter_context(transfer_progress(f"fetch {dest.name}", None, not as_json))
        r = n.fetch(fid, dest, progress=progress)
        if to_stdout:
            with open(dest, "rb") as f:
                shutil.copyfileobj(f, click.get_binary_stream("stdout"), 1 << 20)
        _warn_low_balance(n)
    summary = (f"wrote {'stdout' if to_stdout else r.dest} ({r.size:,} bytes) from {r.source}; "
               "SHA-256 matches the chain" + "".join(f"\nreported damage: {d}" for d in r.damage_reports))
    if to_stdout:
        click.echo(summary, err=True)
    else:
        emit(as_json, r, summary)


@node.command("ls", short_help="List uploaded files (--readable: readable ones)")
@click.option("--readable", is_flag=True,
              help="List every file this node's federation may read, from chain events "
                   "(registered in it or shared with it), not only the ones this node uploaded.")
@common_options("node")
@examples(
    "fogfed node ls",
    "fogfed node ls --readable",
    "fogfed node ls --readable --json | jq -r '.files[] | select(.key_held) | .file_id'",
)
@guarded
def node_ls(readable: bool, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """List the files this node uploaded (local record), or with --readable those it may read.

    --readable asks the chain: files registered in the node's federation or
    shared with it, each with whether one of the node's keys satisfies the
    file's policy (key_held in --json). A file uploaded before the node
    joined, or after its removal, is listed but not readable: the policy's
    member-tree cover leaves the node out.
    """
    from fogfed.cli.common import read_settings

    label = read_settings(role_home(home, "node")).get("label")
    with _open(home, rpc, ipfs) as n:
        if not readable:
            files = n.files()
            doc: dict[str, Any] = {"address": n.address, "label": label, "files": files}
            empty = "no files uploaded yet (--readable lists what this node may read)"
        else:
            from fogfed.node.listing import files_for_federation

            fid, active = n.membership()
            keys = [k.attributes for k in n.keyring.candidates()]
            files = files_for_federation(n.fed, fid, keys, n.member_tree) if fid else []
            doc = {"address": n.address, "label": label, "federation": fid or None, "active": active,
                   "files": files}
            empty = ("no files in this node's federation yet" if fid else
                     "not enrolled: no federation, so no files (fogfed node request, then tas enroll)")
    who = f"{n.address}" + (f" ({label})" if label else "")

    def text() -> str:
        if not files:
            return f"{who}: {empty}"
        if not readable:
            return f"uploaded by {who}:\n" + _rows(files, empty)
        lines = [f"readable by {who} in federation {doc['federation']}" + ("" if active else " (REMOVED)") + ":"]
        for f in files:
            key = "readable" if f["key_held"] else "NOT readable with this node's keys"
            shared = "  shared with us" if f["shared"] else ""
            lines.append(f"  {f['file_id']}  from {f['uploader']}  block {f['block']}{shared}  {key}")
        return "\n".join(lines)

    emit(as_json, doc, text)


def _rows(records: list[Any], empty: str) -> str:
    """One ``key=value ...`` line per record."""
    return "\n".join(" ".join(f"{k}={v}" for k, v in to_plain(r).items()) for r in records) or empty


@node.command("serve", short_help="Serve cached copies to federation members")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=0, show_default=True,
              help="Port (0: any free port).")
@click.option("--refresh", type=click.FloatRange(min=1), default=60.0, show_default=True, metavar="SECONDS",
              help="How often to pull new keys from chain.")
@click.option("--announce-every", type=click.FloatRange(min=0.5), default=None, metavar="SECONDS",
              help="How often to renew cache announcements that would expire before the check after next "
                   "(default: a third of the contract's maximum cache lifetime, at most 5 minutes).")
@click.option("--duration", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Stop after this long (default: until Ctrl-C).")
@common_options("node")
@guarded
@examples(
    'fogfed node serve --port 7001',
    'fogfed node serve --host 0.0.0.0 --port 7001 --refresh 30 --json',
)
def node_serve(host: str, port: int, refresh: float, announce_every: float | None, duration: float | None,
               home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Serve this node's cached copies to active members of its federation.

    Each request must be signed by a member and fresh; the peer checks
    membership on chain before sending a byte. While serving, the node
    renews its cache announcements so peers keep finding its copies.
    """
    n = _open(home, rpc, ipfs)
    try:
        server = n.serve(host, port)
        emit(as_json, {"url": server.url, "address": n.address, "pid": os.getpid()},
             f"serving {server.url} as {n.address} (Ctrl-C to stop)")
        _keep_fresh(n, refresh, announce_every, None if duration is None else time.monotonic() + duration)
    except KeyboardInterrupt:
        pass
    finally:
        n.close()


def _keep_fresh(n: Any, refresh: float, announce_every: float | None, deadline: float | None) -> None:
    """Until ``deadline``: pull keys every ``refresh`` s; every announcement interval renew the
    announcements that would lapse before the check after next (so none lapses in between).
    A chain hiccup is reported on stderr and retried at the next turn instead of stopping the server."""
    now = time.monotonic()
    next_keys, next_announce = now + refresh, now  # renew at once: copies may have lapsed while stopped
    while deadline is None or now < deadline:
        try:
            if now >= next_keys:
                next_keys = now + refresh
                n.refresh_keys()
            if now >= next_announce:
                interval = announce_every or n.announce_interval()
                next_announce = now + interval
                n.refresh_announcements(margin=math.ceil(2 * interval))
        except FogfedError as exc:
            click.echo(f"warning: {exc.message} (retrying later)", err=True)
        wake = min(next_keys, next_announce, deadline if deadline is not None else math.inf)
        time.sleep(max(0.0, min(0.2, wake - time.monotonic())))
        now = time.monotonic()


@node.group("cache", short_help="The local cache of encrypted copies")
def cache() -> None:
    """The node's local cache of encrypted copies."""


@cache.command("ls", short_help="List cached copies")
@common_options("node")
@guarded
@examples(
    'fogfed node cache ls',
    "fogfed node cache ls --json | jq '.entries | length'",
)
def cache_ls(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """List cached copies (file id, size, expiry of the announcement)."""
    with _open(home, rpc, ipfs) as n:
        entries = n.cache_entries()
    emit(as_json, {"entries": entries}, lambda: _rows(entries, "cache is empty"))


@cache.command("evict", short_help="Drop a cached copy, withdraw its announcement")
@click.argument("file_id", metavar="FILE_ID")
@common_options("node")
@guarded
@examples(
    'fogfed node cache evict 0x3b1f...c9',
)
def cache_evict(file_id: str, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Drop the cached copy of FILE_ID and withdraw its announcement on chain."""
    fid = parse_file_id(file_id)
    with _open(home, rpc, ipfs) as n:
        removed = n.evict(fid)
    emit(as_json, {"file_id": fid, "removed": removed},
         f"evicted 0x{fid.hex()}" if removed else f"0x{fid.hex()} was not cached")


@cache.command("refresh", short_help="Re-announce copies before they expire")
@click.option("--margin", type=click.IntRange(min=0), default=300, show_default=True, metavar="SECONDS",
              help="Re-announce copies whose announcement ends within this many seconds.")
@common_options("node")
@guarded
@examples(
    'fogfed node cache refresh',
    'fogfed node cache refresh --margin 900 --json',
)
def cache_refresh(margin: int, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Re-announce cached copies on chain before their announcements expire."""
    with _open(home, rpc, ipfs) as n:
        count = n.refresh_announcements(margin=margin)
    emit(as_json, {"reannounced": count}, f"re-announced {count} cached cop{'y' if count == 1 else 'ies'}")


def _local_status(where: Path) -> dict[str, Any]:
    """What the node's home says about itself, read without the passphrase or the chain (fast)."""
    import json

    from fogfed.cli.common import read_settings

    if not (where / "identity.json").is_file():
        raise InputError(f"no node in {where}", "create one with `fogfed node init` (or pass --home)")
    try:
        config = json.loads((where / "config.json").read_text(encoding="utf-8"))
        files = json.loads((where / "files.json").read_text(encoding="utf-8")) if (where / "files.json").is_file() else []
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the node's records in {where}: {exc}",
                         "the file named is damaged; restore it from a backup") from None
    if not isinstance(config, dict):
        raise InputError(f"{where / 'config.json'} is damaged (not an object)", "restore it from a backup")
    settings = read_settings(where)
    return {"home": where, "label": settings.get("label"), "address": config.get("address"),
            "contract": config.get("contract"), "chain_id": config.get("chain_id"),
            "cache_bytes": config.get("cache_bytes"), "uploaded_files": len(files) if isinstance(files, list) else None}


@node.command("status", short_help="This node's identity and home (--live: keys)")
@click.option("--live", is_flag=True,
              help="Also ask the chain (membership, federation epoch, balance) and open the keyring (keys held); "
                   "needs the passphrase.")
@common_options("node")
@examples(
    "fogfed node status",
    "fogfed node status --home ./node1 --live",
    "fogfed node status --live --json | jq '{federation, epoch, keys}'",
)
@guarded
def node_status(live: bool, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Show this node: address, label, contract, chain, store; with --live, federation, epoch and keys.

    Without --live it reads only the home (no chain, no passphrase), so it
    answers at once; --live adds what the chain and the keyring say.
    """
    from fogfed.cli.common import resolve_ipfs, resolve_rpc

    where = role_home(home, "node")
    status = _local_status(where)
    status["chain"] = resolve_rpc(rpc, where)
    status["store"] = resolve_ipfs(ipfs, where) or f"embedded:{_store_root()}"
    if live:
        with _open(home, rpc, ipfs) as n:
            fid, active = n.membership()
            generation = n.member_tree(fid).generation if fid else None
            tree = f"ct:{fid}:{generation}:"
            status.update({
                "federation": fid or None, "active": active,
                "epoch": n.fed.federation(fid).epoch if fid else None,
                "generation": generation,
                # epochs advance with every removal; a key serves its tree generation's whole life
                "current_key": bool(fid) and any(a.startswith(tree) for k in n.keyring.candidates()
                                                 for a in k.attributes),
                "balance_wei": n.fed.chain.balance(n.address),
                "keys": [{"federation": f, "epoch": e} for (f, e) in n.keyring.held()],
            })
    emit(as_json, status, lambda: _status_text(status, live))


def _store_root() -> Path:
    from fogfed.cli.common import fogfed_home

    return fogfed_home() / "store"


def _status_text(status: dict[str, Any], live: bool) -> str:
    lines = [f"node      {status['address']}" + (f"  ({status['label']})" if status.get("label") else ""),
             f"home      {status['home']}",
             f"contract  {status['contract']} (chain id {status['chain_id']})",
             f"chain     {status['chain']}",
             f"store     {status['store']}",
             f"uploaded  {status['uploaded_files']} file(s); cache up to {(status['cache_bytes'] or 0) >> 20} MiB"]
    if live:
        if status["federation"] is None:
            lines.append("member    not enrolled (next: fogfed node request ..., then the TAS runs tas enroll)")
        else:
            state = "active" if status["active"] else "REMOVED"
            lines.append(f"member    federation {status['federation']}, {state}, epoch {status['epoch']}, "
                         f"tree generation {status['generation']}")
        keys = status["keys"]
        held = ", ".join(f"{k['federation']}/{k['epoch']}" for k in keys) or "none"
        lines.append(f"keys      {len(keys)} (federation/epoch received: {held})")
        if status.get("active") and not status["current_key"]:
            lines.append("          no key for the federation's current tree generation yet (next: fogfed node join)")
        lines.append(f"balance   {status['balance_wei'] / 10**18:.6f} ether")
    else:
        lines.append("(--live adds federation, epoch, keys held and balance)")
    return "\n".join(lines)


add_config_command(
    node, "node",
    "fogfed node config",
    "fogfed node config --home ./node1 --json",
    "FOGFED_RPC=http://127.0.0.1:8545 fogfed node config   # see the override win",
)
