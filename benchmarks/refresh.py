"""A member-tree refresh of N members measured on a real chain: gas, TAS computation, bundle, one member's look-up.

    python -m benchmarks.refresh [--n 10000] [--chain anvil|embedded] [--setup-batch 200] [--json F] [--no-fail]

Set-up (not measured): a fresh FogFed on Anvil (``node_modules/.bin/anvil``,
the default) or the embedded py-evm chain, one federation, one real fog node
enrolled through the TAS (its X25519 key, its keyring), and N - 1 more
members by ``addMembers`` batches of ``--setup-batch`` (their X25519 keys are
one placeholder: sealing to it costs the same as to a real key).

Measured, on the real code path (``TrustedAuthority.refresh``): reading the N
members' X25519 keys from the contract, the keygen and seal of every key (TAS
computation), storing the bundle in the content store (the embedded store),
the ``bumpEpoch`` transaction's gas from its receipt, and the check after the
commit for members the bundle missed. Then the real node finds and checks its
entry: the replay of the tree's events (``FogNode.member_tree``, which every
node runs for its uploads anyway) timed apart from ``FogNode.pull_refreshes``
(reads the bundle by the digest on chain, the store verifies it, finds the
node's entry, opens the sealed box). Exits 1
when the refresh costs more than 150,000 gas or more than one transaction.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Report, base_parser, exit_code, progress

GAS_TARGET = 150_000
PLACEHOLDER_KEY = bytes(range(1, 33))


def measure(n: int, chain_kind: str, setup_batch: int) -> dict:
    """Set up a federation of ``n`` members on ``chain_kind``, refresh it, time one member's look-up."""
    from fogfed.chain import connect
    from fogfed.chain.devnet import start_anvil
    from fogfed.keys import KdfParams
    from fogfed.node import FogNode
    from fogfed.storage import EmbeddedStore
    from fogfed.tas import TrustedAuthority

    light = KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)
    home = Path(tempfile.mkdtemp(prefix="fogfed-refresh-bench-"))
    with contextlib.ExitStack() as stack:
        if chain_kind == "anvil":
            chain = connect(stack.enter_context(start_anvil(log=home / "anvil.log")).url)
        else:
            chain = connect(None)
        store = EmbeddedStore(home / "store")
        tas = TrustedAuthority.init(home / "tas", chain, "benchmark passphrase", account=chain.dev_accounts()[0],
                                    kdf=light)
        tas.use_store(store)
        fid = tas.create_federation("bench", "health").federation_id
        node = FogNode.init(home / "node", chain, tas.contract_address, store, "benchmark passphrase", kdf=light)
        chain.fund(node.address, 10**18, tas.account)
        tas.enroll(node.enrollment_request("bench", "health"), approve=True)
        node.refresh_keys()
        setup_gas = 0
        with progress("set-up: addMembers", n - 1) as step:
            for i in range(0, n - 1, setup_batch):
                part = ["0x" + os.urandom(20).hex() for _ in range(min(setup_batch, n - 1 - i))]
                setup_gas += tas.fed.add_members(tas.account, fid, part, [PLACEHOLDER_KEY] * len(part)).gas_used
                step(i + len(part))
        tree = tas.trees.get(fid)  # members beyond generation 0's leaves wait for a leaf of the next one
        assert len(tree.leaves) + len(tree.waiting) == n
        before = {"height": tree.height, "leaves": len(tree.leaves), "waiting": len(tree.waiting)}

        marks: dict[str, float] = {}

        def sealed(_: int) -> None:
            marks.setdefault("first_key", time.perf_counter())
            marks["last_key"] = time.perf_counter()

        head = chain.block_number()
        t0 = time.perf_counter()
        res = tas.refresh(fid, sealed)
        total = time.perf_counter() - t0
        txs = chain.block_number() - head
        deliveries = len(tas.fed.events(head + 1, names=["KeyDelivered"]))
        t1 = time.perf_counter()
        node.member_tree(fid)  # the replay of the chain's tree events (every node does it for uploads anyway)
        replay = time.perf_counter() - t1
        t1 = time.perf_counter()
        found = node.pull_refreshes(fid)  # read the bundle named on chain, find and open its entry
        lookup = time.perf_counter() - t1
        key = node.keyring.get(fid, res.epoch)
        after = tas.trees.get(fid)
        node.close()
        tas.close()
        return {
            "n": n, "chain": chain_kind, "gas": res.gas_used, "txs": txs, "deliveries": deliveries,
            "bundle_bytes": res.bundle_bytes, "members": res.members, "late": len(res.late),
            "tas_total_s": total, "read_members_s": marks["first_key"] - t0,
            "keygen_seal_s": marks["last_key"] - marks["first_key"],
            "store_commit_check_s": t0 + total - marks["last_key"],
            "replay_s": replay, "lookup_s": lookup, "lookup_found": found,
            "lookup_key_ok": key is not None and any(a.startswith(f"ct:{fid}:{res.generation}:") for a in key.attributes),
            "setup_gas_per_member": setup_gas / max(1, n - 1), "tree_before": before,
            "tree_after": {"generation": after.generation, "height": after.height, "leaves": len(after.leaves),
                           "waiting": len(after.waiting)},
        }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="members of the federation (default 10000)")
    parser.add_argument("--chain", choices=["anvil", "embedded"], default="anvil",
                        help="the chain the refresh runs on (default: Anvil)")
    parser.add_argument("--setup-batch", type=int, default=200, help="addMembers per set-up transaction")
    args = parser.parse_args(argv)
    n = args.n or (20 if args.quick else 10_000)
    if n < 1:
        parser.error("--n must be at least 1")
    report = Report("refresh", args)
    m = measure(n, args.chain, args.setup_batch)
    report.table("refresh", f"refresh of N members on {m['chain']} (one bumpEpoch; TAS computation measured)",
                 ["N", "txs", "key deliveries", "gas", "bundle B", "TAS total s", "read keys s", "keygen+seal s",
                  "store+commit+check s", "member: tree replay s", "member: bundle find+check s"])
    report.row("refresh", m["n"], m["txs"], m["deliveries"], m["gas"], m["bundle_bytes"], round(m["tas_total_s"], 1),
               round(m["read_members_s"], 1), round(m["keygen_seal_s"], 1), round(m["store_commit_check_s"], 2),
               round(m["replay_s"], 2), round(m["lookup_s"], 2))
    report.target(f"refresh of N = {n}: gas on chain", m["gas"], "<=", GAS_TARGET, "gas")
    report.target("refresh: transactions", m["txs"], "<=", 1, "tx")
    report.target("refresh: key deliveries (no gas per member)", m["deliveries"], "<=", 0, "")
    report.target("the member found and opened its entry", int(m["lookup_found"] == 1 and m["lookup_key_ok"]),
                  ">=", 1, "")
    report.data.update(result=m)
    report.finish()
    failed = [t.name for t in report.targets if not t.passed]
    return 1 if failed and not args.no_fail else 0


if __name__ == "__main__":
    sys.exit(exit_code(main()))
