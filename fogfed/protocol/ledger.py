"""The chain operations the TAS and the node need, on one FogFed contract, with clear errors.

Interim home until fogfed.chain's typed wrapper lands: every web3 call of the
roles goes through here (so swapping the internals changes nothing else).
Transactions are signed locally by the role's own account, with one nonce
counter per account, and wait for their receipt; reverts are decoded into
the contract's custom error.
"""

from __future__ import annotations

import ast
import threading
from dataclasses import dataclass
from typing import Any

import requests
from eth_abi import decode as abi_decode
from eth_account.signers.local import LocalAccount
from eth_utils import function_abi_to_4byte_selector, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3Exception
from web3.logs import DISCARD

try:
    from eth_tester.exceptions import TransactionFailed
except ImportError:  # eth-tester is only there for the embedded chain
    class TransactionFailed(Exception):  # type: ignore[no-redef]
        pass

from fogfed.chain.artifacts import load_artifact
from fogfed.errors import FogfedError

_NONCE_LOCKS: dict[tuple[int, str], threading.Lock] = {}
_NEXT_NONCE: dict[tuple[int, str], int] = {}
_GUARD = threading.Lock()
_UNREACHABLE = (requests.RequestException, ConnectionError, OSError, TimeoutError)


class ChainError(FogfedError):
    """A chain call failed."""


class ChainUnavailable(ChainError):
    """The RPC endpoint does not answer."""


class TxReverted(ChainError):
    """A transaction or call was refused by the contract; ``error`` is the custom error's name."""

    def __init__(self, message: str, hint: str | None = None, *, error: str = "", args: tuple = ()) -> None:
        super().__init__(message, hint)
        self.error, self.error_args = error, args


@dataclass(frozen=True)
class Tx:
    """A mined transaction: hash, gas used, block, and its decoded FogFed events."""

    tx_hash: str
    gas_used: int
    block_number: int
    events: tuple[tuple[str, dict], ...]

    def event(self, name: str) -> dict | None:
        """Arguments of the first event called ``name``, or None."""
        return next((args for n, args in self.events if n == name), None)


def as_web3(chain: Any) -> Web3:
    """A Web3 from what the caller holds (a Web3, or an object with ``.w3`` / ``.web3``)."""
    if isinstance(chain, Web3):
        return chain
    for attr in ("w3", "web3"):
        w3 = getattr(chain, attr, None)
        w3 = w3() if callable(w3) and not isinstance(w3, Web3) else w3
        if isinstance(w3, Web3):
            return w3
    raise ChainError(f"cannot use {type(chain).__name__} as a chain connection", "pass a connected Web3")


