"""Benchmark the node's data path: upload and fetch throughput and peak memory.

    python -m benchmarks.datapath [--sizes 1,16,128] [--ipfs auto|URL] [--repeat R] [--json PATH] [--plot PATH]

For each size (MiB, up to 1024) a file of random bytes is written to a temp
folder in 1 MiB pieces (never held in memory). Timed, round-robin in the
same run: raw SHA-256 + AES-256-GCM over the file's bytes (read from the same
file, in the stream format's chunk size) and a real ``FogNode.upload``
(encrypt, store, CP-ABE key, register on chain, cache). Then fetches of the
uploaded file by other members: from a peer's cache (peer server on
127.0.0.1) and from storage. Peak memory is what Python allocated during
one call (tracemalloc, on the untimed warm-up call). The world is the demo's:
embedded chain, TAS and five enrolled nodes; the store is the embedded one,
or a js-ipfs node (``--ipfs auto`` starts one, or give an API URL).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: python benchmarks/datapath.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from benchmarks.common import (Report, base_parser, line_plot, measure_interleaved, parse_ints,
                               peak_traced_memory, speed_ratio, throughput_mb_s)
from fogfed.abe.stream import DEFAULT_CHUNK

MiB = 1 << 20
MAX_MIB = 1024
RATIO_TARGET = 0.5
PEAK_TARGET_MIB = 64


def write_random_file(path: Path, size: int) -> Path:
    """``size`` random bytes at ``path``, written 1 MiB at a time."""
    with open(path, "wb") as f:
        left = size
        while left:
            piece = min(left, MiB)
            f.write(os.urandom(piece))
            left -= piece
    return path


def raw_sha256_aes_gcm(path: Path, key: bytes, chunk: int = DEFAULT_CHUNK) -> bytes:
    """The baseline: SHA-256 and AES-256-GCM over every chunk of the file; no framing, storage or chain."""
    aead, h, counter = AESGCM(key), hashlib.sha256(), 0
    with open(path, "rb") as f:
        while piece := f.read(chunk):
            h.update(piece)
            aead.encrypt(counter.to_bytes(12, "big"), piece, None)
            counter += 1
    return h.digest()


class World:
    """The demo's world (embedded chain, TAS, five enrolled nodes) on the chosen store."""

    def __init__(self, root: Path, ipfs_url: str | None, cache_bytes: int) -> None:
        from fogfed import demo

        self.scenario = demo.Scenario(root)
        demo.step_deploy(self.scenario)
        if ipfs_url:
            from fogfed.storage import IpfsStore

            self.scenario.store = IpfsStore(ipfs_url)
        demo.step_setup(self.scenario)
        self.scenario.cache_bytes = cache_bytes
        demo.step_enroll(self.scenario)
        self.a, self.b, self.c = (self.scenario.nodes[k] for k in "ABC")
        self.server = self.a.serve()

    def close(self) -> None:
        self.scenario.close()


