"""Benchmark the CP-ABE engine and the streaming file format.

    python -m benchmarks.abe [--n 1,10,50,100] [--schemes fabeo,fame,bsw07] [--repeat R]
                             [--json PATH] [--plot PATH] [--quick] [--no-fail]

CP-ABE, for the three schemes side by side and every n: setup; keygen with n
attributes; encrypt under an n-leaf AND policy and an n-leaf OR policy;
decrypt of both (the AND is the worst case: every leaf is used), from bytes
as a node does; sizes of keys and ciphertexts. Each figure is given in
milliseconds and in units of one pairing timed round-robin with it in the
same run, so it can be compared across machines.

Covers (issue 11): an upload's file key under the real policy
``loc:x and svc:y and (ff:1 and (cover))`` (``federations_policy``), the cover
of a member tree of N leaves with 16 revoked (N = 16,384 and 100,000 by
default, ``--cover-n``, in a generation of ``generation_height(N)``), against a
one-node cover (the top node of the reader's key path), all timed
round-robin with one pairing in the same run. Decrypt from bytes with a key
of one covered member, "warm" (the policy text was parsed before: every file
under one cover repeats it) and "cold" (the parse cache cleared first).

Streaming: encrypt_stream / decrypt_stream / EncryptingReader throughput in
MB/s over in-memory data, next to raw AES-GCM (AESGCM.encrypt over the same
bytes in the same chunk size, one thread) measured round-robin in the same run.

The last table checks the targets (issue 11 for covers: decrypt, warm and
cold, <= 5 pairings and within 1.2x of the one-node cover, encrypt at
N = 16,384 <= 25 ms; issue 9, for the default scheme, in
pairing units: decrypt <= 5 for AND and OR policies of 1 to 100 leaves,
encrypt of 10 leaves <= 7, keygen of 5 attributes <= 3.5, each extra OR leaf
<= 0.5 on encrypt, measured as the slope between 10 and 100 OR leaves; and the
streaming ratios) and prints PASS/FAIL; the exit code is 1 when a target
fails, unless --no-fail.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python benchmarks/abe.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import fogfed.abe as abe
from benchmarks.common import (
    exit_code,
    Report,
    Timing,
    base_parser,
    line_plot,
    measure,
    measure_interleaved,
    parse_ints,
    peak_traced_memory,
    speed_ratio,
    throughput_mb_s,
)
from fogfed.abe import stream
from fogfed.abe.group import group

SCHEMES = ("fabeo", "fame", "bsw07")  # the first is the default scheme the targets are about
assert SCHEMES[0] == abe.DEFAULT_SCHEME
TARGET_NS = (1, 5, 10, 100)  # sizes the targets need, measured for the default scheme if --n skips them
MiB = 1024 * 1024
PAYLOAD = bytes(range(32))  # a file key SK, what CP-ABE protects in fogfed


class NullSink:
    """A write-only file that discards, so only the stream code is timed."""

    def write(self, data) -> int:
        return len(data)


def attributes(n: int) -> list[str]:
    return [f"attr{i}" for i in range(1, n + 1)]


def policy(n: int, gate: str) -> str:
    return f" {gate} ".join(attributes(n))


@dataclass(frozen=True)
class Figure:
    """One operation's timing and, measured round-robin with it, one pairing's."""

    op: Timing
    pairing: Timing

    @property
    def ms(self) -> float:
        return self.op.ms

    @property
    def pairings(self) -> float:
        return self.op.median / self.pairing.median

    @property
    def best_pairings(self) -> float:
        """Best sample over best sample: the figure least inflated by other load on a shared machine."""
        return self.op.best / self.pairing.best

    def to_dict(self) -> dict:
        return {**self.op.to_dict(), "pairing_median_s": self.pairing.median, "pairings": self.pairings,
                "pairing_best_s": self.pairing.best, "best_pairings": self.best_pairings}


def _pairing_fn():
    a = group.g1 * group.random_scalar()
    b = group.g2 * group.random_scalar()
    return lambda: group.pairing(a, b)


def figure(fn, repeat: int) -> Figure:
    """Time ``fn`` interleaved with one pairing, so load on a shared machine
    shifts both alike and the pairing-unit figure stays comparable."""
    t = measure_interleaved({"op": fn, "pairing": _pairing_fn()}, repeat=repeat, warmup=2)
    return Figure(t["op"], t["pairing"])


def bench_scheme(scheme: str, ns: list[int], repeat: int) -> dict:
    """Figures of one scheme: setup once, then keygen/encrypt/decrypt per n."""
    setup = figure(lambda: abe.setup(scheme), repeat=max(3, repeat // 3))
    pk, msk = abe.setup(scheme)
    rows = {}
    for n in ns:
        key = abe.keygen(pk, msk, attributes(n))
        row = {"keygen": figure(lambda: abe.keygen(pk, msk, attributes(n)), repeat)}
        for gate in ("and", "or"):
            text = policy(n, gate)
            row[f"encrypt_{gate}"] = figure(lambda: abe.encrypt(pk, text, PAYLOAD), repeat)
            ct = abe.encrypt(pk, text, PAYLOAD)
            if abe.decrypt(pk, key, ct) != PAYLOAD:  # a benchmark of a wrong answer is worthless
                raise SystemExit(f"{scheme}: decrypt of the {n}-leaf {gate.upper()} policy returned a wrong payload")
            row[f"decrypt_{gate}"] = figure(lambda: abe.decrypt(pk, key, ct), repeat)
        row["sizes"] = {
            "secret key": len(key.to_bytes()),
            "ciphertext AND": len(abe.encrypt(pk, policy(n, "and"), PAYLOAD)),
            "ciphertext OR": len(abe.encrypt(pk, policy(n, "or"), PAYLOAD)),
        }
        rows[n] = row
    return {"setup": setup, "rows": rows, "public key": len(pk.to_bytes())}


COVER_NS = (16_384, 100_000)
COVER_REVOKED = 16


def cover_case(pk, msk, n: int, revoked: int) -> dict:
    """The big and the one-node cover policy for a tree of ``n`` members with ``revoked`` revoked, and a reader key."""
    import random

    from fogfed.keys.cover import cover, key_path
    from fogfed.protocol.attributes import cover_clause, federations_policy, generation_height, node_attributes

    height = generation_height(n)  # a generation refreshed with n members
    gone = random.Random(n).sample(range(n), revoked)
    nodes = cover(height, gone, n, root=False)
    reader = next(x for x in range(n) if x not in gone)
    key = abe.keygen(pk, msk, node_attributes("riyadh", "health", 1, reader, 1, height))
    big = federations_policy("riyadh", "health", {1: cover_clause(1, 1, nodes)})
    # one node the reader holds (the top of its key path: half the tree)
    small = federations_policy("riyadh", "health", {1: cover_clause(1, 1, key_path(reader, height)[-1:])})
    return {"nodes": len(nodes), "key": key, "big": big, "small": small}


def bench_cover(ns: list[int], revoked: int, repeat: int, scheme: str = SCHEMES[0]) -> dict:
    """Encrypt and decrypt of a file key under real cover policies, in ms and pairings, same run."""
    from fogfed.abe.policy import _parse_text

    pk, msk = abe.setup(scheme)
    out = {}
    for n in ns:
        case = cover_case(pk, msk, n, revoked)
        key, big, small = case["key"], case["big"], case["small"]
        ct_big, ct_small = abe.encrypt(pk, big, PAYLOAD), abe.encrypt(pk, small, PAYLOAD)
        for ct in (ct_big, ct_small):  # a benchmark of a wrong answer is worthless
            if abe.decrypt(pk, key, ct) != PAYLOAD:
                raise SystemExit(f"cover benchmark: decrypt at N={n} returned a wrong payload")

        def cold() -> bytes:
            _parse_text.cache_clear()
            return abe.decrypt(pk, key, ct_big)

        t = measure_interleaved({
            "pairing": _pairing_fn(),
            "decrypt one-node cover": lambda: abe.decrypt(pk, key, ct_small),
            "decrypt cover (warm)": lambda: abe.decrypt(pk, key, ct_big),
            "decrypt cover (cold)": cold,
            "encrypt one-node cover": lambda: abe.encrypt(pk, small, PAYLOAD),
            "encrypt cover": lambda: abe.encrypt(pk, big, PAYLOAD),
        }, repeat=repeat, warmup=2)
        unit = t.pop("pairing")
        out[n] = {"revoked": revoked, "cover_nodes": case["nodes"], "ct_bytes": len(ct_big),
                  "ct_one_node_bytes": len(ct_small), "figures": {k: Figure(v, unit) for k, v in t.items()}}
    return out


# Each streaming variant and the raw baseline it is compared with.
RATIOS = {"stream encrypt": "raw AES-GCM", "stream encrypt + SHA-256": "raw AES-GCM + SHA-256"}


def stream_variants(data: bytes, chunk: int) -> dict:
    """The functions compared at one chunk size; each processes all of ``data``."""
    sk = os.urandom(32)
    aead = AESGCM(sk)
    view = memoryview(data)
    ct = io.BytesIO()
    stream.encrypt_stream(sk, io.BytesIO(data), ct, chunk_size=chunk)
    ct_bytes = ct.getvalue()
    read_buf = bytearray(MiB)

    def raw_gcm() -> None:
        for i in range(0, len(view), chunk):
            aead.encrypt(i.to_bytes(12, "big"), view[i : i + chunk], None)

    def raw_gcm_sha256() -> None:
        sha = hashlib.sha256()
        for i in range(0, len(view), chunk):
            piece = view[i : i + chunk]
            sha.update(piece)
            aead.encrypt(i.to_bytes(12, "big"), piece, None)

    def reader() -> None:
        r = stream.EncryptingReader(sk, io.BytesIO(data), chunk_size=chunk, hash_plaintext=False)
        while r.readinto(read_buf):
            pass

    return {
        "raw AES-GCM": raw_gcm,
        "stream encrypt": lambda: stream.encrypt_stream(
            sk, io.BytesIO(data), NullSink(), chunk_size=chunk, hash_plaintext=False
        ),
        "raw AES-GCM + SHA-256": raw_gcm_sha256,
        "stream encrypt + SHA-256": lambda: stream.encrypt_stream(sk, io.BytesIO(data), NullSink(), chunk_size=chunk),
        "EncryptingReader": reader,
        "stream decrypt + SHA-256": lambda: stream.decrypt_stream(sk, io.BytesIO(ct_bytes), NullSink()),
    }


def bench_stream(total: int, chunks: list[int], repeat: int) -> dict:
    block = os.urandom(MiB)
    data = block * (total // MiB)
    results, ratios = {}, {}
    for chunk in chunks:
        t = measure_interleaved(stream_variants(data, chunk), repeat=repeat)
        results[chunk] = {name: throughput_mb_s(total, timing.median) for name, timing in t.items()}
        ratios[chunk] = {
            candidate: speed_ratio(t[candidate], t[baseline]) for candidate, baseline in RATIOS.items()
        }
    sk = os.urandom(32)
    source = io.BytesIO(data)
    _, peak = peak_traced_memory(lambda: stream.encrypt_stream(sk, source, NullSink()))
    return {"total_bytes": total, "mb_s": results, "ratio": ratios, "peak_memory_bytes": peak}


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=parse_ints, default=None, help="sizes n, e.g. 1,2,5,10,20,50 (default) or 1-50")
    parser.add_argument("--schemes", default=",".join(SCHEMES), help=f"comma-separated, from {', '.join(SCHEMES)}")
    parser.add_argument("--stream-mib", type=int, default=None, help="MiB streamed per sample (default 64, quick 8)")
    parser.add_argument(
        "--chunks", type=parse_ints, default=None, help="chunk sizes in KiB to compare (default 64,256,1024)"
    )
    parser.add_argument("--cover-n", type=parse_ints, default=None,
                        help=f"member-tree sizes N for the cover figures (default {','.join(map(str, COVER_NS))})")
    parser.add_argument("--cover-revoked", type=int, default=COVER_REVOKED, help="revoked members per tree (default 16)")
    # --no-fail comes from base_parser (every benchmark has it)
    args = parser.parse_args(argv)
    ns = args.n or ([1, 2, 5] if args.quick else [1, 10, 50, 100])
    repeat = args.repeat or (3 if args.quick else 15)
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()]
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown or not schemes:
        parser.error(f"unknown scheme(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(SCHEMES)}")
    chunks = [k * 1024 for k in (args.chunks or ([64, 256] if args.quick else [64, 256, 1024]))]
    chunks = sorted({*chunks, stream.DEFAULT_CHUNK})
    if chunks[-1] > stream.MAX_CHUNK:
        parser.error(f"chunk sizes must be at most {stream.MAX_CHUNK // 1024} KiB")
    total = (args.stream_mib or (8 if args.quick else 64)) * MiB

    report = Report("abe", args)
    pairing = measure(_pairing_fn(), repeat=max(20, repeat * 3), warmup=3)
    report.data["pairing"] = {"group": group.name, **pairing.to_dict()}

    report.table("setup", "CP-ABE setup, and the unit: one pairing", ["scheme", "ms", "pairings"])
    report.row("setup", f"(one pairing, {group.name})", pairing.ms, 1.0)
    ops = {"keygen": "keygen", "encrypt_and": "enc AND", "encrypt_or": "enc OR", "decrypt_and": "dec AND", "decrypt_or": "dec OR"}
    for unit in ("ms", "pairings"):
        report.table(
            unit, f"CP-ABE in {unit}: n attributes / an n-leaf policy (median of {repeat})", ["scheme", "n", *ops.values()]
        )
    report.table("best", f"CP-ABE in pairings, best of {repeat} over best of {repeat} (what the targets use)",
                 ["scheme", "n", *ops.values()])
    report.table("sizes", "CP-ABE sizes in bytes (public key; n attributes / an n-leaf policy, 32-byte payload)",
                 ["scheme", "n", "public key", "secret key", "ciphertext AND", "ciphertext OR"])
    results = {}
    for scheme in schemes:
        res = bench_scheme(scheme, ns, repeat)
        results[scheme] = res
        report.row("setup", scheme, res["setup"].ms, res["setup"].pairings)
        for n, row in res["rows"].items():
            report.row("ms", scheme, n, *(row[op].ms for op in ops))
            report.row("pairings", scheme, n, *(row[op].pairings for op in ops))
            report.row("best", scheme, n, *(row[op].best_pairings for op in ops))
            report.row("sizes", scheme, n, res["public key"], *row["sizes"].values())
    report.data["cpabe"] = {
        scheme: {
            "setup": res["setup"].to_dict(),
            "by_n": {
                str(n): {op: f.to_dict() for op, f in row.items() if op != "sizes"} for n, row in res["rows"].items()
            },
            "sizes": {"public key": res["public key"], **{str(n): row["sizes"] for n, row in res["rows"].items()}},
        }
        for scheme, res in results.items()
    }

    cover_ns = sorted({*(args.cover_n or COVER_NS), COVER_NS[0]})  # the encrypt target is at 16,384
    covers = bench_cover(cover_ns, args.cover_revoked, max(repeat, 5))
    report.table("cover", f"{SCHEMES[0]}, file key under loc, svc, ff and a complete-subtree cover "
                          f"(N members, {args.cover_revoked} revoked) vs the one-node cover; best of "
                          f"{max(repeat, 5)} in ms and in pairings (best over best), same run",
                 ["N", "cover nodes", "operation", "ms", "pairings", "x one-node"])
    for n, c in covers.items():
        f = c["figures"]
        for op, fig in f.items():
            base = f[("decrypt" if op.startswith("decrypt") else "encrypt") + " one-node cover"]
            report.row("cover", n, c["cover_nodes"], op, fig.op.best * 1e3, fig.best_pairings, fig.op.best / base.op.best)
    report.data["cover"] = {str(n): {**{k: v for k, v in c.items() if k != "figures"},
                                     "figures": {op: fig.to_dict() for op, fig in c["figures"].items()}}
                            for n, c in covers.items()}

    st = bench_stream(total, chunks, repeat=max(3, repeat))
    report.data["stream"] = {**st, "mb_s": {str(c): v for c, v in st["mb_s"].items()},
                             "ratio": {str(c): v for c, v in st["ratio"].items()}}
    sizes = list(st["mb_s"])
    report.table(
        "stream",
        f"streaming, MB/s over {total // MiB} MiB in memory (median of {max(3, repeat)}; ratios: median of back-to-back pairs)",
        ["chunk size", *(f"{c // 1024} KiB" for c in sizes)],
    )
    for name in next(iter(st["mb_s"].values())):
        report.row("stream", name, *(st["mb_s"][c][name] for c in sizes))
        if name in RATIOS:
            report.row("stream", f"  ratio to {RATIOS[name]}", *(st["ratio"][c][name] for c in sizes))

    add_targets(report, results, st, repeat)
    add_cover_targets(report, covers)
    report.finish()
    if args.plot:
        plot(args.plot, results, st, pairing.ms)
    return exit_status(report.targets, args.no_fail)


def exit_status(targets, no_fail: bool) -> int:
    """1 if a target failed (and --no-fail was not given), else 0."""
    failed = [t.name for t in targets if not t.passed]
    if failed and not no_fail:
        print(f"FAILED targets: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def add_targets(report: Report, results: dict, st: dict, repeat: int) -> None:
    """Issue 9's targets for the default scheme, in pairing units; sizes --n skipped are measured here.

    The figures are best sample over best sample of the round-robin timing:
    on a shared machine, preemption inflates a multi-millisecond operation's
    samples far more often than the 0.45 ms pairing's, which biases the
    median ratio upwards by whatever else runs; the best samples are the
    least disturbed ones of both. The median-based figures are in the tables.
    """
    default = SCHEMES[0]
    rows = dict(results[default]["rows"]) if default in results else {}
    missing = [n for n in TARGET_NS if n not in rows]
    if missing:
        rows.update(bench_scheme(default, missing, repeat)["rows"])
    report.data["target_rows"] = {
        str(n): {op: f.to_dict() for op, f in row.items() if op != "sizes"} for n, row in sorted(rows.items())
    }
    ns = sorted(rows)
    worst = max(rows[n][op].best_pairings for n in ns for op in ("decrypt_and", "decrypt_or"))
    report.target(f"{default} decrypt, AND and OR, worst over n={ns[0]}..{ns[-1]} leaves", worst, "<=", 5.0, "pairings")
    enc = max(rows[10]["encrypt_and"].best_pairings, rows[10]["encrypt_or"].best_pairings)
    report.target(f"{default} encrypt, 10-leaf policy (worse of AND, OR)", enc, "<=", 7.0, "pairings")
    report.target(f"{default} keygen, 5 attributes", rows[5]["keygen"].best_pairings, "<=", 3.5, "pairings")
    slope = (rows[100]["encrypt_or"].best_pairings - rows[10]["encrypt_or"].best_pairings) / 90
    report.target(f"{default} encrypt, per extra OR leaf (slope 10 -> 100 leaves)", slope, "<=", 0.5, "pairings")
    for candidate, baseline in RATIOS.items():
        report.target(
            f"{candidate} / {baseline} ({stream.DEFAULT_CHUNK // 1024} KiB chunks)",
            st["ratio"][stream.DEFAULT_CHUNK][candidate],
            ">=",
            0.8,
            "x",
        )


def add_cover_targets(report: Report, covers: dict) -> None:
    """Issue 11's targets for covers (best over best, as add_targets explains)."""
    for n, c in covers.items():
        f = c["figures"]
        for which in ("warm", "cold"):
            report.target(f"decrypt, N={n} cover of {c['cover_nodes']} nodes ({which})",
                          f[f"decrypt cover ({which})"].best_pairings, "<=", 5.0, "pairings")
        for which in ("warm", "cold"):
            report.target(f"decrypt, N={n} cover of {c['cover_nodes']} nodes ({which}) / one-node cover",
                          f[f"decrypt cover ({which})"].op.best / f["decrypt one-node cover"].op.best, "<=", 1.2, "x")
    enc = covers[COVER_NS[0]]
    report.target(f"encrypt of the file key, N={COVER_NS[0]}, {enc['revoked']} revoked ({enc['cover_nodes']} nodes)",
                  enc["figures"]["encrypt cover"].op.best * 1e3, "<=", 25.0, "ms")


