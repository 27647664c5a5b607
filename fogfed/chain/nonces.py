"""Transactions on a busy network: a nonce journal that survives restarts, and fee bumps.

On a devnet a transaction is mined at once; on a real network it waits in a
mempool, may sit there underpriced while the base fee rises, may be dropped
(mempool full, node restart), and the process that sent it may die before it
is mined. The :class:`TxJournal` keeps, per (chain, sender), every
transaction sent but not yet seen mined: its nonce, signed bytes, fields and
hashes, in a small JSON file written atomically (fsync + rename) under an
exclusive file lock that is held from "read nonce" to "journal it", so
several processes sending from one account never pick the same nonce.

A restarted process :meth:`TxJournal.reconcile`\\ s first: a journaled
transaction with a receipt is done; one whose nonce the chain has used for
another transaction was replaced (reported, never re-sent); one the node no
longer knows was dropped and is broadcast again (with bumped fees when the
node refuses the old ones), so its nonce is not silently reused for
something else. :func:`bump_fees` gives the replacement fees (at least +12.5%
on both the cap and the tip, above geth's and Besu's 10% replacement rule,
and never below what the node asks for now).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fogfed.chain.errors import ChainError

JOURNAL_ENV = "FOGFED_TX_JOURNAL"
VERSION = 1
#: numerator / denominator of the minimum fee rise of a replacement (12.5%)
BUMP = (9, 8)


def bump_fees(old: dict[str, int], now: dict[str, int]) -> dict[str, int]:
    """Fees for a replacement of a transaction sent with ``old``, given the node's ``now``."""
    def up(value: int) -> int:
        return -(-value * BUMP[0] // BUMP[1]) + 1
    if "gasPrice" in old:
        return {"gasPrice": max(up(old["gasPrice"]), now.get("gasPrice", 0))}
    tip = max(up(old["maxPriorityFeePerGas"]), now.get("maxPriorityFeePerGas", 0))
    cap = max(up(old["maxFeePerGas"]), now.get("maxFeePerGas", 0), tip)
    return {"maxFeePerGas": cap, "maxPriorityFeePerGas": tip}


def fee_cap(fees: dict[str, int]) -> int:
    """The most a transaction with ``fees`` may pay per gas."""
    return fees.get("maxFeePerGas", fees.get("gasPrice", 0))


@dataclass
class Pending:
    """One journaled transaction: the fields it was signed with and every hash sent for its nonce."""

    nonce: int
    tx: dict[str, Any]
    fees: dict[str, int]
    raw: str
    hashes: list[str] = field(default_factory=list)
    function: str | None = None
    sent_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        tx = {k: (("0x" + v.hex()) if isinstance(v, (bytes, bytearray)) else v) for k, v in self.tx.items()}
        return {"nonce": self.nonce, "tx": tx, "fees": self.fees, "raw": self.raw, "hashes": self.hashes,
                "function": self.function, "sent_at": self.sent_at}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Pending":
        tx = dict(d["tx"])
        if isinstance(tx.get("data"), str):
            tx["data"] = bytes.fromhex(tx["data"][2:])
        return cls(int(d["nonce"]), tx, {k: int(v) for k, v in d["fees"].items()}, d["raw"], list(d["hashes"]),
                   d.get("function"), float(d.get("sent_at", 0)))


@dataclass
class Reconciled:
    """What :meth:`TxJournal.reconcile` found: nonces done, replaced by others, and re-sent."""

    mined: list[int] = field(default_factory=list)
    replaced: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)