class Ledger:
    """One account's view of one deployed FogFed contract."""

    def __init__(self, chain: Any, address: str, account: LocalAccount | None) -> None:
        self.w3 = as_web3(chain)
        self.abi = load_artifact("FogFed")["abi"]
        self.address = to_checksum_address(address)
        self.contract = self.w3.eth.contract(address=self.address, abi=self.abi)
        self.account = account
        self._errors = {function_abi_to_4byte_selector(e): e for e in self.abi if e["type"] == "error"}
        self._chain_id: int | None = None

    @classmethod
    def deploy(cls, chain: Any, account: LocalAccount) -> tuple["Ledger", Tx]:
        """Paper Algorithm 5: deploy FogFed from ``account``."""
        w3 = as_web3(chain)
        art = load_artifact("FogFed")
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        probe = cls.__new__(cls)
        probe.w3, probe.abi, probe.account, probe._chain_id = w3, art["abi"], account, None
        probe._errors = {function_abi_to_4byte_selector(e): e for e in art["abi"] if e["type"] == "error"}
        receipt = probe._transact("deploy FogFed", factory.constructor())
        ledger = cls(w3, receipt["contractAddress"], account)
        return ledger, Tx(receipt["transactionHash"].to_0x_hex(), receipt["gasUsed"], receipt["blockNumber"], ())

    @property
    def chain_id(self) -> int:
        """The chain id (cached)."""
        if self._chain_id is None:
            self._chain_id = self._guard("reading the chain id", lambda: self.w3.eth.chain_id)
        return self._chain_id

    def _guard(self, what: str, fn):
        try:
            return fn()
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._decode(what, exc) from None
        except TransactionFailed as exc:  # the embedded chain (eth-tester) reports reverts this way
            raise self._decode(what, exc) from None
        except _UNREACHABLE as exc:
            raise ChainUnavailable(f"the chain is unreachable while {what} ({type(exc).__name__})",
                                   "check the --rpc URL and that the node is running") from None
        except (Web3Exception, ValueError) as exc:
            raise ChainError(f"the chain refused {what}: {str(exc)[:200]}") from None

    def _decode(self, what: str, exc: Exception) -> TxReverted:
        data = getattr(exc, "data", None)
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) and data.startswith("0x") else b""
        if not raw and exc.args:
            raw = _tester_revert_data(exc.args[0])
        entry = self._errors.get(raw[:4])
        if entry is None:
            return TxReverted(f"the contract refused {what}: {str(exc)[:200]}")
        types = [i["type"] for i in entry["inputs"]]
        try:
            values = abi_decode(types, raw[4:])
        except Exception:  # undecodable arguments: still name the error
            values = ()
        shown = ", ".join(f"{i['name']}={_show(v)}" for i, v in zip(entry["inputs"], values))
        return TxReverted(f"the contract refused {what}: {entry['name']}({shown})",
                          error=entry["name"], args=tuple(values))

    def call(self, fn: str, *args: Any) -> Any:
        """A view call."""
        return self._guard(f"reading {fn}", lambda: getattr(self.contract.functions, fn)(*args).call())

    def send(self, fn: str, *args: Any, value: int = 0) -> Tx:
        """Sign and send ``fn(*args)`` from this ledger's account; waits for the receipt."""
        receipt = self._transact(fn, getattr(self.contract.functions, fn)(*args), value=value)
        return Tx(receipt["transactionHash"].to_0x_hex(), receipt["gasUsed"], receipt["blockNumber"],
                  self._events(receipt))

    def transfer(self, to: str, value: int) -> Tx:
        """Send ``value`` wei to ``to`` (funding a node's account on a devnet)."""
        receipt = self._transact(f"a transfer to {to}", None, value=value, to=to_checksum_address(to))
        return Tx(receipt["transactionHash"].to_0x_hex(), receipt["gasUsed"], receipt["blockNumber"], ())

    def _transact(self, what: str, bound: Any, *, value: int = 0, to: str | None = None) -> Any:
        if self.account is None:
            raise ChainError(f"cannot send {what}: no account", "open the node or TAS with its keystore")
        sender = self.account.address
        key = (id(self.w3), sender)
        with _GUARD:
            lock = _NONCE_LOCKS.setdefault(key, threading.Lock())
        with lock:
            def build() -> dict:
                pending = self.w3.eth.get_transaction_count(sender, "pending")
                nonce = max(pending, _NEXT_NONCE.get(key, 0))
                base = {"from": sender, "nonce": nonce, "value": value, "chainId": self.chain_id}
                if bound is None:
                    tx = {**base, "to": to, "gas": 21_000}
                else:
                    tx = bound.build_transaction(base)
                gas_price = self.w3.eth.gas_price
                tx.pop("maxFeePerGas", None), tx.pop("maxPriorityFeePerGas", None)
                tx["gasPrice"] = max(gas_price, 1)
                return tx
            tx = self._guard(what, build)
            signed = self.account.sign_transaction(tx)
            tx_hash = self._guard(f"sending {what}", lambda: self.w3.eth.send_raw_transaction(signed.raw_transaction))
            _NEXT_NONCE[key] = tx["nonce"] + 1
        try:
            receipt = self._guard(f"waiting for {what}",
                                  lambda: self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60))
        except TimeExhausted:
            raise ChainError(f"{what} was not mined within 60 s", "check the node; the transaction may still land") \
                from None
        if receipt["status"] != 1:
            raise TxReverted(f"{what} reverted on chain (tx {tx_hash.to_0x_hex()})")
        return receipt

    def _events(self, receipt: Any) -> tuple[tuple[str, dict], ...]:
        out = []
        for entry in self.abi:
            if entry["type"] != "event":
                continue
            ev = getattr(self.contract.events, entry["name"])()
            for log in ev.process_receipt(receipt, errors=DISCARD):
                out.append((log["event"], dict(log["args"]), log["logIndex"]))
        return tuple((n, a) for n, a, _ in sorted(out, key=lambda t: t[2]))

    def logs(self, event: str, from_block: int, to_block: int | str, **filters: Any) -> list[dict]:
        """Decoded ``event`` logs in a block range, filtered on indexed arguments."""
        ev = getattr(self.contract.events, event)()
        return self._guard(f"reading {event} events", lambda: [
            dict(log["args"]) | {"blockNumber": log["blockNumber"]}
            for log in ev.get_logs(from_block=from_block, to_block=to_block, argument_filters=filters or None)])


def _show(v: Any) -> str:
    return "0x" + v.hex() if isinstance(v, bytes) else str(v)


def _tester_revert_data(message: object) -> bytes:
    """eth-tester's revert message is "execution reverted: b'...'" (a bytes repr)."""
    if isinstance(message, bytes):
        return message
    prefix = "execution reverted: "
    if isinstance(message, str) and message.startswith(prefix + "b"):
        try:
            value = ast.literal_eval(message[len(prefix):])
        except (ValueError, SyntaxError):
            return b""
        return value if isinstance(value, bytes) else b""
    return b""
