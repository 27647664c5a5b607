"""``fogfed deploy`` and ``fogfed gas-report``: thin formatting over fogfed.chain."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from fogfed.cli import cli
from fogfed.cli.common import (ReportedFailure, check_writable, emit, examples, guarded, json_file_option,
                               json_option, write_json_file)
from fogfed.errors import FogfedError

if TYPE_CHECKING:  # imported where used: web3 and py-evm cost ~0.4 s at start-up
    from rich.console import Console
    from rich.table import Table

    from fogfed.chain import gasreport

#: gasreport.DEFAULT_SCALE / MAX_SCALE, here so --help needs no chain import (a test keeps them equal).
DEFAULT_SCALE = 1_000
MAX_SCALE = 100_000

RPC_HELP = ("JSON-RPC URL of an Ethereum node (Anvil, Ganache, ...), or embedded:DIR. "
            "Default: $FOGFED_RPC, else a fresh embedded chain that lives only for this command.")


def _console(err: bool = False) -> Console:
    from rich.console import Console

    # highlight=False: rich would otherwise recolour numbers in plain text. Piped
    # output gets a fixed width wide enough for the seven-column table (rich
    # would assume 80 and wrap every row).
    console = Console(stderr=err, highlight=False)
    return console if console.is_terminal else Console(stderr=err, highlight=False, width=132)


@cli.command(short_help="Deploy FogFed (Algorithm 5), print its address")
@click.option("--rpc", metavar="URL", envvar="FOGFED_RPC", help=RPC_HELP)
@click.option("--chain-id", type=click.IntRange(min=1), metavar="N",
              help="Refuse to deploy unless the node reports this chain id.")
@json_option()
@examples(
    "fogfed deploy --rpc http://127.0.0.1:8545",
    "FOGFED_PRIVATE_KEY=0x... fogfed deploy --rpc $RPC --chain-id 31337 --json | jq -r .address",
)
@guarded
def deploy(rpc: str | None, chain_id: int | None, as_json: bool) -> None:
    """Deploy the FogFed contract (paper Algorithm 5) and print its address.

    The deployer becomes the contract's admin and TAS operator. It is the
    account of FOGFED_PRIVATE_KEY (0x-hex) when set, otherwise the chain's first
    dev account (on Anvil and Ganache: the default mnemonic's first account).
    """
    from fogfed.chain import connect, gasreport
    from fogfed.chain import deploy as deploy_fogfed

    chain = connect(rpc, chain_id=chain_id)
    deployer = chain.dev_accounts()[0]
    fed = deploy_fogfed(chain, deployer)
    receipt = fed.deploy_receipt
    result = {"address": fed.address, "block": int(receipt["blockNumber"]), "gas_used": int(receipt["gasUsed"]),
              "tx": gasreport.tx_hex(receipt["transactionHash"]), "deployer": deployer.address,
              "chain": chain.label, "chain_id": chain.chain_id, "persistent": rpc is not None}
    emit(as_json, result, lambda: (
        f"FogFed deployed at {fed.address}\n"
        f"on {chain.label} (chain id {chain.chain_id}), block {result['block']}, "
        f"gas used {result['gas_used']:,}, deployer {deployer.address}"))
    if rpc is None:
        click.echo("note: the embedded chain lives only for this process, so this contract is gone "
                   "now; pass --rpc URL (or embedded:DIR) to deploy where it stays.", err=True)


class GasReportFailed(ReportedFailure):
    """A row missed its target or an operation's gas grew (exit code 1)."""


@cli.command("gas-report", short_help="Gas per operation against the paper's Table 4")
@click.option("--rpc", metavar="URL", envvar="FOGFED_RPC", help=RPC_HELP)
@click.option("--chain-id", type=click.IntRange(min=1), metavar="N",
              help="Refuse to run unless the node reports this chain id.")
@json_option("Print the report as one JSON document (SPEC form: {\"rows\": [...], ...}) instead of tables.")
@json_file_option("the report")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              metavar="PATH", help="Also write a PNG bar chart (log scale) of paper vs fogfed gas.")
@click.option("--scale", type=click.IntRange(min=2, max=MAX_SCALE), default=DEFAULT_SCALE,
              show_default=True, metavar="N",
              help="Scale check: add N nodes and N files, then measure the same operations again.")