def bench_size(world: World, work: Path, size: int, repeat: int) -> dict[str, Any]:
    """All figures for one file size."""
    src = write_random_file(work / f"in-{size // MiB}MiB.bin", size)
    key = os.urandom(32)
    uploads: list[Any] = []

    def upload() -> None:
        uploads.append(world.a.upload(src))

    # The untimed warm-up calls run under tracemalloc: they give the peak memory.
    _, raw_peak = peak_traced_memory(lambda: raw_sha256_aes_gcm(src, key))
    _, up_peak = peak_traced_memory(upload)
    t = measure_interleaved({"raw": lambda: raw_sha256_aes_gcm(src, key), "upload": upload},
                            repeat=repeat, warmup=0)
    fid = uploads[-1].file_id
    out = work / "out.bin"

    def fetch(node: Any, expect_source: str) -> float:
        node.evict(fid)  # its own copy from the previous round would be used first
        t0 = time.perf_counter()
        r = node.fetch(fid, out)
        took = time.perf_counter() - t0
        if not r.source.startswith(expect_source):
            raise RuntimeError(f"fetch came from {r.source}, expected {expect_source}")
        return took

    def fetch_traced(node: Any, source: str) -> int:
        return peak_traced_memory(lambda: fetch(node, source))[1]

    peer_peak = fetch_traced(world.b, "peer:")
    peer = sorted(fetch(world.b, "peer:") for _ in range(repeat))
    world.a.evict(fid)  # no fresh peer copy left (B's own is evicted before each fetch)
    world.b.evict(fid)
    store_peak = fetch_traced(world.c, "storage")
    storage = sorted(fetch(world.c, "storage") for _ in range(repeat))
    world.c.evict(fid)
    src.unlink()
    out.unlink(missing_ok=True)
    median = lambda xs: xs[len(xs) // 2]  # noqa: E731
    return {
        "size_bytes": size,
        "raw_mb_s": throughput_mb_s(size, t["raw"].median),
        "upload_mb_s": throughput_mb_s(size, t["upload"].median),
        "upload_ratio_to_raw": speed_ratio(t["upload"], t["raw"]),
        "fetch_peer_s": median(peer), "fetch_peer_mb_s": throughput_mb_s(size, median(peer)),
        "fetch_storage_s": median(storage), "fetch_storage_mb_s": throughput_mb_s(size, median(storage)),
        "peak_mib": {"raw": raw_peak / MiB, "upload": up_peak / MiB, "fetch_peer": peer_peak / MiB,
                     "fetch_storage": store_peak / MiB},
        "timings": {"raw": t["raw"].to_dict(), "upload": t["upload"].to_dict()},
    }


def _sizes(text: str) -> list[int]:
    sizes = parse_ints(text)
    if sizes[-1] > MAX_MIB:
        raise argparse.ArgumentTypeError(f"sizes are MiB from 1 to {MAX_MIB}")
    return sizes


def main(argv: list[str] | None = None) -> dict:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=None, metavar="MIB",
                        help=f"file sizes in MiB, e.g. 1,16,128 (default; --quick: 1), up to {MAX_MIB}")
    parser.add_argument("--ipfs", default=None, metavar="auto|URL",
                        help="use an IPFS node: 'auto' starts js-ipfs here, or give its API URL "
                             "(default: the embedded store)")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([1] if args.quick else [1, 16, 128])
    repeat = args.repeat or (1 if args.quick else 3)

    work = Path(tempfile.mkdtemp(prefix="fogfed-bench-datapath-"))
    node = None
    world = None
    report = Report("datapath", args)
    try:
        ipfs_url = args.ipfs
        if ipfs_url == "auto":
            from fogfed.storage.jsipfs import JsIpfsNode

            node = JsIpfsNode(work / "ipfs").start()
            ipfs_url = node.api_url
        store_name = f"IPFS at {ipfs_url}" if ipfs_url else "embedded store"
        world = World(work / "world", ipfs_url, cache_bytes=2 * max(sizes) * MiB + 64 * MiB)
        report.table("throughput", f"data path, {store_name}, embedded chain (median of {repeat})",
                     ["size MiB", "raw MB/s", "upload MB/s", "upload/raw", "fetch peer MB/s",
                      "fetch storage MB/s"])
        report.table("latency", "fetch latency, seconds (median)", ["size MiB", "from peer cache", "from storage"])
        report.table("memory", "peak Python memory, MiB (one call, tracemalloc)",
                     ["size MiB", "raw", "upload", "fetch peer", "fetch storage"])
        results = []
        for mib in sizes:
            r = bench_size(world, work, mib * MiB, repeat)
            results.append(r)
            p = r["peak_mib"]
            report.row("throughput", mib, r["raw_mb_s"], r["upload_mb_s"], r["upload_ratio_to_raw"],
                       r["fetch_peer_mb_s"], r["fetch_storage_mb_s"])
            report.row("latency", mib, r["fetch_peer_s"], r["fetch_storage_s"])
            report.row("memory", mib, p["raw"], p["upload"], p["fetch_peer"], p["fetch_storage"])
            report.target(f"{mib} MiB: upload at least {RATIO_TARGET}x raw SHA-256 + AES-GCM",
                          r["upload_ratio_to_raw"], ">=", RATIO_TARGET, "x")
        worst = max(max(r["peak_mib"].values()) for r in results)
        report.target("peak memory of any upload/fetch (bounded, whatever the size)", worst, "<=",
                      PEAK_TARGET_MIB, "MiB")
        report.data["store"] = store_name
        report.data["sizes"] = results
        payload = report.finish()
        if args.plot:
            xs = [r["size_bytes"] / MiB for r in results]
            line_plot(args.plot, [
                {"title": "throughput", "xlabel": "file size (MiB)", "ylabel": "MB/s", "logx": True,
                 "series": {k: (xs, [r[f"{k}_mb_s"] for r in results])
                            for k in ("raw", "upload", "fetch_peer", "fetch_storage")}},
                {"title": "peak memory", "xlabel": "file size (MiB)", "ylabel": "MiB", "logx": True,
                 "series": {k: (xs, [r["peak_mib"][k] for r in results]) for k in results[0]["peak_mib"]},
                 "hlines": {f"target {PEAK_TARGET_MIB} MiB": PEAK_TARGET_MIB}},
            ], title=f"fogfed data path ({store_name})")
        return payload
    finally:
        if world is not None:
            world.close()
        if node is not None:
            node.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
