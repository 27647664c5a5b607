"""``fogfed node ...``: a fog-node operator's commands (thin layer over fogfed.node.client)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import click

from fogfed.cli import cli
from fogfed.cli.common import (common_options, connect_chain, emit, guarded, open_content_store,
                               passphrase, role_home, to_plain, transfer_progress)
from fogfed.errors import FogfedError, InputError


@cli.group()
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
    """


def _open(home: Path | None, rpc: str | None, ipfs: str | None) -> Any:
    from fogfed.node.client import FogNode

    return FogNode.open(role_home(home, "node"), connect_chain(rpc), open_content_store(ipfs), passphrase())


def parse_file_id(text: str) -> bytes:
    from fogfed.node.client import parse_file_id as parse

    return parse(text)


@node.command("init")
@click.option("--contract", envvar="FOGFED_CONTRACT", metavar="ADDRESS", required=True,
              help="The FogFed contract printed by `fogfed tas init` (or $FOGFED_CONTRACT).")
@click.option("--cache-size", type=click.IntRange(min=1), default=1024, show_default=True, metavar="MIB",
              help="Space for cached copies of files, in MiB.")
@common_options("node")
@guarded
def node_init(contract: str, cache_size: int, home: Path | None, rpc: str | None, ipfs: str | None,
              as_json: bool) -> None:
    """Create this node: Ethereum account, X25519 key, keystores, cache.

    \b
    Example:
      FOGFED_PASSPHRASE=s3cret fogfed node init --home ./node1 --contract 0x5FbDB2315678afecb367f032d93F642f64180aa3
    """
    from fogfed.node.client import FogNode
    from fogfed.protocol.keydelivery import check_address

    address = check_address(contract, "contract address")
    with FogNode.init(role_home(home, "node"), connect_chain(rpc), address, open_content_store(ipfs),
                      passphrase(confirm=True), cache_bytes=cache_size << 20) as n:
        pass
    info = {"home": role_home(home, "node"), "address": n.address, "contract": address}
    emit(as_json, info, lambda: (
        f"node {n.address} created in {info['home']}\n"
        "next: fogfed node request --location LOCATION --service SERVICE -o req.json"))


@node.command("request")
@click.option("--location", required=True, help="Where this node is, e.g. riyadh.")
@click.option("--service", required=True, help="What it serves, e.g. health.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the request here (default: print it).")
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
    if output is None:
        click.echo(text)
        return
    try:
        output.write_text(text + "\n")
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}", "choose a writable path") from None
    emit(as_json, {"request": output, "address": req.address},
         f"wrote {output}: give it to the TAS operator (fogfed tas enroll {output.name})")


