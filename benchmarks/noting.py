"""What noting the ciphertext's CID before the pin costs an upload's encrypt-and-store (issue 13's leak).

    python -m benchmarks.noting [--mib 64] [--rounds 5] [--ipfs auto|URL|none] [--json PATH]

``fogfed.node.datapath.encrypt_and_store`` as an upload calls it, timed
round-robin in the same run (load that comes and goes hits all alike):

- plain: the store itself (what the upload did before);
- noting: the store behind ``UploadLeftovers.noting`` (what it does now): the
  store tells the CID it computes anyway (``ContentStore.add``'s ``on_cid``)
  and the record gets one line;
- extra pass: for reference, the other design, a second importer (DagBuilder)
  fed the ciphertext on its way into the store, which a store that did not
  hash while streaming would need.

On the embedded store (the default) and, with ``--ipfs``, a js-ipfs node
(``auto`` starts one). Medians of wall time and of this process's CPU time
(all its threads; a js-ipfs daemon's own work is not in it), their ratios
to plain, and the time the note itself takes (the callback, timed inside).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from fogfed.node.datapath import encrypt_and_store
from fogfed.node.leftovers import UploadLeftovers
from fogfed.storage import ContentStore, EmbeddedStore, IpfsStore
from fogfed.storage.importer import DagBuilder


class _ExtraPass:
    """``store`` with a second importer fed every byte the store reads (the design not taken)."""

    def __init__(self, store: ContentStore) -> None:
        self.store = store
        self.local = store.local

    def add(self, src: BinaryIO, **kw: object) -> str:
        builder = DagBuilder()
        owned = bool(getattr(src, "hands_over_buffers", False))

        class Tee:
            hands_over_buffers = owned

            def read(self, n: int = -1) -> bytes:
                data = src.read(n)
                builder.write(data, owned=owned)
                return data
        cid = self.store.add(Tee(), **kw)  # type: ignore[arg-type]
        builder.finish()
        assert str(builder.root) == cid
        return cid


def _run(name: str, store: ContentStore, src: Path, tmp: Path, rounds: int) -> dict:
    note_s: list[float] = []

    def noting(left: UploadLeftovers) -> object:
        inner = left.noting(store, lambda cid: "0x" + "00" * 32)
        real = inner._note  # type: ignore[attr-defined]

        def timed(cid: str) -> None:
            t = time.perf_counter()
            real(cid)
            note_s.append(time.perf_counter() - t)
        inner._note = timed  # type: ignore[attr-defined]
        return inner
    variants = {"plain": lambda left: store, "noting": noting, "extra pass": lambda left: _ExtraPass(store)}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(rounds):
        for variant in names[r % 3:] + names[:r % 3]:  # each variant in each position as often
            with UploadLeftovers(tmp, store) as left, open(tmp / "copy", "w+b") as copy:
                target = variants[variant](left)
                t, c = time.perf_counter(), time.process_time()
                encrypt_and_store(target, src, os.urandom(32), None if store.local else copy)  # type: ignore[arg-type]
                wall[variant].append(time.perf_counter() - t)
                cpu[variant].append(time.process_time() - c)
                left.finish(set())  # unpins the ciphertext: every round adds afresh
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    out = {"store": name, "rounds": rounds, "median_s": med, "ratio": {k: med[k] / med["plain"] for k in med},
           "median_cpu_s": med_cpu, "cpu_ratio": {k: med_cpu[k] / med_cpu["plain"] for k in med_cpu},
           "note_us": [x * 1e6 for x in note_s], "all_s": wall, "all_cpu_s": cpu}
    print(f"{name}: wall " + ", ".join(f"{k} {med[k]:.3f} s ({med[k] / med['plain']:.3f}x)" for k in med)
          + "; this process's CPU " + ", ".join(f"{k} {med_cpu[k]:.3f} s ({med_cpu[k] / med_cpu['plain']:.3f}x)"
                                               for k in med_cpu)
          + f"; the note itself: median {statistics.median(note_s) * 1e6:.0f} us", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mib", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--ipfs", default="none", help="auto (start js-ipfs), an API URL, or none")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "plain.bin"
        with open(src, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        results.append(_run("embedded", EmbeddedStore(tmp / "store"), src, tmp / "tmp", args.rounds))
        if args.ipfs != "none":
            node = None
            url = args.ipfs
            if url == "auto":
                from fogfed.storage.jsipfs import JsIpfsNode
                node = JsIpfsNode(tmp / "ipfs")
                node.start()
                url = node.api_url
            try:
                with IpfsStore(url) as store:
                    results.append(_run("js-ipfs", store, src, tmp / "tmp", args.rounds))
            finally:
                if node is not None:
                    node.stop()
    if args.json:
        args.json.write_text(json.dumps({"mib": args.mib, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
