"""Uploads per minute with several node processes at once on the persistent embedded chain.

    python -m benchmarks.throughput [--procs 8] [--uploads 6] [--kib 64] [--json F]

One TAS and ``--procs`` enrolled nodes (each its own home) share one
``embedded:<dir>`` chain and one embedded store. Every node runs in its own
process and uploads ``--uploads`` files of ``--kib`` KiB of random bytes one
after the other (``FogNode.upload``: encrypt, store, registerFile, cache,
announce), all processes at once. Reported: uploads per minute over the whole run (first start to
last finish), and the median and p90 latency of one upload. No target: the
figure is compared across designs (issue 13 item 10).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from benchmarks.common import ROOT, Report, base_parser

_WORKER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from fogfed.chain import connect
    from fogfed.node import FogNode
    from fogfed.storage import EmbeddedStore
    root, name, n, kib = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    chain = connect(f"embedded:{root / 'chain'}")
    times = []
    with FogNode.open(root / name, chain, EmbeddedStore(root / "store"), "benchmark passphrase") as node:
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        went = time.time()
        for i in range(n):
            src = root / f"{name}-{i}.bin"
            src.write_bytes(os.urandom(kib * 1024))
            t0 = time.perf_counter()
            node.upload(src)
            times.append(time.perf_counter() - t0)
        done = time.time()
    print(json.dumps({"times": times, "went": went, "done": done}))
""")


def main(argv: list[str] | None = None) -> int:
    p = base_parser(__doc__.split("\n\n")[0])
    p.add_argument("--procs", type=int, default=8, help="node processes uploading at once (default 8)")
    p.add_argument("--uploads", type=int, default=6, help="uploads per process (default 6)")
    p.add_argument("--kib", type=int, default=64, help="size of each file in KiB (default 64)")
    args = p.parse_args(argv)
    if args.quick:
        args.procs, args.uploads = 2, 2

    from fogfed.chain import connect
    from fogfed.keys.keystore import KdfParams
    from fogfed.node import FogNode
    from fogfed.storage import EmbeddedStore
    from fogfed.tas import TrustedAuthority

    root = Path(tempfile.mkdtemp(prefix="fogfed-throughput-"))
    chain = connect(f"embedded:{root / 'chain'}")
    light = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
    store = EmbeddedStore(root / "store")
    tas = TrustedAuthority.init(root / "tas", chain, "benchmark passphrase", account=chain.dev_accounts()[0],
                                kdf=light)
    names = [f"n{i}" for i in range(args.procs)]
    for name in names:
        node = FogNode.init(root / name, chain, tas.contract_address, store, "benchmark passphrase", kdf=light)
        tas.enroll(node.enrollment_request("riyadh", "health"), approve=True, fund_wei=10**18)
        node.refresh_keys()
        node.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(root), name, str(args.uploads), str(args.kib)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env, cwd=ROOT) for name in names]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
    t0 = time.perf_counter()
    for proc in procs:  # a real newline: a worker's readline waited for EOF, so the processes ran one by one
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    times: list[float] = []
    spans: list[tuple[float, float]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            print(err, file=sys.stderr)
            return 1
        result = json.loads(out.strip().splitlines()[-1])
        times += result["times"]
        spans.append((result["went"], result["done"]))
    wall = time.perf_counter() - t0
    report = Report("throughput", args)
    report.table("t", f"{args.procs} node processes, {args.uploads} uploads each, {args.kib} KiB files", [
        "uploads", "wall s", "uploads/min", "p50 s", "p90 s"])
    times.sort()
    report.row("t", len(times), wall, len(times) / wall * 60, statistics.median(times),
               times[int(0.9 * (len(times) - 1))])
    # the proof that the processes ran at once: every one had started before the first finished
    report.data["overlapped"] = max(w for w, _ in spans) < min(d for _, d in spans)
    report.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
