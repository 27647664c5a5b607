"""The paper's whole scenario as one function: what ``fogfed demo`` runs.

Everything is real and in-process: an embedded (ephemeral) py-evm chain with
the compiled FogFed contract, the embedded content store, pairing-based
CP-ABE, and peer servers on 127.0.0.1 in threads. Each step checks what the
paper says should happen and records PASS or FAIL with its measurements.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fogfed.errors import FogfedError

#: The paper's experiment (section 7.2) has five fog nodes grouped by location and service.
NODES = (("A", "riyadh", "health"), ("B", "riyadh", "health"), ("C", "riyadh", "health"),
         ("D", "riyadh", "traffic"), ("E", "jeddah", "health"))
PASSPHRASE = "fogfed demo passphrase"
FILE_BYTES = 2 << 20


class StepFailed(FogfedError):
    """A demo step saw something other than what the paper's scenario expects."""


def expect(condition: bool, what: str) -> None:
    """Fail the current step with ``what`` unless ``condition`` holds."""
    if not condition:
        raise StepFailed(what)


@dataclass
class Step:
    """One numbered step of the demo and its outcome."""

    number: int
    title: str
    algorithms: str
    checked: str = ""
    ran: bool = False
    passed: bool = False
    seconds: float = 0.0
    error: str | None = None
    measurements: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoResult:
    """Every step, the gas table, and the verdict."""

    steps: list[Step]
    gas_rows: list[dict]
    seconds: float

    @property
    def failed(self) -> int:
        """Steps that ran and failed."""
        return sum(s.ran and not s.passed for s in self.steps)

    @property
    def skipped(self) -> int:
        """Steps not run because an earlier one failed."""
        return sum(not s.ran for s in self.steps)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed": self.failed, "skipped": self.skipped, "seconds": round(self.seconds, 3),
                "steps": [asdict(s) for s in self.steps], "gas": self.gas_rows}