@node.command("join")
@common_options("node")
@guarded
def node_join(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Pull the keys the TAS delivered on chain (after enrollment or a re-key)."""
    with _open(home, rpc, ipfs) as n:
        new = n.refresh_keys()
    emit(as_json, {"address": n.address, "new_keys": new}, lambda: (
        f"stored {new} new key(s); node {n.address} can upload and fetch" if new else
        f"no new keys for {n.address} (not enrolled yet, or already up to date)"))


@node.command("upload")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--policy", metavar="POLICY",
              help='CP-ABE policy over loc:LOCATION, svc:SERVICE and ff:FEDERATION_ID attributes, '
                   'e.g. "loc:riyadh and svc:health" or "ff:1 or ff:2". Every federation that satisfies it '
                   "may read the file. Default: members of this node's federation.")
@common_options("node")
@guarded
def node_upload(path: Path, policy: str | None, home: Path | None, rpc: str | None, ipfs: str | None,
                as_json: bool) -> None:
    """Encrypt PATH, store it, register it on chain (paper Algorithms 4 and 8).

    The local file is never modified; a failed upload can simply be retried.

    \b
    Example:
      fogfed node upload scan.dcm --policy "svc:health"
    """
    if not path.is_file():
        raise InputError(f"{path} is not a readable file", "give the path of the file to upload")
    with _open(home, rpc, ipfs) as n, \
            transfer_progress(f"upload {path.name}", path.stat().st_size, not as_json) as progress:
        r = n.upload(path, policy=policy, progress=progress)
        _warn_low_balance(n)
    emit(as_json, r, lambda: (
        f"uploaded {path} ({r.size:,} bytes) to federation {r.federation_id}\n"
        f"file id 0x{r.file_id.hex()}\ncid {r.cid}\npolicy {r.policy}"))


def _warn_low_balance(n: Any) -> None:
    from fogfed.chain.funds import low_balance_warning

    warning = low_balance_warning(n.fed.chain, n.address)
    if warning:
        click.echo(f"warning: {warning}", err=True)


@node.command("fetch")
@click.argument("file_id", metavar="FILE_ID")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Where to write the file (default: ./<file id>).")
@common_options("node")
@guarded
def node_fetch(file_id: str, output: Path | None, home: Path | None, rpc: str | None, ipfs: str | None,
               as_json: bool) -> None:
    """Retrieve a file from a peer's cache or from storage, verified (paper Algorithm 9).

    A damaged copy is reported on chain and never written out.

    \b
    Example:
      fogfed node fetch 0x3b1f...c9 -o scan.dcm
    """
    fid = parse_file_id(file_id)
    dest = output or Path(f"0x{fid.hex()}")
    with _open(home, rpc, ipfs) as n, transfer_progress(f"fetch {dest.name}", None, not as_json) as progress:
        r = n.fetch(fid, dest, progress=progress)
        _warn_low_balance(n)
    emit(as_json, r, lambda: (
        f"wrote {r.dest} ({r.size:,} bytes) from {r.source}; SHA-256 matches the chain"
        + "".join(f"\nreported damage: {d}" for d in r.damage_reports)))


@node.command("ls")
@common_options("node")
@guarded
def node_ls(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """List the files this node uploaded."""
    with _open(home, rpc, ipfs) as n:
        files = n.files()
    emit(as_json, {"files": files}, lambda: _rows(files, "no files uploaded yet"))


def _rows(records: list[Any], empty: str) -> str:
    """One ``key=value ...`` line per record."""
    return "\n".join(" ".join(f"{k}={v}" for k, v in to_plain(r).items()) for r in records) or empty


@node.command("serve")
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


@node.group("cache")
def cache() -> None:
    """The node's local cache of encrypted copies."""


@cache.command("ls")
@common_options("node")
@guarded
def cache_ls(home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """List cached copies (file id, size, expiry of the announcement)."""
    with _open(home, rpc, ipfs) as n:
        entries = n.cache_entries()
    emit(as_json, {"entries": entries}, lambda: _rows(entries, "cache is empty"))


@cache.command("evict")
@click.argument("file_id", metavar="FILE_ID")
@common_options("node")
@guarded
def cache_evict(file_id: str, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Drop the cached copy of FILE_ID and withdraw its announcement on chain."""
    fid = parse_file_id(file_id)
    with _open(home, rpc, ipfs) as n:
        removed = n.evict(fid)
    emit(as_json, {"file_id": fid, "removed": removed},
         f"evicted 0x{fid.hex()}" if removed else f"0x{fid.hex()} was not cached")


@cache.command("refresh")
@click.option("--margin", type=click.IntRange(min=0), default=300, show_default=True, metavar="SECONDS",
              help="Re-announce copies whose announcement ends within this many seconds.")
@common_options("node")
@guarded
def cache_refresh(margin: int, home: Path | None, rpc: str | None, ipfs: str | None, as_json: bool) -> None:
    """Re-announce cached copies on chain before their announcements expire."""
    with _open(home, rpc, ipfs) as n:
        count = n.refresh_announcements(margin=margin)
    emit(as_json, {"reannounced": count}, f"re-announced {count} cached cop{'y' if count == 1 else 'ies'}")
