"""Batch enrollment: many requests, ``addMembers`` per federation, one refresh commitment for their keys.

Paper Algorithms 2, 7 and 3 for many nodes at once. Every request is checked
before any gas is spent (signature, chain, contract, age, replay, already a
member by the free ``member`` view, the attribute verifier; a full member
tree needs no check: members beyond its leaves wait for one, and the batch's
refresh gives them leaves of a generation sized to the federation). Then, per federation (created if none has the requests'
location and service): ``addMembers`` in chunks under the block gas limit,
the per-node funding of a single enrollment (one plain transfer each), and
one ``bumpEpoch`` committing to a bundle of sealed keys in the content store
(the refresh path, fogfed.tas.authority): the only FogFed function that
commits to a bundle is the one that starts a new tree generation, so the
bundle holds every active member's key (the newcomers' and fresh keys for
the others), at a constant 33,573 gas whatever the batch size. The cost is
the TAS's computation: one keygen per member of the federation, not per
newcomer (docs/mobility.md, "Batch enrollment").

Resumable: one journal entry (kind ``enroll-batch``) records the accepted
requests and spends all their nonces in one SQLite transaction before the
first transaction; each later step is checked on chain first (a federation
exists; a node's ``MemberAdded`` since the batch began; a node holds a key
of the current generation), and the balances before funding are journaled
as for one enrollment. Running the same command again, or ``tas sync``,
finishes it; nothing is done twice (a second refresh would be refused by the
contract's epoch check anyway).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fogfed._faults import step
from fogfed.errors import FogfedError, InputError
from fogfed.protocol.enrollment import EnrollmentRejected, EnrollmentRequest
from fogfed.tas.journal import Entry
from fogfed.tas.verifier import AttributeVerifier

KIND = "enroll-batch"
CHUNK = 200  # addMembers entries per transaction (about 9.9 M gas at the measured 49,283 each)
GAS_PER_MEMBER = 60_000  # above one addMembers entry (49,283 measured), to keep a chunk under the block gas limit

#: progress(phase, done, total): "checking", "registering", "funding", "sealing keys"
Progress = Callable[[str, int, int], None]


class BatchRejected(EnrollmentRejected):
    """Some requests of a batch were refused; nothing was changed. ``rejections``: (label, reason) pairs."""

    def __init__(self, rejections: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {label}: {reason}" for label, reason in rejections[:20])
        more = f"\n  ... and {len(rejections) - 20} more" if len(rejections) > 20 else ""
        super().__init__(f"{len(rejections)} enrollment request(s) refused, nothing was changed:\n{lines}{more}",
                         "fix or leave out those requests (or pass --skip-rejected to enroll the others)")
        self.rejections = rejections


@dataclass(frozen=True)
class BatchEnrollmentResult:
    """Nodes enrolled by one batch: rows per member and per federation, gas per function, transactions."""

    members: tuple[dict[str, Any], ...]  # node, federation_id, leaf, generation, active
    federations: tuple[dict[str, Any], ...]  # federation_id, location, service, created, members, refresh
    rejected: tuple[dict[str, str], ...]  # label, reason (with skip_rejected)
    gas: dict[str, int]
    transactions: int
    resumed: bool  # the batch was begun by an earlier run (killed, or run again)


def batch_key(requests: Sequence[EnrollmentRequest]) -> str:
    """The journal key of a batch: its requests' nonces, in any order."""
    return "batch:" + hashlib.sha256(b"".join(sorted(r.nonce for r in requests))).hexdigest()[:40]


def enroll_batch(tas, requests: Sequence[EnrollmentRequest], *, labels: Sequence[str] | None = None,
                 verifier: AttributeVerifier, fund_wei: int = 0, chunk: int = CHUNK, skip_rejected: bool = False,
                 progress: Progress | None = None) -> BatchEnrollmentResult:
    """Enroll every request; BatchRejected (nothing changed) if any is refused, unless ``skip_rejected``."""
    if not requests:
        raise InputError("no enrollment requests given")
    if any(not isinstance(r, EnrollmentRequest) for r in requests):
        raise InputError("enroll_batch needs EnrollmentRequests", "parse them with EnrollmentRequest.from_json")
    if type(chunk) is not int or chunk < 1:
        raise InputError(f"chunk must be a positive number of members, got {chunk!r}")
    labels = list(labels) if labels is not None else [r.address for r in requests]
    if tas.store is None:
        raise FogfedError("batch enrollment delivers the keys in a bundle in the content store, and none is "
                          "configured", "pass --ipfs (or create the embedded store), or enroll one by one")
    key = batch_key(requests)
    with tas.locked():
        entry = tas.journal.get(key)
        if entry is None:
            accepted, rejected = _check(tas, requests, labels, verifier, progress)
            if rejected and (not skip_rejected or not accepted):
                raise BatchRejected(rejected)
            entry = tas.journal.begin(key, KIND, {
                "members": accepted, "fund_wei": int(fund_wei), "chunk": chunk,
                "from_block": tas.fed.chain.block_number() + 1,
                "rejected": [{"label": lb, "reason": why} for lb, why in rejected]},
                nonces=[bytes.fromhex(m["nonce"]) for m in accepted])
            resumed = False
        elif entry.kind != KIND:
            raise EnrollmentRejected("these enrollment requests were already used (replay)",
                                     "ask the nodes for fresh requests")
        else:
            resumed = True
        step("batch:journal")
        return finish_batch(tas, entry, progress, resumed=resumed)


