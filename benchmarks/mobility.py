"""Overhead of join, leave and move: fogfed (mobility contract + CP-ABE re-keying) against an LKH key tree.

    python -m benchmarks.mobility [--measure 10,100] [--sizes 10,100,1000,10000] [--json F] [--plot F.png] [--quick]

fogfed is **measured** on the in-process chain (real transactions, gas from
receipts, real FAME keygen and sealing) at the ``--measure`` sizes, and
**modelled** for every ``--sizes`` N from the measured unit costs times the
counts the protocol implies (printed: the model against the measurements).
LKH (benchmarks/lkh.py, real AES-GCM wraps) is measured at every N.

Counts per operation in a federation of N members (fogfed) / a group of N (LKH):

* fogfed join, backward secrecy on (default): bumpEpoch + N re-keyed members + addMember + 1 key
* fogfed join, backward secrecy off: addMember + 1 key (+ 1 history key when the epoch > 0)
* fogfed leave: removeMember + N-1 re-keyed members (forward secrecy)
* fogfed move (both federations of N, secrecy on): 1 free view (checkHandover) + moveMember
  + N-1 old members + bumpEpoch + N destination members + 1 key; no device re-key
* LKH join/leave: ~2 log2 N key wraps; move = leave + join
"""

from __future__ import annotations

import sys

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import exit_code, Report, base_parser, line_plot, parse_ints
from benchmarks.lkh import KEY, LKHTree, move as lkh_move


def measure_fogfed(n: int) -> dict:
    """One fresh deployment with two sibling federations of ``n`` members; join, leave, move measured once each."""
    from fogfed.chain import connect
    from fogfed.chain.mobility import deploy_mobility
    from fogfed.keys import KdfParams, NodeIdentity
    from fogfed.protocol.enrollment import EnrollmentRequest
    from fogfed.protocol.move import MoveRequest
    from fogfed.tas import TrustedAuthority
    from fogfed.tas.mobility import MobilityAuthority

    chain = connect(None)
    home = Path(tempfile.mkdtemp(prefix="fogfed-mobility-bench-"))
    tas = TrustedAuthority.init(home, chain, "benchmark passphrase", account=chain.dev_accounts()[0],
                                kdf=KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1))
    mob = deploy_mobility(chain, tas.account, tas.fed)
    auth = MobilityAuthority(tas, mob)
    region = tas.create_federation("region", "health").federation_id
    src = tas.create_federation("src", "health", region).federation_id
    dst = tas.create_federation("dst", "health", region).federation_id

    def request(identity, loc):
        return EnrollmentRequest.create(identity, loc, "health", chain_id=tas.chain_id, contract=tas.contract_address)

    ids = {}
    for fid, loc in ((src, "src"), (dst, "dst")):
        ids[loc] = [NodeIdentity.generate() for _ in range(n)]
        for ident in ids[loc]:
            tas.enroll(request(ident, loc), approve=True)  # epoch 0: no re-key during set-up

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t0

    # unit costs: one delivery (keygen + seal + deliverKey) and one keygen alone
    # median of several single deliveries: the first transactions of a fresh chain are slower
    member = ids["src"][0].address
    singles = [timed(lambda: tas.deliver_keys(src, tas.fed.federation(src).epoch, [member])) for _ in range(7)]
    delivery_gas, t_delivery = singles[-1][0], statistics.median(t for _, t in singles)
    from fogfed.protocol.attributes import node_attributes
    keygen_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        sk = tas.issue_key(node_attributes("src", "health", src, 0))
        keygen_times.append(time.perf_counter() - t0)
    sealed_bytes = len(tas.fed.events(names=["KeyDelivered"])[-1].args["sealedKey"])

    joined = NodeIdentity.generate()
    join, t_join = timed(lambda: auth.enroll(request(joined, "dst"), approve=True))
    leave, t_leave = timed(lambda: tas.remove(ids["src"][1].address))
    mover = ids["src"][2]
    move_req = MoveRequest.create(mover, dst, chain_id=tas.chain_id, contract=tas.contract_address,
                                  mobility=mob.address)
    t0 = time.perf_counter()
    mob.check_handover(mover.address, dst, mover.enc_public_key)
    t_check = time.perf_counter() - t0
    moved, t_move = timed(lambda: auth.move(move_req))
    auth.set_backward_secrecy(src, False)
    joined_off = NodeIdentity.generate()
    join_off, t_join_off = timed(lambda: auth.enroll(request(joined_off, "src"), approve=True))
    return {
        "n": n, "sealed_key_bytes": sealed_bytes, "abe_key_bytes": len(sk.to_bytes()),
        "delivery_gas": delivery_gas, "delivery_s": t_delivery, "keygen_s": statistics.median(keygen_times),
        "check_handover_s": t_check,
        "join_on": {"s": t_join, "gas": sum(join.gas.values()), "deliveries": n + 1, "detail": join.gas},
        "leave": {"s": t_leave, "gas": sum(leave.gas.values()), "deliveries": n - 1, "detail": leave.gas},
        "move": {"s": t_move, "gas": sum(moved.gas.values()), "deliveries": len(moved.old_rekey.nodes)
                 + len(moved.newcomer_rekey.nodes if moved.newcomer_rekey else ()) + 1, "detail": moved.gas,
                 "level": moved.level},
        "join_off": {"s": t_join_off, "gas": sum(join_off.gas.values()), "deliveries": 1, "detail": join_off.gas},
    }


