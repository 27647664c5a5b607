"""Gas per operation against the paper's Table 4, plus a scale check.

Measuring lives here; ``fogfed gas-report`` and ``benchmarks/gas.py`` only
format the :class:`GasReport` this module returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fogfed.chain.artifacts import load_artifact
from fogfed.chain.connection import Chain, connect
from fogfed.chain.contract import FogFed, deploy
from fogfed.chain.errors import ChainError, InvalidArgument
from fogfed.chain.types import TxResult


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Table 4 and the SPEC's target for it."""

    name: str
    paper_gas: int
    target: int
    operation: str


# Table 4 of the paper; targets from SPEC section 5. The paper spends two
# transactions (file index + SK, then file hash) where fogfed's registration
# is one, so that one transaction is compared with their sum.
PAPER_TABLE4: tuple[PaperRow, ...] = (
    PaperRow("SC Deployment", 4_153_581, 2_000_000, "FogFed constructor (deployment)"),
    PaperRow("Fog Federation Creation", 1_949_796, 120_000, "createFederation"),
    PaperRow("Adding FN to FF", 847_139, 80_000, "addMember"),
    PaperRow("Add File Index and SK + Add File Hash", 2_136_909 + 2_037_800, 150_000, "registerFile"),
    PaperRow("Getting SK and file index", 927_240, 40_000, "recordAccess"),
    PaperRow("Remove FN from FF", 806_318, 60_000, "removeMember"),
    PaperRow("Verifying FN by attribute", 952_460, 30_000, "verifyMember (as a transaction)"),
)

DEFAULT_SCALE = 1_000
REMOVAL_NOTE = "removed by the TAS operator"  # the CLI's default reason: a typical note
MAX_SCALE = 100_000
BATCH = 100  # nodes per addMembers transaction (~5M gas, well under a 30M block)
# Gas may differ by a few calldata bytes (ids and addresses with more or fewer
# zero bytes cost 4 instead of 16 gas per byte), so "flat" allows 1 %.
FLAT_TOLERANCE = 0.01
LOCATION, SERVICE = "riyadh", "health"
POLICY = "(loc:riyadh and svc:health) and (ep:1:0)"

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class GasRow:
    """Measured gas of one Table 4 row."""

    paper_row: str
    paper_gas: int
    gas: int
    ratio: float
    operation: str
    target: int
    passed: bool
    tx: str

    @classmethod
    def of(cls, paper: PaperRow, gas: int, tx: str) -> "GasRow":
        return cls(paper.name, paper.paper_gas, gas, round(gas / paper.paper_gas, 6),
                   paper.operation, paper.target, gas <= paper.target, tx)


@dataclass(frozen=True)
class ScaleRow:
    """Gas of one operation at the 1st and at the N-th node or file."""

    operation: str
    first: int
    nth: int
    flat: bool


