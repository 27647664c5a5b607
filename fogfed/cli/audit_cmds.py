"""``fogfed audit replay|verify|report``: thin formatting over fogfed.audit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fogfed.cli import cli

if TYPE_CHECKING:  # imported where used: web3 and the auditor cost ~0.4 s at start-up
    from rich.console import Console
    from web3 import Web3

    from fogfed import audit

from fogfed.cli.common import (ReportedFailure, emit, examples, fogfed_home, guarded, json_file_option,
                               json_option)

DB_HELP = ("SQLite checkpoint file (one per deployment; a replay resumes from it). "
           "Default: $FOGFED_HOME/audit/<contract address>.sqlite.")
RPC_HELP = ("JSON-RPC URL of the Ethereum node, or embedded:<dir>. Default: $FOGFED_RPC, else the rpc the TAS "
            "home remembers ($FOGFED_HOME/tas/settings.toml), else the embedded chain the other fogfed commands "
            "share ($FOGFED_HOME/chain).")
ADDRESS_HELP = "The FogFed contract's address. Default: $FOGFED_CONTRACT."


CONFIRMATIONS_HELP = ("Replay only blocks with this many blocks on top (or up to the node's 'safe' or "
                     "'finalized' block), the setting the writers use: 0 on devnets, e.g. 12 or 'finalized' "
                     "on Ethereum. Default: $FOGFED_CONFIRMATIONS, else the TAS home's settings.toml, else 0.")


MOBILITY_HELP = ("Also replay this FogFedMobility contract's events: moves shown as moves, not as removals. "
                 "A checkpoint keeps the choice it was made with.")


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _tas_setting(name: str) -> tuple[str | None, str]:
    """``name`` from $FOGFED_* or the TAS home's settings.toml (the chain the TAS was set up on), with its source."""
    from fogfed.cli.common import role_home, setting

    return setting(name, None, role_home(None, "tas"))


def _rpc(rpc: str | None) -> str | None:
    """--rpc, else $FOGFED_RPC, else the TAS home's rpc; None: the shared embedded chain."""
    return rpc or _tas_setting("rpc")[0]


def _confirmations(raw: str | None) -> int | str | None:
    """--confirmations checked like every other command's; without it $FOGFED_CONFIRMATIONS or the TAS home's."""
    from fogfed.chain.finality import parse_confirmations
    from fogfed.errors import InputError

    raw, source = (raw, "--confirmations") if raw is not None else _tas_setting("confirmations")
    if raw is None:
        return None  # the replay's default: 0
    try:
        return parse_confirmations(raw)
    except InputError as exc:
        raise InputError(f"{exc.message} (from {source})", exc.hint) from None


def _run_replay(w3: Web3, address: str, db: Path, from_block: int | None, to_block: int | None,
                near: int, quiet: bool, mobility: str | None,
                confirmations: int | str | None = None) -> audit.ReplayResult:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from fogfed import audit

    config = audit.RebuildConfig(near_removal_blocks=near)
    if quiet:
        return audit.replay(w3, address, db, from_block=from_block, to_block=to_block, config=config,
                            mobility=mobility, confirmations=confirmations)
    columns = (TextColumn("replaying blocks"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[events]} events"), TimeElapsedColumn())
    with Progress(*columns, console=_console(), transient=True) as bar:
        task = bar.add_task("replay", total=None, events=0)

        def progress(start: int, done: int, head: int, events: int) -> None:
            bar.update(task, total=head - start + 1, completed=done - start + 1, events=events)

        return audit.replay(w3, address, db, from_block=from_block, to_block=to_block, config=config,
                            progress=progress, mobility=mobility, confirmations=confirmations)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def default_db(address: str) -> Path:
    """The checkpoint of ``address`` in the audit home (never the working directory)."""
    return fogfed_home() / "audit" / f"{address.lower()}.sqlite"


def _db_for(db: Path | None, address: str | None, create: bool = True) -> Path:
    if db is not None:
        return db
    if not address:
        from fogfed.errors import InputError

        raise InputError("which checkpoint? no --db and no contract address",
                         "pass --address 0xCONTRACT (or set FOGFED_CONTRACT), or --db FILE")
    path = default_db(address)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _common(fn):  # type: ignore[no-untyped-def]
    fn = json_option()(fn)
    fn = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None, help=DB_HELP)(fn)
    fn = click.option("--address", envvar="FOGFED_CONTRACT", required=True, metavar="0x...", help=ADDRESS_HELP)(fn)
    fn = click.option("--rpc", envvar="FOGFED_RPC", metavar="URL", help=RPC_HELP)(fn)
    fn = click.option("--mobility", metavar="0x...", help=MOBILITY_HELP)(fn)
    fn = click.option("--confirmations", metavar="N|safe|finalized", help=CONFIRMATIONS_HELP)(fn)
    return fn