class Scenario:
    """The demo's world: one chain, one store, the TAS, five nodes and an outsider; results so far."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.chain: Any = None
        self.store: Any = None
        self.tas: Any = None
        self.contract = ""
        self.nodes: dict[str, Any] = {}
        self.files: dict[str, Any] = {}  # name -> UploadResult
        self.plain: dict[str, Path] = {}
        self.gas: dict[str, int] = {}
        self.gas_rows: list[dict] = []
        self.cache_bytes = 1 << 30

    def close(self) -> None:
        for n in self.nodes.values():
            try:
                n.close()
            except FogfedError:
                pass

    @staticmethod
    def light_kdf() -> Any:
        # The lowest Argon2id cost the keystore accepts: fine for a throw-away demo, not for real homes.
        from fogfed.keys.keystore import KdfParams

        return KdfParams(memory_cost=19 * 1024, iterations=1, lanes=1)

    def new_node(self, name: str) -> Any:
        from fogfed.node.client import FogNode

        node = FogNode.init(self.root / f"node-{name}", self.chain, self.contract, self.store, PASSPHRASE,
                            kdf=self.light_kdf(), cache_bytes=self.cache_bytes)
        self.nodes[name] = node
        return node

    def random_file(self, name: str, size: int = FILE_BYTES) -> Path:
        path = self.root / f"{name}.bin"
        with open(path, "wb") as f:
            for _ in range(0, size, 1 << 20):
                f.write(os.urandom(min(1 << 20, size)))
        self.plain[name] = path
        return path

    def fetch(self, who: str, name: str) -> Any:
        dest = self.root / f"{name}.{who}.out"
        dest.unlink(missing_ok=True)
        return self.nodes[who].fetch(self.files[name].file_id, dest)

    def same(self, result: Any, name: str) -> bool:
        return _sha256(result.dest) == _sha256(self.plain[name])


def _plaintext_hash(path: Path) -> bytes:
    """The plaintext hash a fogfed upload registers for ``path`` (the stream format's)."""
    from fogfed.abe.stream import plaintext_hasher

    h = plaintext_hasher()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.digest()


def _sha256(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.digest()


def _refused(fn: Callable[[], object], *errors: type[BaseException]) -> str:
    """Run ``fn`` expecting one of ``errors``; its message (the step fails if nothing is raised)."""
    try:
        fn()
    except errors as exc:
        return getattr(exc, "message", str(exc))
    raise StepFailed(f"{getattr(fn, '__name__', 'the call')} was not refused")


def step_deploy(s: Scenario) -> tuple[str, dict]:
    from fogfed.chain import connect, deploy
    from fogfed.storage import EmbeddedStore

    s.chain = connect()
    s.store = EmbeddedStore(s.root / "store")
    deployer = s.chain.dev_accounts()[0]
    fed = deploy(s.chain, deployer)
    s.contract = fed.address
    s.gas["deploy"] = gas = int(fed.deploy_receipt["gasUsed"])
    code = len(s.chain.w3.eth.get_code(fed.address))
    expect(code > 0, "no contract code at the deployed address")
    expect(fed.is_operator(deployer.address), "the deployer is not a TAS operator")
    return (f"FogFed at {fed.address}: {code:,} bytes of code, deployer is TAS operator",
            {"contract": fed.address, "gas": gas, "code_bytes": code})


def step_setup(s: Scenario) -> tuple[str, dict]:
    from fogfed.keys.keystore import WrongPassphrase
    from fogfed.tas import TrustedAuthority

    home = s.root / "tas"
    s.tas = TrustedAuthority.init(home, s.chain, PASSPHRASE, fed=s.contract, account=s.chain.dev_accounts()[0],
                                  kdf=s.light_kdf())
    s.tas.use_store(s.store)  # keys delivered by reference: the sealed box in the store, 36 bytes on chain
    on_disk = b"".join(p.read_bytes() for p in home.iterdir() if p.is_file())
    expect(s.tas._msk.to_bytes() not in on_disk, "the master key is on disk in plaintext")
    _refused(lambda: TrustedAuthority.open(home, s.chain, "not the passphrase"), WrongPassphrase)
    return ("system keys created; master key only in the encrypted keystore; wrong passphrase refused",
            {"scheme": s.tas.public_key.scheme, "keystore_bytes": len(on_disk)})


def step_enroll(s: Scenario) -> tuple[str, dict]:
    gas: dict[str, list[int]] = {}
    for name, location, service in NODES:
        node = s.new_node(name)
        req = node.enrollment_request(location, service)
        r = s.tas.enroll(req, approve=True, fund_wei=10**18)
        for op, g in r.gas.items():
            gas.setdefault(op, []).append(g)
        expect(node.refresh_keys() >= 1, f"node {name} found no key on chain")
        expect(node.membership()[1], f"node {name} is not an active member")
    feds = {(f.location, f.service): f for f in s.tas.federations()}
    expect(len(feds) == 3, f"expected 3 federations, found {len(feds)}")
    expect(len(feds[("riyadh", "health")].members) == 3, "riyadh/health should have 3 members")
    s.gas["createFederation"] = gas.get("createFederation", [0])[0]
    s.gas["addMember"] = max(gas.get("addMember", [0]))
    return ("5 nodes enrolled into 3 federations (riyadh/health x3, riyadh/traffic, jeddah/health); "
            "each pulled its sealed key from chain",
            {"federations": {f"{k[0]}/{k[1]}": len(v.members) for k, v in feds.items()},
             "gas": {k: max(v) for k, v in gas.items()}})


def step_upload(s: Scenario) -> tuple[str, dict]:
    measures = {}
    for name, who in (("doc1", "A"), ("doc2", "D")):
        path = s.random_file(name)
        t0 = time.perf_counter()
        r = s.nodes[who].upload(path)
        measures[name] = {"seconds": round(time.perf_counter() - t0, 3), "bytes": r.size, "cid": r.cid}
        s.files[name] = r
        stored = hashlib.sha256(b"".join(s.store.cat(r.cid))).digest()
        expect(stored != _sha256(path), f"{name} is stored in plaintext")
        expect(r.plaintext_hash == _plaintext_hash(path), f"{name}'s recorded hash is not the plaintext's")
        expect(r.announced, f"{name}'s uploader did not announce its cached copy")
    s.gas["registerFile"] = s.files["doc1"].gas["registerFile"]
    return ("A (riyadh/health) and D (riyadh/traffic) uploaded 2 MiB each: ciphertext in the store, "
            "hash + encrypted key on chain, copy cached and announced", measures)


def step_peer_fetch(s: Scenario) -> tuple[str, dict]:
    server = s.nodes["A"].serve()
    r = s.fetch("B", "doc1")
    expect(r.source == f"peer:{s.nodes['A'].address}", f"B fetched doc1 from {r.source}, not from A's cache")
    expect(s.same(r, "doc1"), "B's copy of doc1 differs from the original")
    s.gas["recordAccess"] = r.gas["recordAccess"]
    return (f"B got doc1 from A's peer cache at {server.url}; plaintext hash matches the chain",
            {"source": r.source, "gas": r.gas})


def step_storage_fetch(s: Scenario) -> tuple[str, dict]:
    expect(s.nodes["A"].evict(s.files["doc1"].file_id), "A had no cached doc1 to evict")
    r = s.fetch("C", "doc1")
    expect(r.source == "storage", f"C fetched doc1 from {r.source}, expected storage")
    expect(s.same(r, "doc1"), "C's copy of doc1 differs from the original")
    return ("A evicted doc1 (announcement withdrawn); C got it from storage, verified", {"source": r.source})


def step_refuse_outsiders(s: Scenario) -> tuple[str, dict]:
    from fogfed.node.client import AccessDenied, NotMember
    from fogfed.chain import ContractRevert
    from fogfed.node.peer import PeerError

    outsider = s.new_node("outsider")
    s.chain.fund(outsider.address, 10**18)
    why_contract = _refused(lambda: s.fetch("outsider", "doc1"), AccessDenied, NotMember)
    why_upload = _refused(lambda: outsider.upload(s.plain["doc1"]), NotMember)
    why_write = _refused(lambda: outsider.fed.register_file(
        outsider.account, 1, os.urandom(32), os.urandom(32), os.urandom(32), "ff:1", 0), ContractRevert)
    a = s.nodes["A"]
    with tempfile.TemporaryFile() as sink:
        why_peer = _refused(lambda: outsider.peer_client.fetch(a._server.url, a.address, s.files["doc2"].file_id,
                                                               sink), PeerError)
    why_other = _refused(lambda: s.fetch("D", "doc1"), AccessDenied)
    return ("an outsider is refused by the contract (read and write) and by A's peer server; "
            "D (riyadh/traffic) is refused riyadh/health's file",
            {"contract_read": why_contract, "upload": why_upload, "contract_write": why_write,
             "peer": why_peer, "other_federation": why_other})


def step_tamper(s: Scenario) -> tuple[str, dict]:
    from fogfed.node.client import FetchFailed

    b, c = s.nodes["B"], s.nodes["C"]
    fid = s.files["doc1"].file_id
    # A rogue B alters its cached ciphertext and fixes its own index, so it serves the bad bytes.
    blob = b.home / "cache" / "blobs" / fid.hex()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    with sqlite3.connect(b.home / "cache" / "index.sqlite3") as db:
        db.execute("UPDATE blobs SET sha256 = ? WHERE file_id = ?", (hashlib.sha256(data).digest(), fid))
    b.serve()
    c.evict(fid)
    r = s.fetch("C", "doc1")
    expect(r.source == "storage" and s.same(r, "doc1"), f"C got doc1 from {r.source}")
    expect(any(b.address in d for d in r.damage_reports), "C did not report B's tampered copy")
    reported = [e for e in s.tas.fed.events(names=["FileDamaged"], where={"fileId": fid}) if e.args["holder"] == b.address]
    expect(bool(reported), "C's damage report on B's copy is not on chain")
    # The stored copy: one block of a fresh file altered in the store itself.
    path = s.random_file("doc3")
    up = s.nodes["A"].upload(path)
    s.files["doc3"] = up
    s.nodes["A"].evict(up.file_id)
    pack, offset, length = _some_leaf_block(s.store, up.cid)
    with open(pack, "r+b") as f:
        f.seek(offset + length - 1)
        last = f.read(1)[0]
        f.seek(offset + length - 1)
        f.write(bytes([last ^ 0x01]))
    dest = s.root / "doc3.B.out"
    why = _refused(lambda: s.nodes["B"].fetch(up.file_id, dest), FetchFailed)
    expect(not dest.exists(), "a damaged stored copy was written out")
    expect(s.tas.fed.file(up.file_id).damaged, "the damaged stored copy was not reported on chain")
    return ("B's tampered cached copy: detected by C, reported on chain (fetchers now try B last), C fell back to storage; "
            "a tampered stored copy: detected, reported on chain, nothing written",
            {"cache_damage_reports": list(r.damage_reports), "stored_copy": why})


def _some_leaf_block(store: Any, root_cid: str) -> tuple[Path, int, int]:
    """Where a block of the stored DAG other than its root (a data block) lies: (pack, offset, length)."""
    blocks = store.blocks(root_cid)
    blocks = blocks[:-1] or blocks  # the root is last
    return store.block_location(blocks[len(blocks) // 2])


def step_remove_rogue(s: Scenario) -> tuple[str, dict]:
    from fogfed import abe
    from fogfed.node.client import AccessDenied, NotMember
    from fogfed.node.datapath import read_blob
    from fogfed.protocol.files import cid_of_file_id, encsk_aad

    c = s.nodes["C"]
    old_keys = c.keyring.candidates()
    head = s.chain.block_number()
    reason = "served forged data (demo)"
    removal = s.tas.remove(c.address, reason=reason)
    s.gas["removeMember"] = removal.gas.get("removeMember", 0)
    txs = s.chain.block_number() - head
    expect(txs == 1, f"the removal took {txs} transactions, not one")
    delivered = s.tas.fed.events(head + 1, names=["KeyDelivered"])
    expect(not delivered, f"the removal delivered {len(delivered)} key(s); it should deliver none")
    noted = [e.args["note"] for e in s.tas.fed.events(head + 1, names=["RemovalNoted"])]
    expect(noted == [reason], f"the chain holds the removal note(s) {noted}, expected [{reason!r}]")
    expect(not c.membership()[1], "C is still an active member")
    why = _refused(lambda: s.fetch("C", "doc2"), AccessDenied, NotMember)
    s.random_file("doc4")
    up = s.nodes["A"].upload(s.plain["doc4"])
    s.files["doc4"] = up
    encsk = read_blob(s.store, cid_of_file_id(s.tas.fed.file(up.file_id).enc_sk_ref))
    aad = encsk_aad(s.chain.chain_id, s.contract, up.file_id)
    for sk in old_keys + c.keyring.candidates():
        _refused(lambda sk=sk: abe.decrypt(s.tas.public_key, sk, encsk, aad=aad),
                 abe.PolicyNotSatisfied, abe.DecryptionError)
    r = s.fetch("B", "doc4")
    expect(s.same(r, "doc4"), "B could not read the file uploaded after the removal with the key it had")
    tree = s.tas.trees.summary(c.fed.member(c.address).federation_id)
    return (f"C removed in ONE transaction ({removal.gas['removeMember']:,} gas, no key delivered to anyone): "
            f"its leaf is revoked; refused by the contract; none of its {len(old_keys)} key(s) opens doc4 "
            f"uploaded afterwards (cover of {tree['cover_nodes']} node(s)); B reads it with its old key; "
            f"the reason is on chain: {reason!r}",
            {"new_epoch": removal.new_epoch, "note": reason, "transactions": txs, "keys_delivered": len(delivered),
             "refusal": why, "gas": removal.gas, "tree": tree})


def step_false_claims(s: Scenario) -> tuple[str, dict]:
    from fogfed.node.client import AccessDenied, NotMember

    e = s.nodes["E"]
    fid = s.files["doc1"].file_id
    local = _refused(lambda: s.fetch("E", "doc1"), AccessDenied, NotMember)  # an honest client refuses itself
    threshold = s.tas.fed.settings().false_claim_threshold
    attempts = 0
    while e.membership()[1] and attempts < threshold + 1:
        e.fed.record_access(e.account, fid)  # a rogue E claims access anyway, bypassing its client's check
        attempts += 1
    expect(not e.membership()[1], f"E is still a member after {attempts} refused claims")
    synced = s.tas.sync()
    expect(not synced, "the TAS delivered keys after an automatic removal; covers need none")
    return (f"E's own client refused to claim riyadh/health's file; a rogue E claimed it on chain {attempts} "
            f"times: the contract removed it by itself (threshold {threshold}); its leaf is revoked by that one "
            f"transaction, nobody is re-keyed",
            {"local_refusal": local, "attempts": attempts, "threshold": threshold,
             "delivered": [r.federation_id for r in synced]})


def step_audit(s: Scenario) -> tuple[str, dict]:
    """The auditor's view: rebuild the whole history from events alone and verify it against the views."""
    from fogfed import audit

    folder = s.root / "audit"
    folder.mkdir(exist_ok=True)
    db = folder / "audit.sqlite"
    result = audit.replay(s.chain.w3, s.contract, db)
    mismatches = audit.verify(s.chain.w3, s.contract, result.state, result.head)
    expect(not mismatches, f"rebuilt state differs from the contract: {mismatches[0].message if mismatches else ''}")
    with audit.Checkpoint.open(db) as cp:
        report = audit.build_report(cp)
        html = folder / "audit.html"
        audit.write_html(report, cp, html)
    summary = report["summary"]
    expect(summary["removals"] >= 2 and summary["automatic_removals"] >= 1,
           f"the audit shows {summary['removals']} removals ({summary['automatic_removals']} automatic), "
           "expected the manual and the automatic one")
    removals = [r for r in report["state"]["removals"] if r["reason"] != "moved"]
    expect(any(r.get("note") == "served forged data (demo)" for r in removals),
           "the audit does not show the operator's removal note read from the chain")
    expect(all(r.get("trigger", {}).get("account") == r["node"] for r in removals if r["automatic"]),
           "the audit does not show the member's own access as the trigger of the automatic removal")
    expect(summary["damage_reports"] >= 2, f"the audit shows {summary['damage_reports']} damage reports, expected 2")
    return (f"{result.total_events} events replayed; rebuilt state equals the contract's views at block "
            f"{result.head}; {summary['removals']} removals ({summary['automatic_removals']} automatic), "
            f"{summary['damage_reports']} damage reports, {summary['findings']} findings; report {html}",
            {"events": result.total_events, "head": result.head, "summary": summary, "html": str(html)})


def step_gas(s: Scenario) -> tuple[str, dict]:
    from fogfed.chain.gasreport import PAPER_TABLE4, GasRow

    verified = s.tas.fed.verify_member(s.tas.account, s.nodes["A"].address, "riyadh", "health")
    expect(verified.value, "A is not verified as a riyadh/health member")
    s.gas["verifyMember"] = verified.gas_used
    by_op = {"FogFed constructor (deployment)": "deploy", "createFederation": "createFederation",
             "addMember": "addMember", "registerFile": "registerFile", "recordAccess": "recordAccess",
             "removeMember": "removeMember", "verifyMember (as a transaction)": "verifyMember"}
    rows = []
    for paper in PAPER_TABLE4:
        key = by_op.get(paper.operation)
        expect(key is not None and s.gas.get(key), f"no measurement for Table 4 row {paper.name!r}")
        rows.append(asdict(GasRow.of(paper, s.gas[key], "")))
    s.gas_rows = rows
    dearer = [r["paper_row"] for r in rows if r["gas"] >= r["paper_gas"]]
    expect(not dearer, f"costs as much gas as the paper or more: {', '.join(dearer)}")
    # The SPEC's tighter per-row targets are `fogfed gas-report`'s verdict; here they are shown, not enforced.
    missed = [f"{r['paper_row']} {r['gas']:,} > {r['target']:,}" for r in rows if not r["passed"]]
    note = f"; above the SPEC target (see fogfed gas-report): {'; '.join(missed)}" if missed else \
        "; all within the SPEC targets"
    return (f"every Table 4 operation measured on this run's transactions, each cheaper than the paper{note}",
            {"rows": len(rows), "spec_targets_missed": missed})


STEPS: tuple[tuple[str, str, Callable[[Scenario], tuple[str, dict]]], ...] = (
    ("deploy FogFed", "Alg 5", step_deploy),
    ("TAS setup", "Alg 1", step_setup),
    ("enroll 5 fog nodes into federations", "Alg 2/3/6/7", step_enroll),
    ("uploads", "Alg 4/8", step_upload),
    ("fetch from a peer cache", "Alg 9 case 1", step_peer_fetch),
    ("fetch from storage", "Alg 9 case 2", step_storage_fetch),
    ("non-members refused", "Alg 8/9", step_refuse_outsiders),
    ("tampered copies detected", "Alg 9", step_tamper),
    ("remove a rogue node in one transaction (revocation inside the policy)", "Alg 10", step_remove_rogue),
    ("automatic removal after false claims", "Alg 10", step_false_claims),
    ("audit the history from events alone", "auditor", step_audit),
    ("gas table vs the paper", "Table 4", step_gas),
)


def run_demo(workdir: Path | None = None, *, on_step: Callable[[Step], None] | None = None) -> DemoResult:
    """Run every step in order; a step that raises fails, and the steps after it are not run."""
    start = time.perf_counter()
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="fogfed-demo-")) if own else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    steps: list[Step] = []
    scenario = Scenario(root)
    failed = False
    try:
        for number, (title, algorithms, fn) in enumerate(STEPS, 1):
            step = Step(number, title, algorithms)
            if failed:
                step.checked, step.error = "not run", "an earlier step failed"
            else:
                t0 = time.perf_counter()
                step.ran = True
                try:
                    step.checked, step.measurements = fn(scenario)
                    step.passed = True
                except FogfedError as exc:
                    step.checked, step.error = exc.message, str(exc)
                except Exception as exc:  # the demo reports what broke instead of crashing
                    step.checked, step.error = "crashed", f"{type(exc).__name__}: {exc}"
                step.seconds = time.perf_counter() - t0
                failed = not step.passed
            steps.append(step)
            if on_step is not None:
                on_step(step)
    finally:
        scenario.close()
        if own:
            shutil.rmtree(root, ignore_errors=True)
    return DemoResult(steps, scenario.gas_rows, time.perf_counter() - start)
