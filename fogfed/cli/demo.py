"""``fogfed demo``: the paper's whole scenario on embedded defaults, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from fogfed.cli import cli
from fogfed.cli.common import ReportedFailure, check_writable, emit, guarded, json_file_option, json_option
from fogfed.cli.common import write_json_file

if TYPE_CHECKING:
    from fogfed.demo import Step


class DemoFailed(ReportedFailure):
    """At least one demo step did not behave as expected (exit code 1)."""


@cli.command("demo", short_help="The paper's whole scenario, embedded (no servers)")
@json_option("Print every step with its measurements as one JSON document (no step lines).")
@json_file_option("every step with its measurements")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Work in DIR and keep it (default: a temporary folder, deleted afterwards).")
@guarded
def demo(as_json: bool, json_file: Path | None, keep: Path | None) -> None:
    """Run the paper's whole scenario on an embedded chain and store (no servers).

    Deploy (Alg 5), TAS setup (Alg 1), five fog nodes in three federations
    (Alg 2/3/6/7), uploads (Alg 4/8), retrieval from a peer cache and from
    storage (Alg 9), refusal of non-members, tamper detection, removal of a
    rogue node with revocation (Alg 10), automatic removal after repeated
    false claims, an audit of the whole history from events alone (HTML
    report in the demo folder; keep it with --keep DIR), and the gas table. Each step prints PASS or FAIL with what
    it checked; the exit code is 0 only if every step passed.

    Keystores use a light Argon2id setting here (it is a demo); real homes
    created by `fogfed tas init` / `fogfed node init` use the full cost.

    \b
    Examples:
      fogfed demo
      fogfed demo --json-file demo.json --keep ./demo   # keep homes, chain, store, audit.html
      fogfed demo --json | jq '.steps[] | select(.passed | not)'
    """
    from fogfed.demo import run_demo

    if json_file is not None:
        check_writable(json_file)

    def show(s: Step) -> None:
        if as_json:
            return
        mark = "PASS" if s.passed else "FAIL" if s.ran else "SKIP"
        click.echo(f"{s.number:>2}. [{mark}] {s.title} ({s.algorithms}) - {s.checked}"
                   + (f" [{s.seconds:.1f} s]" if s.ran else ""))
        if s.ran and not s.passed and s.error and s.error != s.checked:
            click.echo(f"    {s.error}")

    result = run_demo(workdir=keep, on_step=show)
    verdict = ("all steps passed" if result.passed else
               f"{result.failed} step(s) FAILED, {result.skipped} not run")
    doc = result.to_json()
    emit(as_json, doc, lambda: (_gas_table(result.gas_rows) + "\n" if result.gas_rows else "")
         + f"demo: {verdict} in {result.seconds:.1f} s")
    if json_file:
        write_json_file(json_file, doc)
        if not as_json and str(json_file) != "-":
            click.echo(f"wrote {json_file}")
    if not result.passed:
        raise DemoFailed(f"the demo did not behave as the paper expects: {verdict}",
                         "see the FAIL line above; `fogfed demo --keep DIR` keeps the homes, chain and store")


def _gas_table(rows: list[dict]) -> str:
    head = f"{'Table 4 row':<40} {'paper gas':>11} {'fogfed gas':>11} {'ratio':>7} {'SPEC target':>12}"
    lines = ["gas per operation vs the paper's Table 4", head, "-" * len(head)]
    lines += [f"{r['paper_row']:<40.40} {r['paper_gas']:>11,} {r['gas']:>11,} {r['ratio']:>7.3f} "
              f"{'<= ' + format(r['target'], ','):>12}{'' if r['passed'] else '  MISSED'}" for r in rows]
    return "\n".join(lines)