def fixed_costs(m: dict) -> dict:
    """Gas and time of each operation minus its deliveries: what does not grow with N."""
    return {op: {"gas": m[op]["gas"] - m[op]["deliveries"] * m["delivery_gas"],
                 "s": max(m[op]["s"] - m[op]["deliveries"] * m["delivery_s"], 0.0)}
            for op in ("join_on", "leave", "move", "join_off")}


DELIVERIES = {"join_on": lambda n: n + 1, "leave": lambda n: n - 1, "move": lambda n: 2 * n,  # N-1 old members + N destination members + 1 key
              "join_off": lambda n: 1}


def model(unit: dict, fixed: dict, op: str, n: int) -> dict:
    """fogfed's cost of ``op`` at size ``n`` from measured unit costs (deliveries x unit + fixed)."""
    k = DELIVERIES[op](n)
    return {"deliveries": k, "keygens": k, "messages": k, "bytes": k * unit["sealed_key_bytes"],
            "gas": fixed[op]["gas"] + k * unit["delivery_gas"], "s": fixed[op]["s"] + k * unit["delivery_s"]}


def measure_lkh(n: int, repeat: int) -> dict:
    """LKH join, leave and move at size ``n`` (median of ``repeat`` runs each)."""
    out = {}
    for op in ("join", "leave", "move"):
        samples, cost = [], None
        for r in range(repeat):
            a, b = LKHTree.with_members(n), LKHTree.with_members(n)
            t0 = time.perf_counter()
            cost = a.join("new") if op == "join" else a.leave("m0") if op == "leave" else lkh_move(a, b, "m0")
            samples.append(time.perf_counter() - t0)
        out[op] = {"s": statistics.median(samples), "wraps": cost.wraps, "bytes": cost.bytes, "keys": cost.keys}
    tree = LKHTree.with_members(n)
    out["member_key_bytes"] = tree.keys_per_member() * KEY
    out["server_key_bytes"] = len(tree.keys) * KEY
    return out


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--measure", type=parse_ints, default=None, help="N measured on the chain (default 10,100)")
    parser.add_argument("--sizes", type=parse_ints, default=None, help="N reported (default 10,100,1000,10000)")
    args = parser.parse_args(argv)
    measured_ns = args.measure or ([4] if args.quick else [10, 100])
    sizes = args.sizes or ([4, 16, 64] if args.quick else [10, 100, 1000, 10000])
    repeat = args.repeat or (3 if args.quick else 15)
    report = Report("mobility", args)

    measured = [measure_fogfed(n) for n in measured_ns]
    base = measured[0]  # unit costs from the smallest run; the larger runs check the extrapolation
    fixed = fixed_costs(base)
    report.table("validation", f"fogfed model (unit costs from the N={base['n']} run) vs measurement",
                 ["op", "N", "measured gas", "model gas", "gas err %", "measured s", "model s", "time err %"])
    for m in measured:
        for op in ("join_on", "leave", "move", "join_off"):
            pred = model(base, fixed, op, m["n"])
            report.row("validation", op, m["n"], m[op]["gas"], pred["gas"],
                       round(100 * (pred["gas"] - m[op]["gas"]) / m[op]["gas"], 1), round(m[op]["s"], 3),
                       round(pred["s"], 3), round(100 * (pred["s"] - m[op]["s"]) / m[op]["s"], 1))

    names = {"join_on": "join (BS on)", "join_off": "join (BS off)", "leave": "leave", "move": "move"}
    lkh_op = {"join_on": "join", "join_off": "join", "leave": "leave", "move": "move"}
    report.table("compare", "cost per operation: fogfed (modelled from measured units) vs LKH (measured)",
                 ["op", "N", "fogfed keygens", "fogfed msgs", "fogfed bytes", "fogfed gas", "fogfed s",
                  "LKH wraps=msgs", "LKH bytes", "LKH s", "faster", "fewer msgs"])
    report.table("storage", "storage", ["N", "fogfed per-node key B", "LKH per-node key B", "LKH server key B",
                                        "fogfed on-chain B per member", "fogfed handover check"])
    series: dict = {}
    rows = []
    for n in sizes:
        lkh = measure_lkh(n, repeat)
        for op in ("join_on", "join_off", "leave", "move"):
            f, l = model(base, fixed, op, n), lkh[lkh_op[op]]
            rows.append({"op": op, "n": n, "fogfed": f, "lkh": l})
            report.row("compare", names[op], n, f["keygens"], f["messages"], f["bytes"], f["gas"], round(f["s"], 3),
                       l["wraps"], l["bytes"], f"{l['s'] * 1e3:.3f} ms", "fogfed" if f["s"] < l["s"] else "LKH",
                       "fogfed" if f["messages"] < l["wraps"] else "LKH" if f["messages"] > l["wraps"] else "tie")
            series.setdefault(op, {"fogfed": ([], []), "LKH": ([], []), "fogfed B": ([], []), "LKH B": ([], [])})
            for label, x in (("fogfed", f["s"]), ("LKH", l["s"]), ("fogfed B", f["bytes"]), ("LKH B", l["bytes"])):
                series[op][label][0].append(n)
                series[op][label][1].append(x)
        report.row("storage", n, base["abe_key_bytes"] + 64, lkh["member_key_bytes"], lkh["server_key_bytes"],
                   64, f"1 view, {base['check_handover_s'] * 1e3:.1f} ms, 0 gas")
    report.data.update(measured=measured, fixed=fixed, rows=rows, measured_ns=measured_ns, sizes=sizes,
                       note="fogfed rows at sizes not in measured_ns are modelled; LKH rows are measured")
    report.finish()
    if args.plot:
        panels = []
        for op in ("join_on", "leave", "move"):
            s = series[op]
            panels.append({"title": f"{names[op]}: time", "xlabel": "N", "ylabel": "seconds", "logx": True,
                           "logy": True, "series": {"fogfed (model)": s["fogfed"], "LKH": s["LKH"]}})
            panels.append({"title": f"{names[op]}: bytes sent", "xlabel": "N", "ylabel": "bytes", "logx": True,
                           "logy": True, "series": {"fogfed (model)": s["fogfed B"], "LKH": s["LKH B"]}})
        line_plot(args.plot, panels, title="fogfed mobility vs LKH", ncols=2)
    return 0


if __name__ == "__main__":
    sys.exit(exit_code(main()))
