"""Benchmark fetches through a swarm of IPFS daemons against a single daemon.

    python -m benchmarks.swarm [--mib N] [--repeat R] [--json PATH] [--quick] [--no-fail]

Starts three js-ipfs daemons on 127.0.0.1 connected to each other (one per fog
node, no public peers). Each sample adds a fresh file of N random MiB through
daemon A and pins it on B too, then times IpfsStore.cat (every block checked
against its CID) of the whole file: from A itself (single daemon, blocks
local), and through C, which holds nothing and pulls every block from A and
B by Bitswap (swarm fetch, cold). Also the replication step: B pinning the
file by CID (Bitswap from A, the daemon's own parallel DAG walk). The ratio
swarm / single is printed; the target is on what fogfed controls: its
verified block-by-block swarm fetch runs at least at half the rate of the
daemon's own pin (exit 1 when missed, unless --no-fail).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python benchmarks/swarm.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Report, base_parser, exit_code, throughput_mb_s
from fogfed.storage import IpfsStore
from fogfed.storage.jsipfs import JsIpfsSwarm

MiB = 1 << 20
TARGET_RATIO = 0.5


class _Random:
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def _timed_cat(store: IpfsStore, cid: str) -> float:
    start = time.perf_counter()
    total = sum(len(p) for p in store.cat(cid))
    elapsed = time.perf_counter() - start
    assert total > 0
    return elapsed


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=None, help="file size in MiB (default 32, --quick 8)")
    args = parser.parse_args(argv)
    size = (args.mib or (8 if args.quick else 32)) * MiB
    repeat = args.repeat or (2 if args.quick else 4)
    work = Path(tempfile.mkdtemp(prefix="fogfed-bench-swarm-"))
    report = Report("swarm", args)
    report.table("fetch", f"js-ipfs swarm of 3 on 127.0.0.1, {size // MiB} MiB file, median of {repeat}",
                 ["operation", "MB/s", "median s"])
    try:
        with JsIpfsSwarm(3, work) as swarm:
            a, b, c = (IpfsStore(url, fetch_timeout=60, timeout=600) for url in swarm.api_urls)
            single, swarm_fetch, pin = [], [], []
            for _ in range(repeat):
                cid = a.add(_Random(size))
                start = time.perf_counter()
                b.pin(cid, timeout=600)
                pin.append(time.perf_counter() - start)
                single.append(_timed_cat(a, cid))
                swarm_fetch.append(_timed_cat(c, cid))
            med = {name: sorted(v)[len(v) // 2] for name, v in
                   (("single", single), ("swarm", swarm_fetch), ("pin", pin))}
            report.row("fetch", "single daemon: cat from A (local blocks)", throughput_mb_s(size, med["single"]),
                       med["single"])
            report.row("fetch", "swarm: cat through C from A+B (Bitswap, cold)", throughput_mb_s(size, med["swarm"]),
                       med["swarm"])
            report.row("fetch", "replicate: B pins by CID (Bitswap from A)", throughput_mb_s(size, med["pin"]),
                       med["pin"])
            report.row("fetch", "ratio swarm / single daemon", med["single"] / med["swarm"], "")
            report.target("swarm fetch rate / the daemon's own pin rate", med["pin"] / med["swarm"], ">=",
                          TARGET_RATIO, "x")
        return report.finish()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(exit_code(main()))  # 1 when the target is missed, unless --no-fail
