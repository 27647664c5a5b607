"""Connecting to a chain and sending signed transactions.

``connect()`` gives the embedded chain (web3's EthereumTesterProvider on
py-evm: no server), ``connect("embedded:<dir>")`` a persistent embedded chain
shared by processes (:mod:`fogfed.chain.embedded`), and ``connect(url)`` any
JSON-RPC node (Anvil, Ganache, ...). Transactions are always signed locally
with a ``LocalAccount``; a per-(chain, address) nonce counter under a lock lets
several threads send at once, from the same or different accounts.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from web3 import EthereumTesterProvider, HTTPProvider, Web3

from fogfed.chain.errors import (
    ChainError,
    ChainUnreachable,
    InsufficientFunds,
    InvalidArgument,
    TransactionFailed,
    WrongChain,
)
from fogfed.chain.reverts import decode_revert, is_revert, revert_data
from fogfed.errors import FogfedError, InputError

PRIVATE_KEY_ENV = "FOGFED_PRIVATE_KEY"
DEV_ACCOUNTS = 10
_PRIORITY_FEE = 10**9  # 1 gwei: enough on devnets; real networks set their own via max_priority_fee
_RECEIPT_TIMEOUT = 120.0
_NONCE_RETRIES = 4


@lru_cache(maxsize=1)
def _mnemonic_keys() -> tuple[str, ...]:
    # Deriving costs ~40 ms per key, so it is done once per process.
    from fogfed.chain.devnet import DEFAULT_MNEMONIC

    Account.enable_unaudited_hdwallet_features()
    return tuple(Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex()
                 for i in range(DEV_ACCOUNTS))


def account_from_key(key: str) -> LocalAccount:
    """A LocalAccount from a 0x-hex private key, with a clear error for a malformed one."""
    try:
        return Account.from_key(key.strip())
    except (ValueError, TypeError) as exc:
        raise InputError("the private key is not 32 bytes of hex",
                         f"check {PRIVATE_KEY_ENV} or the key you passed") from exc


class _NonceSlot:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next: int | None = None


_slots: dict[tuple[Any, str], _NonceSlot] = {}
_slots_lock = threading.Lock()


def _message(exc: BaseException) -> str:
    parts = []
    current: BaseException | None = exc
    while current is not None and len(parts) < 5:
        parts.append(str(current))
        current = current.__cause__ or current.__context__
    return " | ".join(parts).lower()


def _is_nonce_error(text: str) -> bool:
    return any(s in text for s in ("nonce", "already known", "underpriced", "known transaction"))


_UNREACHABLE = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)


def _is_funds_error(text: str) -> bool:
    return any(s in text for s in ("insufficient funds", "enough balance", "not enough funds", "insufficient balance",
                                   "cannot afford"))


class Chain:
    """A connection to one chain: web3, chain id, dev accounts, and transaction sending."""

    def __init__(self, w3: Any, *, label: str, is_embedded: bool, identity: Any,
                 dev_keys: tuple[str, ...] | None, embedded: Any = None) -> None:
        self.w3 = w3
        self.label = label
        self.is_embedded = is_embedded
        self._identity = identity
        self._dev_keys = dev_keys
        self._embedded = embedded  # fogfed.chain.embedded.EmbeddedChain for embedded:<dir>
        self.chain_id: int = int(w3.eth.chain_id)

    def __repr__(self) -> str:
        return f"Chain({self.label}, chain_id={self.chain_id})"

    # -- accounts -------------------------------------------------------------

    def dev_accounts(self) -> list[LocalAccount]:
        """Funded accounts with private keys: ``$FOGFED_PRIVATE_KEY`` first if set, then the
        chain's dev accounts (eth-tester's on the embedded chain, the default mnemonic's on
        Anvil/Ganache). On another chain without the variable this raises ChainError."""
        accounts = []
        env_key = os.environ.get(PRIVATE_KEY_ENV)
        if env_key:
            accounts.append(account_from_key(env_key))
        keys = self._dev_keys
        if keys is None:
            keys = _mnemonic_keys()
            if not env_key and self.w3.eth.get_balance(Account.from_key(keys[0]).address) == 0:
                raise ChainError(f"{self.label} has no funded dev accounts",
                                 f"set {PRIVATE_KEY_ENV} to the private key of a funded account")
        accounts.extend(Account.from_key(k) for k in keys)
        return accounts

    def balance(self, address: str) -> int:
        """Balance of ``address`` in wei."""
        return int(self.w3.eth.get_balance(checksum(address, "address")))

    def fund(self, to_address: str, wei: int, sender: LocalAccount | None = None) -> Any:
        """Send ``wei`` to ``to_address`` from ``sender`` (default: the first dev account); returns the receipt."""
        to = checksum(to_address, "recipient")
        if not isinstance(wei, int) or isinstance(wei, bool) or wei < 0:
            raise InvalidArgument(f"amount must be a non-negative integer of wei, got {wei!r}")
        return self.send(sender or self.dev_accounts()[0], to=to, value=wei, function="fund")

    # -- reading --------------------------------------------------------------

    def block_number(self) -> int:
        """Number of the latest block."""
        return int(self._read("eth_blockNumber", lambda: self.w3.eth.block_number))

    def timestamp(self) -> int:
        """Timestamp of the latest block (unix seconds): the contract's notion of now."""
        return int(self._read("eth_getBlockByNumber", lambda: self.w3.eth.get_block("latest")["timestamp"]))

    def now(self) -> int:
        """About when the next transaction is mined: the latest block's time, or this machine's clock
        when later (an idle devnet mines no blocks, so its latest block ages while time runs on)."""
        return max(self.timestamp(), int(time.time()))

    def _read(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - every web3/provider failure is translated here
            raise self.unreachable(exc) or ChainError(f"{what} failed on {self.label}: {exc}") from None

    def unreachable(self, exc: BaseException) -> ChainUnreachable | None:
        """ChainUnreachable when ``exc`` means the node stopped answering, else None."""
        text = _message(exc)
        if isinstance(exc, _UNREACHABLE) or any(s in text for s in ("connection", "timed out", "timeout",
                                                                      "refused")):
            return ChainUnreachable(f"{self.label} is unreachable ({type(exc).__name__})",
                                    "is the node still running? check the --rpc URL")
        return None

    # -- sending --------------------------------------------------------------

    @contextmanager
    def _nonce(self, address: str) -> Iterator[_NonceSlot]:
        if self._embedded is not None:
            # Other processes may send from the same account: hold the chain across
            # "read nonce, send" and always read the nonce fresh.
            with self._embedded.locked():
                yield _NonceSlot()
            return
        key = (self._identity, address)
        with _slots_lock:
            slot = _slots.setdefault(key, _NonceSlot())
        with slot.lock:
            yield slot

    def _fees(self) -> dict[str, int]:
        block = self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(self.w3.eth.gas_price)}
        return {"maxFeePerGas": 2 * int(base) + _PRIORITY_FEE, "maxPriorityFeePerGas": _PRIORITY_FEE}

    def _estimate(self, tx: dict[str, Any], function: str | None) -> int:
        try:
            gas = int(self.w3.eth.estimate_gas(tx))
        except Exception as exc:  # noqa: BLE001 - every web3/provider failure is translated here
            raise self._translate(exc, function, tx.get("from")) from None
        # Headroom for state that changes between estimate and inclusion (other senders).
        limit = int(self.w3.eth.get_block("latest")["gasLimit"])
        return min(gas + gas // 5 + 10_000, limit)

    def _translate(self, exc: BaseException, function: str | None, sender: str | None = None) -> FogfedError:
        if isinstance(exc, FogfedError):
            return exc
        data = revert_data(exc)
        if data is not None or is_revert(exc):
            return decode_revert(data or b"", function, sender)
        text = _message(exc)
        if _is_funds_error(text):
            who = f"account {sender}" if sender else "the sender"
            return InsufficientFunds(f"{function or 'transaction'}: {who} cannot pay for it (out of ether for gas)",
                                     f"a node: ask the TAS operator to run `fogfed tas fund {sender or 'ADDRESS'}`; "
                                     "a TAS: send its account ether from a funded one")
        return self.unreachable(exc) or TransactionFailed(f"{function or 'transaction'} failed: {exc}")

    def send(self, account: LocalAccount, *, to: str | None, data: bytes = b"", value: int = 0,
             gas: int | None = None, function: str | None = None) -> Any:
        """Sign locally, send, wait for the receipt. Reverts raise ContractRevert; returns the receipt."""
        if not isinstance(account, LocalAccount):
            raise InvalidArgument(f"the sender must be an eth_account LocalAccount, got {type(account).__name__}",
                                  "use chain.dev_accounts() or Account.from_key(...)")
        try:
            return self._send(account, to, data, value, gas, function)
        except Exception as exc:  # noqa: BLE001 - the node may vanish at any step
            raise self._translate(exc, function, account.address) from None

    def _send(self, account: LocalAccount, to: str | None, data: bytes, value: int, gas: int | None,
              function: str | None) -> Any:
        tx: dict[str, Any] = {"from": account.address, "data": data, "value": value, "chainId": self.chain_id}
        if to is not None:
            tx["to"] = to
        tx["gas"] = gas if gas is not None else self._estimate(tx, function)
        tx.update(self._fees())
        tx_hash = self._sign_and_send(account, tx, function)
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=_RECEIPT_TIMEOUT, poll_latency=0.05)
        except Exception as exc:  # noqa: BLE001
            raise self.unreachable(exc) or TransactionFailed(
                f"{function or 'transaction'} {tx_hash.hex()} was not mined: {exc}",
                "check that the node is mining") from None
        if receipt["status"] != 1:
            raise self._replay_failure(tx, receipt, function)
        return receipt

    def _sign_and_send(self, account: LocalAccount, tx: dict[str, Any], function: str | None) -> Any:
        for _ in range(_NONCE_RETRIES):
            with self._nonce(account.address) as slot:
                if slot.next is None:
                    slot.next = int(self.w3.eth.get_transaction_count(account.address, "pending"))
                signed = account.sign_transaction({**tx, "nonce": slot.next})
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Exception as exc:  # noqa: BLE001
                    slot.next = None  # resync from the node next time
                    text = _message(exc)
                    if _is_nonce_error(text) and not _is_funds_error(text):
                        continue
                    raise self._translate(exc, function, account.address) from None
                slot.next += 1
                return tx_hash
        raise TransactionFailed(f"{function or 'transaction'}: nonce conflicts persisted after {_NONCE_RETRIES} tries",
                                "another program may be sending from the same account")

    def _replay_failure(self, tx: dict[str, Any], receipt: Any, function: str | None) -> FogfedError:
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        try:
            self.w3.eth.call(call, block_identifier=max(int(receipt["blockNumber"]) - 1, 0))
        except Exception as exc:  # noqa: BLE001
            return self._translate(exc, function, tx["from"])
        return TransactionFailed(f"{function or 'transaction'} {receipt['transactionHash'].hex()} failed "
                                 f"(status 0, {receipt['gasUsed']} gas used) but does not revert when replayed",
                                 "it probably ran out of gas or lost a race with another transaction; retry")

    def call(self, tx: dict[str, Any], function: str | None = None) -> bytes:
        """``eth_call`` with reverts decoded into ContractRevert; returns the raw result."""
        try:
            return bytes(self.w3.eth.call(tx))
        except Exception as exc:  # noqa: BLE001
            raise self._translate(exc, function, tx.get("from")) from None


