"""Gas of every Table 4 operation on the embedded chain and on a fresh Anvil.

    python -m benchmarks.gas [--scale N] [--json PATH] [--plot PATH] [--quick]

Runs ``fogfed.chain.gasreport.measure`` (what ``fogfed gas-report`` shows)
twice: on the embedded chain (py-evm) and on an Anvil node started for the
run (npm Anvil, via fogfed.chain.devnet) and stopped after. The two must
charge identical gas for identical transactions; the comparison table says
so row by row. The targets table checks SPEC section 5 (gas <= target, and
no operation grows after N more nodes and files). Exit code 1 if the two
chains disagree or a target fails (--no-fail: only if they disagree).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python benchmarks/gas.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Report, base_parser, exit_code, progress
from fogfed.chain import gasreport
from fogfed.chain.devnet import start_anvil
from fogfed.errors import FogfedError


def run(rpc: str | None, scale: int, label: str) -> tuple[gasreport.GasReport, float]:
    start = time.perf_counter()
    with progress(f"gas on {label}") as step:
        report = gasreport.measure(rpc, scale=scale, progress=lambda done, total, what: step(done, total, what))
    return report, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=None,
                        help=f"nodes and files added for the scale check (default {gasreport.DEFAULT_SCALE:,}; "
                             "20 with --quick)")
    args = parser.parse_args(argv)
    scale = args.scale or (20 if args.quick else gasreport.DEFAULT_SCALE)
    try:
        embedded, t_embedded = run(None, scale, "the embedded chain")
        with start_anvil() as anvil:
            on_anvil, t_anvil = run(anvil.url, scale, "Anvil")
    except FogfedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    report = Report("gas", args)
    report.table("rows", "Gas per Table 4 operation: paper, embedded chain (py-evm), Anvil",
                 ["Table 4 row", "operation", "paper gas", "embedded", "anvil", "same", "ratio", "target"])
    for e, a in zip(embedded.rows, on_anvil.rows):
        report.row("rows", e.paper_row, e.operation, e.paper_gas, e.gas, a.gas, e.gas == a.gas,
                   round(e.ratio, 4), e.target)
        report.target(e.paper_row, e.gas, "<=", e.target, "gas")
    report.table("scale", f"Scale check: at the 1st node / file, and after {scale:,} more of each",
                 ["operation", "1st (embedded)", f"+{scale:,} (embedded)", "1st (anvil)", f"+{scale:,} (anvil)",
                  "flat"])
    for e, a in zip(embedded.scale, on_anvil.scale):
        report.row("scale", e.operation, e.first, e.nth, a.first, a.nth, e.flat and a.flat)
        report.target(f"{e.operation} after +{scale:,}", e.nth, "<=",
                      int(e.first * (1 + gasreport.FLAT_TOLERANCE)), "gas")
    report.table("runs", "Runs", ["chain", "client", "chain id", "seconds", f"tx per s (~{2 * scale + 12:,} tx)"])
    for r, t in ((embedded, t_embedded), (on_anvil, t_anvil)):
        report.row("runs", r.chain["name"], r.chain["client"], str(r.chain["chain_id"]), round(t, 2),
                   round((2 * scale + 12) / t, 1))
    identical = ([r.gas for r in embedded.rows] == [r.gas for r in on_anvil.rows]
                 and [(s.first, s.nth) for s in embedded.scale] == [(s.first, s.nth) for s in on_anvil.scale])
    report.data.update(scale=scale, identical=identical, compiler=embedded.compiler,
                       embedded=embedded.to_json(), anvil=on_anvil.to_json())
    if args.plot:
        gasreport.write_plot(embedded, args.plot, others=[on_anvil])
        print(f"wrote {args.plot}", file=sys.stderr)
    report.finish()
    print("embedded and Anvil gas: " + ("identical" if identical else "DIFFERENT"))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(exit_code(main()))