class TxJournal:
    """The in-flight transactions of one sender on one chain, in ``<dir>/<chain id>-<address>.json``."""

    def __init__(self, directory: Path | str, chain_id: int, address: str) -> None:
        self.dir = Path(directory)
        self.path = self.dir / f"{chain_id}-{address.lower()}.json"
        self.chain_id, self.address = chain_id, address
        self._lock_file: Any = None

    @contextlib.contextmanager
    def locked(self) -> Iterator["TxJournal"]:
        """Hold the sender's exclusive lock (across processes) for "pick nonce, send, journal"."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def pending(self) -> dict[int, Pending]:
        """Journaled transactions by nonce; ChainError naming the file when it is damaged."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ChainError(f"the transaction journal {self.path} is unreadable ({exc})",
                             "move it aside; transactions it listed may need to be checked by hand") from None
        if not isinstance(data, dict) or data.get("version") != VERSION or \
                data.get("chain_id") != self.chain_id or str(data.get("address", "")).lower() != self.address.lower():
            raise ChainError(f"the transaction journal {self.path} belongs to another chain, sender or version",
                             "move it aside")
        try:
            return {int(k): Pending.from_json(v) for k, v in data["pending"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainError(f"the transaction journal {self.path} is damaged ({exc})", "move it aside") from None

    def _write(self, pending: dict[int, Pending]) -> None:
        data = {"version": VERSION, "chain_id": self.chain_id, "address": self.address,
                "pending": {str(n): p.to_json() for n, p in sorted(pending.items())}}
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def record(self, entry: Pending) -> None:
        """Add (or extend with a new hash) the transaction at ``entry.nonce``."""
        pending = self.pending()
        old = pending.get(entry.nonce)
        if old is not None:
            entry.hashes = old.hashes + [h for h in entry.hashes if h not in old.hashes]
        entry.sent_at = entry.sent_at or time.time()
        pending[entry.nonce] = entry
        self._write(pending)

    def forget(self, nonce: int) -> None:
        pending = self.pending()
        if pending.pop(nonce, None) is not None:
            self._write(pending)

    def next_nonce(self, node_pending: int) -> int:
        """The nonce to use: after the node's pending count and after everything journaled."""
        pending = self.pending()
        return max([node_pending] + [n + 1 for n in pending])

    def reconcile(self, w3: Any, fees_now: dict[str, int], sign: Any) -> Reconciled:
        """Bring the journal in line with the chain (call under :meth:`locked`).

        ``sign(tx_dict) -> raw bytes`` re-signs a dropped transaction whose old fees the node refuses.
        """
        out = Reconciled()
        pending = self.pending()
        if not pending:
            return out
        mined_count = int(w3.eth.get_transaction_count(self.address, "latest"))
        for nonce, entry in sorted(pending.items()):
            if any(_receipt(w3, h) is not None for h in entry.hashes):
                out.mined.append(nonce)
                del pending[nonce]
            elif mined_count > nonce:
                out.replaced.append(nonce)  # the nonce went to a transaction this journal never sent
                del pending[nonce]
            elif not any(_known(w3, h) for h in entry.hashes):
                _resend(w3, entry, fees_now, sign)
                out.resent.append(nonce)
            else:
                out.waiting.append(nonce)
        self._write(pending)
        return out


def _receipt(w3: Any, tx_hash: str) -> Any:
    try:
        return w3.eth.get_transaction_receipt(tx_hash)
    except Exception:  # noqa: BLE001 - TransactionNotFound and node-specific errors alike
        return None


def _known(w3: Any, tx_hash: str) -> bool:
    try:
        return w3.eth.get_transaction(tx_hash) is not None
    except Exception:  # noqa: BLE001
        return False


def _resend(w3: Any, entry: Pending, fees_now: dict[str, int], sign: Any) -> None:
    """Broadcast a dropped transaction again: its own bytes, or re-signed with bumped fees."""
    try:
        entry.hashes.append(w3.to_hex(w3.eth.send_raw_transaction(entry.raw)))
        return
    except Exception as exc:  # noqa: BLE001
        text = str(exc).lower()
        if "underpriced" not in text and "fee" not in text and "already known" not in text:
            raise
        if "already known" in text:
            return
    entry.fees = bump_fees(entry.fees, fees_now)
    raw = sign({**entry.tx, **entry.fees, "nonce": entry.nonce})
    entry.raw = w3.to_hex(raw)
    entry.hashes.append(w3.to_hex(w3.eth.send_raw_transaction(raw)))


__all__ = ["TxJournal", "Pending", "Reconciled", "bump_fees", "fee_cap", "JOURNAL_ENV"]
