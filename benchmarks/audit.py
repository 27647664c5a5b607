"""Benchmark the auditor's replay: events per second from Anvil, and peak memory.

    python -m benchmarks.audit [--events 10000,100000] [--accesses 10000,40000] [--json PATH] [--plot PATH] [--quick] [--no-fail]

Two workloads on a fresh Anvil each:

* members: ``addMembers`` batches (250 MemberAdded events per transaction), so
  100,000 events take 400 transactions; the rebuilt state grows with them
  (every member is state).
* accesses: one member recording accesses to one file (one AccessGranted per
  transaction, 100 transactions per block); the rebuilt state stays the same
  size however many events.

For each size: the time to generate the events, a full replay timed without
tracing (events per second, from eth_getLogs to the committed SQLite
checkpoint), and a second replay under tracemalloc giving the peak Python
memory and the memory still held by the rebuilt state afterwards. Their
difference is the replay's own working memory: about one batch of logs
(ranges aim at 2,000 logs), which must not grow with the number of events. Exit code 1 when a target fails (--no-fail: 0 anyway).

State per file (``--files N``): N ``FileRegistered`` events (cover descriptor
policies, as fogfed registers them) applied to the auditor's real rebuild
(fogfed.audit.state.Rebuild) without a chain; the memory the state gains per
file under tracemalloc, and one file entry's size as JSON (what the checkpoint
stores). This is what grows without bound at scale (docs/scale.md).
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python benchmarks/audit.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web3 import Web3

from benchmarks.common import Report, bar_plot, base_parser, exit_code, parse_ints
from fogfed import audit
from fogfed.chain.artifacts import load_artifact
from fogfed.chain.devnet import start_anvil
from fogfed.protocol.files import file_id_for

BATCH = 250  # members per addMembers transaction (about 12M gas, under Anvil's 30M block limit)
TARGET_EVENTS_PER_S = 5_000
MB = 1e6


def _rpc(w3: Web3, method: str, params: list) -> object:
    reply = w3.provider.make_request(method, params)
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def _deploy(w3: Web3) -> tuple[str, object]:
    art = load_artifact()
    tx = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor().transact({"from": w3.eth.accounts[0]})
    address = w3.eth.wait_for_transaction_receipt(tx).contractAddress
    return address, w3.eth.contract(address=address, abi=art["abi"])


def _send_all(w3: Web3, txs: list[dict], per_block: int) -> None:
    # Automine off and exactly ``per_block`` transactions per block: the same event density all
    # along, so replay batches are alike at every size. No receipt is awaited until the end.
    _rpc(w3, "evm_setAutomine", [False])
    try:
        hashes = []
        for i in range(0, len(txs), per_block):
            hashes += [_rpc(w3, "eth_sendTransaction", [tx]) for tx in txs[i:i + per_block]]
            _rpc(w3, "evm_mine", [])
    finally:
        _rpc(w3, "evm_setAutomine", [True])
    for h in (hashes[0], hashes[-1]):
        if int(w3.eth.get_transaction_receipt(h)["status"]) != 1:
            raise RuntimeError("an event-generating transaction failed")


def _mined(w3: Web3, tx) -> None:
    """Wait for ``tx``'s receipt: the events counted next must include its own (a loaded Anvil can
    answer eth_sendTransaction before the block holding it is served to eth_getLogs)."""
    w3.eth.wait_for_transaction_receipt(tx)


def _count(w3: Web3, address: str) -> int:
    """Events the deployment has emitted so far (its set-up)."""
    return len(_rpc(w3, "eth_getLogs", [{"address": address, "fromBlock": "0x0", "toBlock": "latest"}]))


def generate_members(w3: Web3, events: int) -> str:
    """A deployment with one federation and ``events`` - 4 members (plus the deployment's events)."""
    address, c = _deploy(w3)
    tas = w3.eth.accounts[0]
    _mined(w3, c.functions.createFederation("bench", "storage", b"\x01" * 48, 0).transact({"from": tas}))
    todo, start, txs = events - _count(w3, address), 1, []
    while todo > 0:
        n = min(BATCH, todo)
        nodes = [Web3.to_checksum_address(f"0x{0xB0000000 + i:040x}") for i in range(start, start + n)]
        data = c.encode_abi("addMembers", [1, nodes, [b"\x02" * 32] * n])
        txs.append({"from": tas, "to": address, "data": data, "gas": hex(14_000_000)})
        todo, start = todo - n, start + n
    _send_all(w3, txs, per_block=1)
    return address


def generate_accesses(w3: Web3, events: int) -> str:
    """A deployment with one member and one file, then accesses until ``events`` events exist."""
    address, c = _deploy(w3)
    tas, node = w3.eth.accounts[0], w3.eth.accounts[1]
    _mined(w3, c.functions.createFederation("bench", "storage", b"\x01" * 48, 0).transact({"from": tas}))
    _mined(w3, c.functions.addMember(1, node, b"\x02" * 32).transact({"from": tas}))
    digest = b"\x03" * 32
    _mined(w3, c.functions.registerFile(1, digest, 0, b"\x04" * 32, b"\x05" * 32, 0, "bench").transact({"from": node}))
    fid = file_id_for(node, digest)  # granted accesses, as in real use
    data = c.encode_abi("recordAccess", [fid])
    n = events - _count(w3, address)
    _send_all(w3, [{"from": node, "to": address, "data": data, "gas": hex(100_000)}] * n, per_block=100)
    return address


def measure_replay(w3: Web3, address: str) -> dict:
    """One timed replay, then one traced replay, each into a fresh checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        gc.collect()
        t0 = time.perf_counter()
        r = audit.replay(w3, address, Path(tmp) / "timed.sqlite")
        seconds = time.perf_counter() - t0
        events = r.total_events
        del r
        gc.collect()
        tracemalloc.start()
        try:
            r = audit.replay(w3, address, Path(tmp) / "traced.sqlite")
            gc.collect()
            held, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        del r
    return {"events": events, "seconds": seconds, "events_per_s": events / seconds,
            "peak_mb": peak / MB, "state_mb": held / MB, "working_mb": (peak - held) / MB}


def measure_file_state(n: int) -> dict:
    """Bytes of rebuilt state per registered file (synthetic events into the real Rebuild)."""
    import json

    from fogfed.audit.abi import Event
    from fogfed.audit.state import Rebuild

    def word(i: int, tag: str) -> str:
        return "0x" + (tag * 4 + f"{i:060x}")[:64]

    def event(block: int, name: str, **args: object) -> Event:
        return Event(block, 0, "0x" + f"{block:064x}", 1_700_000_000 + block, name, args)

    uploader = "0x" + "22" * 20
    r = Rebuild()
    r.apply(event(1, "FederationCreated", federationId=1, location="riyadh", service="health",
                  attrsHash=word(1, "a"), parent=0, publicKeyCommitment="0x" + "cd" * 24,
                  publicKey="0x" + "ab" * 700, operator="0x" + "11" * 20))
    r.apply(event(2, "MemberAdded", federationId=1, node=uploader, generation=1, encryptionKey=word(2, "e")))
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            r.apply(event(10 + i, "FileRegistered", fileId=word(i, "f"), federationId=1, uploader=uploader,
                          contentDigest=word(i, "c"), plaintextHash=word(i, "b"), encSkRef=word(i, "d"), epoch=0,
                          cidCodec=0, policy="(loc:riyadh and svc:health) and cover(1:0:0:1)"))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    if len(r.data["files"]) != n:
        raise RuntimeError(f"rebuilt {len(r.data['files'])} files, expected {n}")
    entry = json.dumps(r.data["files"][word(0, "f")])
    return {"files": n, "bytes_per_file": grown / n, "json_bytes_per_file": len(entry)}


def run(workload: str, sizes: list[int], report: Report) -> list[dict]:
    gen = {"members": generate_members, "accesses": generate_accesses}[workload]
    rows = []
    for n in sizes:
        with start_anvil() as node:
            w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 120}))
            t0 = time.perf_counter()
            address = gen(w3, n)
            generated = time.perf_counter() - t0
            m = measure_replay(w3, address)
        if m["events"] != n:
            raise RuntimeError(f"{workload}: expected {n} events, replayed {m['events']}")
        row = {"workload": workload, "generate_s": generated, **m}
        rows.append(row)
        report.row("replay", workload, n, round(generated, 1), round(m["seconds"], 2), round(m["events_per_s"]),
                   round(m["peak_mb"], 1), round(m["state_mb"], 1), round(m["working_mb"], 1))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=parse_ints, default=None,
                        help="sizes of the members workload (default 10000,100000; quick 600)")
    parser.add_argument("--accesses", type=parse_ints, default=None,
                        help="sizes of the accesses workload (default 10000,40000; quick 300,600)")
    parser.add_argument("--files", type=int, default=None,
                        help="files for the state-per-file measurement (default 20000; quick 2000)")
    args = parser.parse_args(argv)
    members = args.events or ([600] if args.quick else [10_000, 100_000])
    accesses = args.accesses or ([300, 600] if args.quick else [10_000, 40_000])
    for n in (*members, *accesses):
        if n < 10:
            parser.error("sizes must be at least 10 events")

    report = Report("audit", args)
    report.table("replay", "audit replay from Anvil: full replay into a fresh SQLite checkpoint",
                 ["workload", "events", "generate s", "replay s", "events/s", "peak MB", "state MB",
                  "working MB"])
    files = args.files or (2_000 if args.quick else 20_000)
    report.table("state", "rebuilt state per registered file (real Rebuild, synthetic events, tracemalloc)",
                 ["files", "bytes per file in memory", "bytes per file as JSON"])
    state = measure_file_state(files)
    report.row("state", state["files"], round(state["bytes_per_file"]), state["json_bytes_per_file"])
    report.data["file_state"] = state
    rows = run("members", members, report) + run("accesses", accesses, report)
    report.data["runs"] = rows
    slowest = min(r["events_per_s"] for r in rows)
    report.target("replay rate (slowest run)", slowest, ">=", TARGET_EVENTS_PER_S, "events/s")
    acc = [r for r in rows if r["workload"] == "accesses"]
    if len(acc) > 1:
        # Same state, more events: the working memory must stay flat (2 MB of slack: batches
        # differ by a few hundred logs).
        growth = acc[-1]["working_mb"] - acc[0]["working_mb"]
        report.target(f"working memory growth, {acc[0]['events']} -> {acc[-1]['events']} events at constant state",
                      growth, "<=", 2.0, "MB")
    report.finish()
    if args.plot:
        bar_plot(args.plot, "audit replay rate (full replay from Anvil into SQLite)",
                 [f"{r['workload']}\n{r['events']:,} events" for r in rows], [r["events_per_s"] for r in rows],
                 "events per second", target=TARGET_EVENTS_PER_S, target_label="target")
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(exit_code(main()))