@dataclass
class GasReport:
    """Everything ``fogfed gas-report`` shows; ``to_json`` is the SPEC form plus extras."""

    rows: list[GasRow]
    chain: dict[str, Any]
    compiler: dict[str, Any]
    scale_n: int
    scale: list[ScaleRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every row meets its target and no operation grows with scale."""
        return all(r.passed for r in self.rows) and all(s.flat for s in self.scale)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [asdict(r) for r in self.rows],
            "passed": self.passed,
            "chain": self.chain,
            "compiler": self.compiler,
            "scale": {"n": self.scale_n, "flat": all(s.flat for s in self.scale),
                      "rows": [asdict(s) for s in self.scale]},
        }


def _key(label: str, i: int = 0) -> LocalAccount:
    # Deterministic, so gas (which depends on zero bytes in calldata) is the
    # same on every chain and every run.
    return Account.from_key(hashlib.sha256(f"fogfed gas-report {label} {i}".encode()).digest())


def _digest(label: str, i: int) -> bytes:
    return hashlib.sha256(f"fogfed gas-report {label} {i}".encode()).digest()


class _Run:
    """One gas-report session: a fresh FogFed and the accounts acting on it."""

    def __init__(self, chain: Chain, tas: LocalAccount, scale: int) -> None:
        from fogfed import abe

        self.chain, self.tas = chain, tas
        # FFPK: as long as a real CP-ABE public key (calldata is charged per byte), but
        # deterministic bytes: a fresh key's zero bytes would change the gas every run.
        size = len(abe.setup()[0].to_bytes())
        self.ffpk = hashlib.shake_256(b"fogfed gas-report ffpk").digest(size)
        self.fed: FogFed = deploy(chain, tas)
        self.node = _key("uploader")
        self.epoch = 0
        self.files = 0
        # Every transaction the uploader sends, at today's fee with margin, plus one
        # block's gas: gas estimation checks the sender can pay for a whole block.
        fee = 2 * int(chain.w3.eth.gas_price) + 10**9
        block_gas = int(chain.w3.eth.get_block("latest")["gasLimit"])
        chain.fund(self.node.address, ((scale + 10) * 300_000 + block_gas) * fee, sender=tas)

    def create_federation(self) -> TxResult:
        n = int(self.fed.settings().federation_count) + 1
        return self.fed.create_federation(self.tas, f"{LOCATION}-{n}" if n > 1 else LOCATION,
                                          SERVICE, self.ffpk)

    def add_member(self, address: str, federation_id: int = 1) -> TxResult:
        return self.fed.add_member(self.tas, federation_id, address, _digest("x25519", int(address, 16)))

    def register_file(self) -> TxResult:
        self.files += 1
        return self.fed.register_file(self.node, 1, _digest("ciphertext", self.files),
                                      _digest("plaintext", self.files), _digest("sk", self.files),
                                      POLICY, epoch=self.epoch)

    def remove_member(self, address: str) -> TxResult:
        result = self.fed.remove_member(self.tas, address, REMOVAL_NOTE)
        self.epoch = int(result.value)
        return result

    def measure_ops(self, victim: str, verified: str) -> dict[str, TxResult]:
        """Each per-file / per-node transaction once: ``victim`` is removed, ``verified`` verified."""
        out = {"registerFile": self.register_file()}
        out["recordAccess"] = self.fed.record_access(self.node, out["registerFile"].value)
        if not out["recordAccess"].value:  # a refused access is cheaper: it would flatter the row
            raise ChainError("the measured recordAccess was refused", "the gas report must measure a granted access")
        out["verifyMember"] = self.fed.verify_member(self.tas, verified, LOCATION, SERVICE)
        out["removeMember"] = self.remove_member(victim)
        return out

    def grow(self, n: int, progress: Progress | None) -> list[str]:
        """Add ``n`` members (in batches of BATCH) and ``n`` files; returns the members' addresses."""
        members: list[str] = []
        total = 2 * n
        while len(members) < n:
            batch = [_key("member", len(members) + i).address for i in range(min(BATCH, n - len(members)))]
            self.fed.add_members(self.tas, 1, batch, [_digest("x25519", int(a, 16)) for a in batch])
            members += batch
            if progress:
                progress(len(members), total, f"adding {n:,} nodes")
        for i in range(n):
            self.register_file()
            if progress and (i % 10 == 9 or i == n - 1):
                progress(n + i + 1, total, f"registering {n:,} files")
        return members


def _chain_info(chain: Chain, rpc: str | None) -> dict[str, Any]:
    try:
        client = str(chain.w3.client_version)
    except Exception:  # noqa: BLE001 - some nodes do not implement web3_clientVersion
        client = "unknown"
    return {"name": "embedded" if rpc is None else chain.label, "rpc": rpc, "chain_id": chain.chain_id,
            "client": client}


def _compiler_info() -> dict[str, Any]:
    compiler = load_artifact()["compiler"]
    settings = compiler.get("settings", {})
    return {"name": compiler.get("name", "solc"), "version": compiler.get("version"),
            "evm_version": settings.get("evmVersion"), "optimizer": settings.get("optimizer"),
            "via_ir": settings.get("viaIR", False)}


def measure(rpc: str | None = None, *, chain_id: int | None = None, scale: int = DEFAULT_SCALE,
            progress: Progress | None = None) -> GasReport:
    """Measure every Table 4 row on a freshly deployed FogFed, then check gas at scale.

    ``rpc`` None uses a fresh embedded chain; otherwise a JSON-RPC URL (or
    ``embedded:<dir>``). The sender is ``$FOGFED_PRIVATE_KEY`` or the chain's
    first dev account; it deploys, acts as TAS and funds one uploader account.
    Every figure is ``gasUsed`` from a mined transaction's receipt. After the
    first measurement, ``scale`` nodes and ``scale`` files are added and the
    per-operation rows are measured again (the N-th node / file).
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or not 2 <= scale <= MAX_SCALE:
        raise InvalidArgument(f"scale must be an integer from 2 to {MAX_SCALE:,}, got {scale!r:.40}",
                              "it is the number of nodes and files added before measuring again")
    chain = connect(rpc, chain_id=chain_id)
    try:
        return _measure(chain, rpc, scale, progress)
    except ChainError:
        raise
    except Exception as exc:  # noqa: BLE001 - a node dying mid-run surfaces as a requests/web3 error
        raise ChainError(f"gas report on {chain.label} failed: {type(exc).__name__}: {str(exc)[:200]}",
                         "is the node still running? run again") from None


def _measure(chain: Chain, rpc: str | None, scale: int, progress: Progress | None) -> GasReport:
    run = _Run(chain, chain.dev_accounts()[0], scale)
    gas = {"deploy": int(run.fed.deploy_receipt["gasUsed"])}
    txs = {"deploy": tx_hex(run.fed.deploy_receipt["transactionHash"])}
    # The 1st federation, the 1st node (the uploader, who also registers every file)...
    first = {"createFederation": run.create_federation(), "addMember": run.add_member(run.node.address)}
    victim = _key("victim").address
    run.add_member(victim)
    first |= run.measure_ops(victim=victim, verified=run.node.address)
    # ... and the same operations after `scale` more nodes and files.
    members = run.grow(scale, progress)
    nth = {"createFederation": run.create_federation(), "addMember": run.add_member(_key("newcomer").address)}
    nth |= run.measure_ops(victim=members[-1], verified=members[-2])
    for op, result in first.items():
        gas[op], txs[op] = result.gas_used, result.tx_hash
    by_operation = {"FogFed constructor (deployment)": "deploy", "verifyMember (as a transaction)": "verifyMember"}
    rows = [GasRow.of(p, gas[by_operation.get(p.operation, p.operation)],
                      tx_hex(txs[by_operation.get(p.operation, p.operation)])) for p in PAPER_TABLE4]
    scale_rows = [ScaleRow(op, first[op].gas_used, nth[op].gas_used,
                           nth[op].gas_used <= first[op].gas_used * (1 + FLAT_TOLERANCE)) for op in first]
    return GasReport(rows, _chain_info(chain, rpc), _compiler_info(), scale, scale_rows)


def write_plot(report: GasReport, path: Path, others: Sequence[GasReport] = ()) -> None:
    """A PNG bar chart, log-scale y, of the paper's gas vs fogfed's per Table 4 row.

    One fogfed bar per chain measured (``report`` and ``others``), each labelled with its gas
    and its ratio to the paper; the target of each row is a black tick.
    """
    from fogfed import _plot

    plt = _plot.pyplot()
    reports = [report, *others]
    names = [r.paper_row for r in report.rows]
    xs = range(len(names))
    width = 0.8 / (1 + len(reports))
    fig, ax = plt.subplots(figsize=(11, 6))
    try:
        paper = ax.bar([x - 0.4 + width / 2 for x in xs], [r.paper_gas for r in report.rows], width,
                       label="paper (Table 4)", color="#b0b0b0")
        for bar, row in zip(paper, report.rows):
            ax.annotate(f"{row.paper_gas:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=6, xytext=(0, 2), textcoords="offset points")
        for k, rep in enumerate(reports, start=1):
            offset = -0.4 + width / 2 + k * width
            bars = ax.bar([x + offset for x in xs], [r.gas for r in rep.rows], width,
                          label=f"fogfed on {rep.chain['name']}")
            for bar, row in zip(bars, rep.rows):
                ax.annotate(f"{row.gas:,}\n{row.ratio:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=6, xytext=(0, 2), textcoords="offset points")
        ax.scatter([x for x in xs], [r.target for r in report.rows], marker="_", s=900, color="black",
                   label="target", zorder=3)
        ax.set_yscale("log")
        ax.set_ylabel("gas used (log scale); label: gas and ratio to the paper")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([n.replace(" + ", " +\n") for n in names], rotation=30, ha="right", fontsize=8)
        chains = ", ".join(r.chain["name"] for r in reports)
        ax.set_title(f"Gas per operation: paper vs fogfed ({chains})")
        ax.margins(y=0.15)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format="png", dpi=110)
    finally:
        plt.close(fig)


def tx_hex(tx_hash: Any) -> str:
    """A transaction hash (HexBytes, bytes or str) as 0x-hex."""
    text = tx_hash if isinstance(tx_hash, str) else bytes(tx_hash).hex()
    return text if text.startswith("0x") else "0x" + text