@cli.group("audit", short_help="Replay the contract's events, verify them, report")
def audit_group() -> None:
    """Replay contract events, rebuild and verify the history, find anomalies, report.

    \b
    Typical run (FOGFED_CONTRACT and FOGFED_RPC, or --address and --rpc):
      fogfed audit replay                   # events -> $FOGFED_HOME/audit/<contract>.sqlite
      fogfed audit verify                   # rebuilt state == the contract's views?
      fogfed audit report --html audit.html # findings, timeline, charts (offline)
    """


@audit_group.command("replay", short_help="Replay every event into the checkpoint")
@_common
@click.option("--from-block", type=click.IntRange(min=0), help="First block (default: the deployment block).")
@click.option("--to-block", type=click.IntRange(min=0), help="Last block (default: the chain head).")
@click.option("--near-removal-blocks", type=click.IntRange(min=0), default=10, show_default=True,
              help="Flag registrations/announcements this close to a removal (fixed per checkpoint).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@examples(
    "fogfed audit replay --rpc http://127.0.0.1:8545 --address 0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "FOGFED_CONTRACT=0x5FbD... fogfed audit replay --db audit.sqlite --to-block 1000",
    "fogfed audit replay --rpc https://rpc.example --confirmations finalized",
    "fogfed audit replay --json | jq .new_events",
)
@guarded
def replay_cmd(confirmations: str | None, mobility: str | None, rpc: str | None, address: str, db: Path | None,
               as_json: bool, from_block: int | None, to_block: int | None, near_removal_blocks: int,
               quiet: bool) -> None:
    """Replay every event into the checkpoint (resumes where the last run stopped)."""
    from fogfed import audit

    depth = _confirmations(confirmations)
    db = _db_for(db, address)
    r = _run_replay(audit.connect(_rpc(rpc)), address, db, from_block, to_block, near_removal_blocks, quiet, mobility,
                    depth)
    where = f"resumed after block {r.resumed_from}" if r.resumed_from is not None else f"from block {r.start_block}"
    emit(as_json, {"contract": address, "db": db, "start_block": r.start_block, "resumed_from": r.resumed_from,
                   "head": r.head, "new_events": r.new_events, "total_events": r.total_events},
         f"replayed {r.new_events} new events ({where}) up to block {r.head}; {r.total_events} events in {db}")


class VerifyFailed(ReportedFailure):
    """The rebuilt state differs from the contract's views (exit code 1)."""