def checksum(value: Any, what: str) -> str:
    """``value`` as a checksummed address, or InvalidArgument naming ``what``."""
    if isinstance(value, (bytes, bytearray)) and len(value) == 20:
        return to_checksum_address(value)
    if isinstance(value, str) and is_hex_address(value):
        body = value[2:]
        if body != body.lower() and body != body.upper() and not is_checksum_address(value):
            raise InvalidArgument(f"{what} {value} has a wrong checksum (mixed case)",
                                  "copy the address again or pass it all lower case")
        return to_checksum_address(value)
    raise InvalidArgument(f"{what} must be an Ethereum address (0x + 40 hex digits), got {value!r:.80}")


class _LockedTesterProvider(EthereumTesterProvider):
    """An EthereumTesterProvider whose requests are serialised: eth-tester is not thread-safe."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.RLock()

    def make_request(self, method: Any, params: Any) -> Any:
        with self._lock:
            return super().make_request(method, params)


def connect(rpc: str | None = None, *, chain_id: int | None = None, timeout: float = 10.0) -> Chain:
    """Connect to a chain.

    ``rpc`` None: a fresh in-process chain (eth-tester/py-evm) that lives as long as the
    returned object. ``"embedded:<dir>"``: the persistent embedded chain in ``<dir>``.
    ``http(s)://host:port``: a JSON-RPC node. ``chain_id``, when given, must match the
    node's (WrongChain otherwise). Unreachable nodes raise ChainUnreachable.
    """
    if rpc is None:
        provider = _LockedTesterProvider()
        w3 = Web3(provider)
        keys = tuple(k.to_hex() for k in provider.ethereum_tester.backend.account_keys)
        chain = Chain(w3, label="the embedded chain", is_embedded=True, identity=id(provider), dev_keys=keys)
    elif not isinstance(rpc, str):
        raise InputError(f"the RPC endpoint must be a URL string, got {type(rpc).__name__}")
    elif rpc.startswith("embedded:"):
        from fogfed.chain.embedded import open_chain, parse_embedded

        embedded = open_chain(parse_embedded(rpc))
        chain = Chain(embedded.web3(), label=f"the embedded chain in {embedded.state_dir}", is_embedded=True,
                      identity=("embedded", str(embedded.state_dir)), dev_keys=tuple(embedded.private_keys),
                      embedded=embedded)
    else:
        parsed = urlparse(rpc)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InputError(f"{rpc!r} is not an http(s) RPC URL",
                             "write it like http://127.0.0.1:8545 (or embedded:<dir> for a local chain)")
        try:
            port = parsed.port
        except ValueError:
            raise InputError(f"{rpc!r} has an invalid port", "ports are 1-65535") from None
        del port
        w3 = Web3(HTTPProvider(rpc, request_kwargs={"timeout": timeout}))
        try:
            chain = Chain(w3, label=rpc, is_embedded=False, identity=("rpc", rpc), dev_keys=None)
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, non-JSON answer...
            raise ChainUnreachable(f"cannot reach an Ethereum node at {rpc} ({type(exc).__name__})",
                                   "start one (e.g. anvil) or check the --rpc URL") from None
    if chain_id is not None and chain.chain_id != chain_id:
        raise WrongChain(f"{chain.label} is chain {chain.chain_id}, not the stated chain {chain_id}",
                         "connect to the right node or drop the chain id")
    return chain


__all__ = ["Chain", "checksum", "connect", "account_from_key", "PRIVATE_KEY_ENV"]
