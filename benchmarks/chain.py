"""Transaction time on the persistent embedded chain (``embedded:<dir>``) as the chain grows.

    python -m benchmarks.chain [--at 100,10000] [--repeat 15] [--batch 100] [--json F] [--no-fail] [--quick]

For each ``--at`` count N, one state directory with one FogFed deployment
and one member is filled to N transactions with ``registerFile`` calls
(``--batch`` per lock hold, so the filling is quick); every one of them is a
mined block with its own state changes, so the store grows as an operator's
chain does. Then ``--repeat`` rounds each time one real ``registerFile`` on
every chain through the ordinary path (web3 over the persistent provider:
lock, read the latest committed state, estimate, execute, mine, commit),
interleaved so the shared machine's load falls on all sizes alike. Finally a
second process opens each directory and its first transaction is timed too
(the old design re-read the whole state file in every other process).

Target: the median at the last N within 1.5x of the median at the first N.
Exits 1 when the target fails (``--no-fail``: 0).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from benchmarks.common import ROOT, Report, base_parser, parse_ints

LIMIT = 1.5

_OTHER_PROCESS = textwrap.dedent("""
    import os, sys, time
    from fogfed.chain import FogFed, connect
    chain = connect(sys.argv[1])
    fed = FogFed.at(chain, sys.argv[2])
    node = chain.dev_accounts()[int(sys.argv[3])]
    t0 = time.perf_counter()
    fed.register_file(node, int(sys.argv[4]), os.urandom(32), os.urandom(32), os.urandom(32), "A and B", 0)
    print(time.perf_counter() - t0)
""")


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--at", type=parse_ints, default=None, help="transaction counts to measure at (default 100,10000)")
    p.add_argument("--batch", type=int, default=100, help="filler transactions per lock hold (default 100)")
    p.add_argument("--dir", type=Path, default=None, help="state directory (default: a fresh temporary one)")
    args = p.parse_args(argv)
    points = args.at or ([100, 600] if args.quick else [100, 10_000])
    repeat = args.repeat or (5 if args.quick else 15)

    from fogfed.chain import connect, deploy

    base = args.dir or Path(tempfile.mkdtemp(prefix="fogfed-chain-bench-"))

    class Point:
        """One chain directory filled to ``n`` transactions."""

        def __init__(self, n: int) -> None:
            self.n, self.state = n, base / f"chain-{n}"
            self.rpc = f"embedded:{self.state}"
            self.chain = chain = connect(self.rpc)
            self.tas, self.node = chain.dev_accounts()[0], chain.dev_accounts()[1]
            self.fed = deploy(chain, self.tas)
            self.fid = self.fed.create_federation(self.tas, "bench", "chain", os.urandom(64)).value
            self.fed.add_member(self.tas, self.fid, self.node.address, os.urandom(32))
            self.samples: list[float] = []

        def register(self) -> None:
            self.fed.register_file(self.node, self.fid, os.urandom(32), os.urandom(32), os.urandom(32), "A and B", 0)

        def fill(self) -> None:
            have = sum(self.chain.w3.eth.get_transaction_count(a.address) for a in (self.tas, self.node))
            while have < self.n:
                with self.chain._embedded.locked():  # one commit per batch: the filling is not what is measured
                    for _ in range(min(args.batch, self.n - have)):
                        self.register()
                        have += 1

        def timed(self) -> None:
            t0 = time.perf_counter()
            self.register()
            self.samples.append(time.perf_counter() - t0)

        def other_process(self) -> float:
            out = subprocess.run([sys.executable, "-c", _OTHER_PROCESS, self.rpc, self.fed.address, "1",
                                  str(self.fid)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
            if out.returncode != 0:
                raise RuntimeError(out.stderr)
            return float(out.stdout.strip())

    t0 = time.perf_counter()
    chains = [Point(n) for n in points]
    for c in chains:
        c.fill()
    fill_s = time.perf_counter() - t0
    # Interleaved: each round times one transaction on every chain, so load on the
    # shared machine falls on all sizes alike.
    for _ in range(repeat):
        for c in chains:
            c.timed()
    report = Report("chain", args)
    report.table("tx", "registerFile on the persistent embedded chain (interleaved samples)", [
        "transactions on chain", "median ms", "p90 ms", "other process ms", "state MB"])
    medians: list[float] = []
    for c in chains:
        size = sum(f.stat().st_size for f in c.state.iterdir() if f.is_file()) / 1e6
        med = statistics.median(c.samples)
        medians.append(med)
        report.row("tx", c.n, med * 1e3, sorted(c.samples)[int(0.9 * (len(c.samples) - 1))] * 1e3,
                   c.other_process() * 1e3, size)
    ratio = medians[-1] / medians[0]
    report.data["fill_seconds"] = fill_s
    report.data["ratio"] = ratio
    target = report.target(f"registerFile at {points[-1]:,} / at {points[0]:,} transactions", ratio, "<=", LIMIT, "x")
    report.finish()
    print(f"filling took {fill_s:.0f} s; state in {base}")
    return 0 if target.passed or args.no_fail else 1


if __name__ == "__main__":
    sys.exit(main())