@examples(
    "fogfed gas-report --scale 50",
    "fogfed gas-report --rpc http://127.0.0.1:8545 --json-file gas.json --plot gas.png",
    "fogfed gas-report --scale 10 --json | jq '.rows[] | {operation, gas, ratio}'",
)
@guarded
def gas_report(rpc: str | None, chain_id: int | None, as_json: bool, json_file: Path | None,
               plot_path: Path | None, scale: int) -> None:
    """Gas of every operation in the paper's Table 4: paper, fogfed, ratio, target.

    Deploys a fresh FogFed, runs each operation once as a transaction and reads
    gasUsed from its receipt. Then it adds N nodes and N files and measures the
    same operations again, to show gas does not grow with scale. Exits 1 if a
    row misses its target or an operation grows.

    The sending account (deployer, TAS; it also funds one uploader account) is
    FOGFED_PRIVATE_KEY when set, otherwise the chain's first dev account.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fogfed.chain import gasreport

    if plot_path is not None:
        from fogfed import _plot

        _plot.require()  # before minutes of measuring, not after
    for path in (json_file, plot_path):
        if path is not None:
            check_writable(path)  # before minutes of measuring, not after
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_console(err=True), transient=True) as bar:
        task = bar.add_task("scale check", total=None)

        def progress(done: int, total: int, what: str) -> None:
            bar.update(task, completed=done, total=total, description=what)

        report = gasreport.measure(rpc=rpc, chain_id=chain_id, scale=scale, progress=progress)
    missed = [r.paper_row for r in report.rows if not r.passed] + [s.operation for s in report.scale if not s.flat]
    if as_json:
        emit(True, report.to_json(), "")
    else:
        out = _console()
        out.print(_rows_table(report))
        out.print(_scale_table(report))
        verdict = "[green]PASS[/]" if report.passed else f"[red]FAIL[/] ({', '.join(missed)})"
        out.print(f"{verdict}: chain {report.chain['name']} (id {report.chain['chain_id']}), "
                  f"solc {report.compiler.get('version', '?')}")
    if json_file:
        write_json_file(json_file, report.to_json())
    if plot_path:
        _write(plot_path, lambda p: gasreport.write_plot(report, p))
    for path in (json_file, plot_path):
        if path is not None and str(path) != "-" and not as_json:
            click.echo(f"wrote {path}")
    if not report.passed:
        raise GasReportFailed(f"gas report failed: {', '.join(missed)} "
                              f"{'misses its target' if len(missed) == 1 else 'miss their targets'}",
                              "see the tables above; the JSON report has every figure")


def _rows_table(report: gasreport.GasReport) -> Table:
    from rich.table import Table

    table = Table(title="Gas per operation vs the paper's Table 4")
    for name, justify in (("Table 4 row", "left"), ("operation", "left"), ("paper gas", "right"),
                          ("fogfed gas", "right"), ("ratio", "right"), ("target", "right"), ("", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for r in report.rows:
        table.add_row(r.paper_row, r.operation, f"{r.paper_gas:,}", f"{r.gas:,}", f"{r.ratio:.3f}",
                      f"<= {r.target:,}", "[green]ok[/]" if r.passed else "[red]MISSED[/]")
    return table


def _scale_table(report: gasreport.GasReport) -> Table:
    from rich.table import Table

    table = Table(title=f"Scale check: each operation at the 1st node / file, and again after "
                        f"{report.scale_n:,} more nodes and {report.scale_n:,} more files")
    for name in ("operation", "at 1st", f"after +{report.scale_n:,}", "change", ""):
        table.add_column(name, justify="left" if name == "operation" else "right")
    for s in report.scale:
        table.add_row(s.operation, f"{s.first:,}", f"{s.nth:,}", f"{s.nth - s.first:+,}",
                      "[green]flat[/]" if s.flat else "[red]GROWS[/]")
    return table


def _write(path: Path, write: Callable[[Path], object]) -> None:
    try:
        write(path)
    except OSError as exc:
        raise FogfedError(f"cannot write {path}: {exc.strerror or exc}",
                          "choose a path in a writable folder") from exc