def _check(tas, requests, labels, verifier, progress) -> tuple[list[dict], list[tuple[str, str]]]:
    """Every local and free check, before any state change: (accepted members, (label, reason) refused)."""
    accepted, rejected = [], []
    seen_nonce, seen_node = set(), set()
    unfinished = {bytes.fromhex(m["nonce"]) for e in tas.journal.unfinished(KIND) for m in e.data["members"]}
    for i, (r, label) in enumerate(zip(requests, labels)):
        try:
            r.verify(chain_id=tas.chain_id, contract=tas.contract_address)
            if r.nonce in seen_nonce or r.address in seen_node:
                raise EnrollmentRejected(f"{r.address} appears twice in this batch")
            if r.nonce in unfinished:
                raise EnrollmentRejected("this request is part of an unfinished batch",
                                         "finish that one: run the same command again, or `fogfed tas sync`")
            if tas.nonce_used(r.nonce):
                raise EnrollmentRejected("this enrollment request was already used (replay)")
            member = tas.fed.member(r.address)
            if member.active:
                raise EnrollmentRejected(f"{r.address} is already an active member of federation "
                                         f"{member.federation_id}")
            verdict = verifier.verify(r)
            if not verdict.ok:
                raise EnrollmentRejected(f"refused: {verdict.reason}")
        except (EnrollmentRejected, InputError) as exc:
            rejected.append((label, str(exc.args[0]) if exc.args else str(exc)))
        else:
            accepted.append({"address": r.address, "location": r.location, "service": r.service,
                             "enc_public_key": r.enc_public_key.hex(), "nonce": r.nonce.hex(),
                             "verdict": verdict.reason, "label": label})
        seen_nonce.add(r.nonce)
        seen_node.add(r.address)
        if progress is not None:
            progress("checking", i + 1, len(requests))
    return accepted, rejected


def finish_batch(tas, entry: Entry, progress: Progress | None = None, *, resumed: bool = True
                 ) -> BatchEnrollmentResult:
    """Run the batch's remaining steps, each checked on chain first; mark the entry done."""
    d = entry.data
    gas: Counter[str] = Counter()
    txs = 0
    groups: dict[tuple[str, str], list[dict]] = {}
    for m in d["members"]:
        groups.setdefault((m["location"], m["service"]), []).append(m)
    fids, created = {}, set(d.get("created", []))
    if entry.done:  # finished earlier: report it from the chain, do nothing
        fids = {key: tas.fed.federation_by_attributes(*key) for key in groups}
        return _result(tas, entry, groups, fids, created, {}, {}, 0, resumed)
    for (loc, svc) in groups:
        fid = tas.fed.federation_by_attributes(loc, svc)
        if fid == 0:
            info = tas.create_federation(loc, svc)
            fid, gas["createFederation"], txs = info.federation_id, gas["createFederation"] + (info.gas_used or 0), txs + 1
            created.add(fid)
            tas.journal.update(entry, created=sorted(created))
        fids[(loc, svc)] = fid
    step("batch:federation")
    txs += _register(tas, entry, groups, fids, gas, progress)
    txs += _fund(tas, entry, gas, progress)
    step("batch:fund")
    refreshes = {}
    for key, members in groups.items():
        res = _deliver(tas, fids[key], {m["address"] for m in members}, gas, progress)
        if res is not None:
            txs += 1 + len(res.late)
            refreshes[fids[key]] = res
        step("batch:deliver")
    tas.journal.update(entry, done=True)
    return _result(tas, entry, groups, fids, created, refreshes, {k: v for k, v in gas.items() if v}, txs,
                   resumed)