@audit_group.command("verify", short_help="Replay, then check the state against the contract")
@_common
@click.option("--no-replay", is_flag=True, help="Verify the checkpoint as is, without replaying new blocks.")
@examples(
    "fogfed audit verify --rpc http://127.0.0.1:8545 --address 0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "fogfed audit verify --no-replay --db audit.sqlite",
    "fogfed audit verify --json | jq '.mismatches[]'",
)
@guarded
def verify_cmd(confirmations: str | None, mobility: str | None, rpc: str | None, address: str, db: Path | None,
               as_json: bool, no_replay: bool) -> None:
    """Replay up to the head, then compare the rebuilt state with the contract's views at that block
    (with --mobility, also that the mobility contract serves this FogFed)."""
    from fogfed import audit

    depth = _confirmations(confirmations)
    db = _db_for(db, address)
    w3 = audit.connect(_rpc(rpc))
    if no_replay:
        with audit.Checkpoint.open(db) as cp:
            audit.check_mobility(cp, mobility)
            state, head = audit.restore(cp).data, cp.last_block or 0
    else:
        r = _run_replay(w3, address, db, None, None, 10, True, mobility, depth)
        state, head = r.state, r.head
    mismatches = audit.verify(w3, address, state, head)
    counts = {"federations": len(state["federations"]), "members": len(state["members"]),
              "files": len(state["files"])}
    doc = {"contract": address, "db": db, "block": head, "verified": not mismatches, "counts": counts,
           "mismatches": [{"subject": f.subject, "message": f.message} for f in mismatches]}
    emit(as_json, doc, lambda: "\n".join(
        [f"MISMATCH {f.subject}: {f.message}" for f in mismatches]
        or [f"verified at block {head}: rebuilt state equals the contract's views "
            f"({_count(counts['federations'], 'federation')}, {_count(counts['members'], 'member')}, "
            f"{_count(counts['files'], 'file')})"]))
    if mismatches:
        raise VerifyFailed(f"{len(mismatches)} difference(s) between the rebuilt state and the contract "
                           f"at block {head}", "each MISMATCH line above is a finding; investigate them")


@audit_group.command("report", short_help="Findings and history from the checkpoint")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None, help=DB_HELP)
@click.option("--address", envvar="FOGFED_CONTRACT", metavar="0x...",
              help="Whose checkpoint in the audit home to read (when no --db). Default: $FOGFED_CONTRACT.")
@json_option("Print the whole report (summary, findings, history) as one JSON document.")
@json_file_option("the whole report")
@click.option("--csv", "csv_dir", type=click.Path(file_okay=False, path_type=Path), help="Write CSV files here.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one self-contained HTML page here.")
@click.option("--denied-threshold", type=click.IntRange(min=1), default=3, show_default=True,
              help="Denied accesses by one address that count as probing.")
@click.option("--damage-threshold", type=click.IntRange(min=1), default=3, show_default=True,
              help="Damage reports on one uploader or holder that count as a cluster.")
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Names for addresses ({\"0x...\": \"label\"}; the TAS's labels.json from `fogfed tas label`), "
                   "shown next to them.")
@examples(
    "fogfed audit report --html audit.html",
    "fogfed audit report --db audit.sqlite --json-file audit.json --csv audit-csv/",
    "fogfed audit report --json | jq '.findings[] | .kind'",
    "fogfed audit report --html audit.html --labels ~/.fogfed/tas/labels.json",
)
@guarded
def report_cmd(db: Path | None, address: str | None, as_json: bool, json_file: Path | None,
               csv_dir: Path | None, html_path: Path | None, denied_threshold: int, damage_threshold: int,
               labels_file: Path | None) -> None:
    """Findings and history from the checkpoint alone (no network); prints the findings."""
    from fogfed import audit
    from fogfed.cli.common import write_json_file

    from fogfed.cli.common import read_labels_file

    labels = read_labels_file(labels_file, missing_ok=False) if labels_file else None
    db = _db_for(db, address, create=False)
    with audit.Checkpoint.open(db) as cp:
        report = audit.build_report(cp, audit.Thresholds(denied_threshold, damage_threshold), labels=labels)
        if json_file:
            write_json_file(json_file, report)
        if csv_dir:
            audit.write_csv(report, cp, csv_dir)
        if html_path:
            audit.write_html(report, cp, html_path)
    s = report["summary"]

    def text() -> str:
        counts = ", ".join(_count(s[k + "s"], k) for k in ("federation", "member", "file", "removal", "move",
                                                           "finding"))
        lines = [f"{report['contract']} up to block {report['head_block']}: "
                 f"{_count(report['events'], 'event')}, {counts}"]
        lines += [f"[{f['kind']}] {f['message']} (tx {', '.join(f['txs'][:3]) or '-'})" for f in report["findings"]]
        return "\n".join(lines)

    emit(as_json, report, text)
