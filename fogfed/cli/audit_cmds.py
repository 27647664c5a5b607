"""``fogfed audit replay|verify|report``: thin formatting over fogfed.audit."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from web3 import Web3

from fogfed import audit
from fogfed.cli import cli

DB_HELP = "SQLite checkpoint file (one per deployment; a replay resumes from it)."
RPC_HELP = ("JSON-RPC URL of the Ethereum node, or embedded:<dir>. "
            "Default: the embedded chain the other fogfed commands share ($FOGFED_HOME/chain).")


MOBILITY_HELP = ("Also replay this FogFedMobility contract's events: moves shown as moves, backward-secrecy "
                 "settings. A checkpoint keeps the choice it was made with.")


def _console() -> Console:
    return Console(stderr=True, highlight=False)


def _run_replay(w3: Web3, address: str, db: Path, from_block: int | None, to_block: int | None,
                near: int, quiet: bool, mobility: str | None) -> audit.ReplayResult:
    config = audit.RebuildConfig(near_removal_blocks=near)
    if quiet:
        return audit.replay(w3, address, db, from_block=from_block, to_block=to_block, config=config,
                            mobility=mobility)
    columns = (TextColumn("replaying blocks"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[events]} events"), TimeElapsedColumn())
    with Progress(*columns, console=_console(), transient=True) as bar:
        task = bar.add_task("replay", total=None, events=0)

        def progress(start: int, done: int, head: int, events: int) -> None:
            bar.update(task, total=head - start + 1, completed=done - start + 1, events=events)

        return audit.replay(w3, address, db, from_block=from_block, to_block=to_block, config=config,
                            progress=progress, mobility=mobility)


def _common(fn):  # type: ignore[no-untyped-def]
    fn = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("fogfed-audit.sqlite"),
                      show_default=True, help=DB_HELP)(fn)
    fn = click.option("--address", required=True, metavar="0x...", help="The FogFed contract's address.")(fn)
    fn = click.option("--rpc", metavar="URL", help=RPC_HELP)(fn)
    fn = click.option("--mobility", metavar="0x...", help=MOBILITY_HELP)(fn)
    return fn


@cli.group("audit")
def audit_group() -> None:
    """Replay contract events, rebuild and verify the history, find anomalies, report."""


@audit_group.command("replay")
@_common
@click.option("--from-block", type=click.IntRange(min=0), help="First block (default: the deployment block).")
@click.option("--to-block", type=click.IntRange(min=0), help="Last block (default: the chain head).")
@click.option("--near-removal-blocks", type=click.IntRange(min=0), default=10, show_default=True,
              help="Flag registrations/announcements this close to a removal (fixed per checkpoint).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def replay_cmd(mobility: str | None, rpc: str | None, address: str, db: Path, from_block: int | None,
               to_block: int | None, near_removal_blocks: int, quiet: bool) -> None:
    """Replay every event into the checkpoint (resumes where the last run stopped)."""
    r = _run_replay(audit.connect(rpc), address, db, from_block, to_block, near_removal_blocks, quiet, mobility)
    where = f"resumed after block {r.resumed_from}" if r.resumed_from is not None else f"from block {r.start_block}"
    click.echo(f"replayed {r.new_events} new events ({where}) up to block {r.head}; "
               f"{r.total_events} events in {db}")


@audit_group.command("verify")
@_common
@click.option("--no-replay", is_flag=True, help="Verify the checkpoint as is, without replaying new blocks.")
def verify_cmd(mobility: str | None, rpc: str | None, address: str, db: Path, no_replay: bool) -> None:
    """Replay up to the head, then compare the rebuilt state with the contract's views at that block
    (with --mobility, also the backward-secrecy settings with the mobility contract's)."""
    w3 = audit.connect(rpc)
    if no_replay:
        with audit.Checkpoint.open(db) as cp:
            audit.check_mobility(cp, mobility)
            state, head = audit.restore(cp).data, cp.last_block or 0
    else:
        r = _run_replay(w3, address, db, None, None, 10, True, mobility)
        state, head = r.state, r.head
    mismatches = audit.verify(w3, address, state, head)
    for f in mismatches:
        click.echo(f"MISMATCH {f.subject}: {f.message}")
    counts = (f"{len(state['federations'])} federations, {len(state['members'])} members, "
              f"{len(state['files'])} files")
    if mismatches:
        raise audit.AuditError(f"{len(mismatches)} difference(s) between the rebuilt state and the contract "
                               f"at block {head}", "each MISMATCH line above is a finding; investigate them")
    click.echo(f"verified at block {head}: rebuilt state equals the contract's views ({counts})")


@audit_group.command("report")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=Path("fogfed-audit.sqlite"),
              show_default=True, help=DB_HELP)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="Write JSON here.")
@click.option("--csv", "csv_dir", type=click.Path(file_okay=False, path_type=Path), help="Write CSV files here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one self-contained HTML page here.")
@click.option("--denied-threshold", type=click.IntRange(min=1), default=3, show_default=True,
              help="Denied accesses by one address that count as probing.")
@click.option("--damage-threshold", type=click.IntRange(min=1), default=3, show_default=True,
              help="Damage reports on one uploader or holder that count as a cluster.")
def report_cmd(db: Path, json_path: Path | None, csv_dir: Path | None, html_path: Path | None,
               denied_threshold: int, damage_threshold: int) -> None:
    """Findings and history from the checkpoint alone (no network); prints the findings."""
    with audit.Checkpoint.open(db) as cp:
        report = audit.build_report(cp, audit.Thresholds(denied_threshold, damage_threshold))
        if json_path:
            audit.write_json(report, json_path)
        if csv_dir:
            audit.write_csv(report, cp, csv_dir)
        if html_path:
            audit.write_html(report, cp, html_path)
    s = report["summary"]
    click.echo(f"{report['contract']} up to block {report['head_block']}: {report['events']} events, "
               f"{s['federations']} federations, {s['members']} members, {s['files']} files, "
               f"{s['removals']} removals, {s['moves']} moves, {s['findings']} findings")
    for f in report["findings"]:
        click.echo(f"[{f['kind']}] {f['message']} (tx {', '.join(f['txs'][:3]) or '-'})")