def _register(tas, entry, groups, fids, gas, progress) -> int:
    """``addMembers`` for every member not added yet (its MemberAdded since the batch began tells), in chunks."""
    d, txs, done = entry.data, 0, 0
    total = len(d["members"])
    limit = int(tas.fed.chain.w3.eth.get_block("latest")["gasLimit"])
    chunk = min(d["chunk"], max(1, int(0.9 * limit) // GAS_PER_MEMBER))
    for key, members in groups.items():
        fid = fids[key]
        added = {e.args["node"] for e in tas.fed.events(d["from_block"], names=["MemberAdded"],
                                                         where={"federationId": fid})}
        todo = []
        for m in members:
            if m["address"] in added:
                continue  # added by this batch (possibly removed since: then it stays removed)
            rec = tas.fed.member(m["address"])
            if rec.active:
                if rec.federation_id == fid and rec.encryption_key.hex() == m["enc_public_key"]:
                    continue  # enrolled meanwhile with the same key (e.g. by a single enroll elsewhere)
                raise FogfedError(f"{m['address']} became a member of federation {rec.federation_id} meanwhile",
                                  "leave it out of the batch (fogfed tas status shows it)")
            todo.append(m)
        done += len(members) - len(todo)
        for i in range(0, len(todo), chunk):
            part = todo[i:i + chunk]
            tx = tas.fed.add_members(tas.account, fid, [m["address"] for m in part],
                                     [bytes.fromhex(m["enc_public_key"]) for m in part])
            gas["addMembers"] += tx.gas_used
            txs += 1
            done += len(part)
            step("batch:addMembers")
            if progress is not None:
                progress("registering", done, total)
    return txs


def _fund(tas, entry, gas, progress) -> int:
    """The per-node funding of a single enrollment, one transfer each; balances journaled before any."""
    d = entry.data
    if not d["fund_wei"]:
        return 0
    chain, members = tas.fed.chain, [m["address"] for m in d["members"]]
    if "balance_before" not in d:
        # A transfer leaves no event: the balance before it, recorded first, tells a retry whether it happened.
        tas.journal.update(entry, balance_before={node: chain.balance(node) for node in members})
        step("batch:fund-recorded")
    funded, txs = list(d.get("funded", [])), 0
    for node in members:
        if node in funded:
            continue
        if chain.balance(node) <= d["balance_before"][node]:
            gas["fund"] += int(chain.fund(node, d["fund_wei"], tas.account)["gasUsed"])
            txs += 1
            step("batch:fund-sent")
        funded.append(node)
        tas.journal.update(entry, funded=funded)
        if progress is not None:
            progress("funding", len(funded), len(members))
    return txs


def _deliver(tas, fid: int, ours: set[str], gas, progress):
    """One refresh of the federation when a member of the batch holds no key of its current generation
    (or a refresh of it was cut short: finished first)."""
    tree = tas.trees.get(fid)
    unfinished = any(e.data["federation_id"] == fid for e in tas.journal.unfinished("refresh"))
    if not (unfinished or ours.intersection(tree.waiting) or tas.trees.missing_keys(fid, only=ours)):
        return None
    total, sealed = len(tree.refresh_order()), [0]

    def counted(n: int) -> None:
        sealed[0] += n
        if progress is not None:
            progress("sealing keys", sealed[0], total)

    res = tas.refresh(fid, counted)  # journaled; built again by itself when a removal races its commit
    gas["bumpEpoch"] += res.gas_used
    gas["deliverKey"] += res.late_gas  # members the bundle missed (joined meanwhile through another process)
    return res


def _result(tas, entry, groups, fids, created, refreshes, gas, txs, resumed) -> BatchEnrollmentResult:
    rows, feds = [], []
    for key, members in groups.items():
        fid = fids[key]
        tree = tas.trees.get(fid)
        for m in members:
            rows.append({"node": m["address"], "label": m.get("label"), "federation_id": fid,
                         "leaf": tree.leaves.get(m["address"]), "generation": tree.generation,
                         "active": m["address"] in tree.leaves, "verdict": m["verdict"]})
        r = refreshes.get(fid)
        feds.append({"federation_id": fid, "location": key[0], "service": key[1], "created": fid in created,
                     "newcomers": len(members), "generation": tree.generation,
                     "refresh": None if r is None else {
                         "epoch": r.epoch, "members": r.members, "bundle_bytes": r.bundle_bytes,
                         "bundle": r.bundle.hex(), "gas_used": r.gas_used, "late": list(r.late)}})
    return BatchEnrollmentResult(tuple(rows), tuple(feds), tuple(entry.data.get("rejected", [])), gas, txs, resumed)


__all__ = ["BatchEnrollmentResult", "BatchRejected", "CHUNK", "batch_key", "enroll_batch", "finish_batch"]