def plot(path: Path, results: dict, st: dict, pairing_ms: float) -> None:
    panels = []
    targets = {
        "keygen": "<= 3.5 pairings at n=5", "encrypt": "<= 7 pairings at n=10", "decrypt": "<= 5 pairings at every n"
    }
    limits = {"keygen": 3.5 * pairing_ms, "encrypt": 7.0 * pairing_ms, "decrypt": 5.0 * pairing_ms}
    for op, title in (("keygen", "keygen, n attributes"), ("encrypt", "encrypt, n-leaf policy"), ("decrypt", "decrypt, n-leaf policy")):
        series = {}
        for scheme, res in results.items():
            ns = list(res["rows"])
            if op == "keygen":
                series[scheme] = (ns, [res["rows"][n]["keygen"].ms for n in ns])
            else:
                for gate in ("and", "or"):
                    series[f"{scheme} {gate.upper()}"] = (ns, [res["rows"][n][f"{op}_{gate}"].ms for n in ns])
        hlines = {f"1 pairing ({pairing_ms:.2f} ms)": pairing_ms, f"{SCHEMES[0]} target {targets[op]}": limits[op]}
        panels.append({"title": title, "xlabel": "n", "ylabel": "ms", "logy": True, "series": series, "hlines": hlines})
    chunks = list(st["mb_s"])
    names = list(st["mb_s"][chunks[0]])
    panels.append(
        {
            "title": f"streaming, {st['total_bytes'] // MiB} MiB",
            "xlabel": "chunk size (KiB)",
            "logx": True,
            "ylabel": "MB/s",
            "series": {name: ([c // 1024 for c in chunks], [st["mb_s"][c][name] for c in chunks]) for name in names},
        }
    )
    line_plot(path, panels, title="fogfed CP-ABE and streaming encryption")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(exit_code(main()))
