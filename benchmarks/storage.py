"""Benchmark the content stores: throughput and peak memory of add and cat.

    python -m benchmarks.storage [--mib N] [--repeat R] [--json PATH] [--plot PATH] [--quick] [--no-ipfs] [--no-fail]

Over one file of N MiB of random bytes on disk: raw SHA-256 of the file (the
baseline every add needs), compute_cid (the UnixFS importer alone), the
embedded store's add (fsynced) and verified cat, and an offline js-ipfs node
(started here) through IpfsStore: add, verified block-by-block cat, and the
node's own unverified /api/v0/cat for comparison. Peak memory is what Python
allocated during one call (tracemalloc). Exit code 1 when a target fails (--no-fail: 0 anyway).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python benchmarks/storage.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from benchmarks.common import (Report, bar_plot, base_parser, exit_code, measure, peak_traced_memory,
                               throughput_mb_s)
from fogfed.storage import EmbeddedStore, IpfsStore, compute_cid
from fogfed.storage.jsipfs import JsIpfsNode

MiB = 1 << 20


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            h.update(block)
    return h.hexdigest()


def _drain(pieces) -> int:
    return sum(len(p) for p in pieces)


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=None, help="file size in MiB (default 64, --quick 8)")
    parser.add_argument("--no-ipfs", action="store_true", help="skip the js-ipfs node")
    args = parser.parse_args(argv)
    size = (args.mib or (8 if args.quick else 64)) * MiB
    repeat = args.repeat or (2 if args.quick else 5)

    work = Path(tempfile.mkdtemp(prefix="fogfed-bench-storage-"))
    report = Report("storage", args)
    report.table("ops", f"content stores, {size // MiB} MiB file, median of {repeat}",
                 ["operation", "MB/s", "peak MiB"])
    try:
        src = work / "file.bin"
        with open(src, "wb") as f:
            for _ in range(size // MiB):
                f.write(os.urandom(MiB))

        def row(name, fn, setup=None):
            t = measure(fn, repeat=repeat, warmup=1, setup=setup)
            if setup:
                setup()
            _, peak = peak_traced_memory(fn)
            report.row("ops", name, throughput_mb_s(size, t.median), peak / MiB)
            return peak

        row("sha256 of the file (baseline)", lambda: _sha256_file(src))
        cid = compute_cid(open(src, "rb"))
        row("compute_cid", lambda: compute_cid(open(src, "rb")))

        stores = [work / "store"]

        def fresh_store():
            shutil.rmtree(stores[0], ignore_errors=True)

        def embedded_add():
            with open(src, "rb") as f:
                assert EmbeddedStore(stores[0]).add(f) == cid

        peaks = {"embedded add": row("embedded add (fsync)", embedded_add, setup=fresh_store)}
        store = EmbeddedStore(stores[0])
        peaks["embedded cat"] = row("embedded cat (verified)", lambda: _drain(store.cat(cid)))

        if not args.no_ipfs:
            with JsIpfsNode(work / "node") as node, IpfsStore(node.api_url) as ipfs:
                def ipfs_add():
                    with open(src, "rb") as f:
                        assert ipfs.add(f) == cid

                peaks["ipfs add"] = row("IpfsStore add (js-ipfs)", ipfs_add)
                peaks["ipfs cat"] = row("IpfsStore cat (verified per block)", lambda: _drain(ipfs.cat(cid)))

                def node_cat():
                    with requests.post(f"{node.api_url}/api/v0/cat", params={"arg": cid}, stream=True) as r:
                        return _drain(r.iter_content(MiB))

                row("node /api/v0/cat (unverified)", node_cat)
        for name, peak in peaks.items():
            report.target(f"{name}: peak memory below 1/8 of the file", peak / MiB, "<=", size / 8 / MiB, "MiB")
        payload = report.finish()
        if args.plot:
            rows = report.tables["ops"]["rows"]
            bar_plot(args.plot, f"content stores: throughput, {size // MiB} MiB file, median of {repeat}",
                     [r[0] for r in rows], [r[1] for r in rows], "MB/s")
            print(f"wrote {args.plot}", file=sys.stderr)
        return payload
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(exit_code(main()))
