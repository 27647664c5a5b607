"""Connecting to a chain and sending signed transactions.

``connect()`` gives the embedded chain (web3's EthereumTesterProvider on
py-evm: no server), ``connect("embedded:<dir>")`` a persistent embedded chain
shared by processes (:mod:`fogfed.chain.embedded`), and ``connect(url)`` any
JSON-RPC node (Anvil, Ganache, ...). Transactions are always signed locally
with a ``LocalAccount``; a per-(chain, address) nonce counter under a lock lets
several threads send at once, from the same or different accounts.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.exceptions import TransactionNotFound

from fogfed.chain.errors import (
    ChainError,
    ChainUnreachable,
    InsufficientFunds,
    InvalidArgument,
    TransactionFailed,
    TransactionReplaced,
    TransactionUnderpriced,
    WrongChain,
)
from fogfed.chain.finality import Confirmations, default_confirmations, final_block, parse_confirmations
from fogfed.chain.nonces import JOURNAL_ENV, Pending, Reconciled, TxJournal, bump_fees, fee_cap
from fogfed.chain.reverts import decode_revert, is_revert, revert_data
from fogfed._faults import step
from fogfed.errors import FogfedError, InputError

PRIVATE_KEY_ENV = "FOGFED_PRIVATE_KEY"
DEV_ACCOUNTS = 10
_PRIORITY_FEE = 10**9  # 1 gwei: enough on devnets; real networks set their own via max_priority_fee
_RECEIPT_TIMEOUT = 120.0
#: How long a used nonce without our receipt is watched before it counts as replaced.
_REPLACED_GRACE = 3.0
_NONCE_RETRIES = 4
MAX_FEE_ENV = "FOGFED_MAX_FEE_PER_GAS"
STUCK_ENV = "FOGFED_STUCK_AFTER"
#: values of a tx_journal setting that mean "no journal" (FOGFED_TX_JOURNAL=off, --tx-journal off)
JOURNAL_OFF = ("off", "none", "no", "0")
_STUCK_AFTER = 60.0  # seconds in the mempool before a transaction is re-sent with bumped fees


@lru_cache(maxsize=1)
def _mnemonic_keys() -> tuple[str, ...]:
    # Deriving costs ~40 ms per key, so it is done once per process.
    from fogfed.chain.devnet import DEFAULT_MNEMONIC

    Account.enable_unaudited_hdwallet_features()
    return tuple(Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key.hex()
                 for i in range(DEV_ACCOUNTS))


def is_published_dev_key(account: LocalAccount) -> bool:
    """Whether ``account`` is one of the default mnemonic's accounts (its key is public knowledge)."""
    return account.key.hex().removeprefix("0x") in {k.removeprefix("0x") for k in _mnemonic_keys()}


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


def _is_base_fee_error(text: str) -> bool:
    return any(s in text for s in ("less than block base fee", "fee cap less than", "max fee per gas less than",
                                   "feecap", "fee too low"))


def _is_nonce_error(text: str) -> bool:
    return any(s in text for s in ("nonce", "already known", "underpriced", "known transaction"))


UNREACHABLE_ERRORS = (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)


def chain_unreachable(where: str, exc: BaseException) -> ChainUnreachable:
    """The one wording for a chain node that does not answer, at start-up or mid-operation."""
    return ChainUnreachable(f"cannot reach the Ethereum node at {where} ({type(exc).__name__})",
                            "is it running? start one (e.g. anvil) or check the --rpc URL")


def _is_funds_error(text: str) -> bool:
    return any(s in text for s in ("insufficient funds", "enough balance", "not enough funds", "insufficient balance",
                                   "cannot afford"))


def _env_number(env: str, kind: Any, given: Any, default: Any) -> Any:
    raw = given if given is not None else os.environ.get(env)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise InputError(f"{env} must be a number, got {raw!r}") from None
    if value <= 0:
        raise InputError(f"{env} must be positive, got {raw!r}")
    return value


class Chain:
    """A connection to one chain: web3, chain id, dev accounts, and transaction sending."""

    def __init__(self, w3: Any, *, label: str, is_embedded: bool, identity: Any,
                 dev_keys: tuple[str, ...] | None, embedded: Any = None,
                 confirmations: Confirmations | None = None, tx_journal: Path | str | None = None,
                 stuck_after: float | None = None, max_fee_per_gas: int | None = None) -> None:
        self.w3 = w3
        self.label = label
        #: blocks on top of a block before it is acted on (0, a depth, 'safe' or 'finalized')
        self.confirmations: Confirmations = (default_confirmations() if confirmations is None
                                             else parse_confirmations(confirmations))
        self.is_embedded = is_embedded
        self._identity = identity
        self._dev_keys = dev_keys
        self._embedded = embedded  # fogfed.chain.embedded.EmbeddedChain for embedded:<dir>
        self.chain_id: int = int(w3.eth.chain_id)
        #: directory of the per-sender transaction journals (None: no journal); see fogfed.chain.nonces
        journal = str(tx_journal) if tx_journal is not None else os.environ.get(JOURNAL_ENV) or None
        if journal is not None and journal.strip().lower() in JOURNAL_OFF:
            journal = None
        self.tx_journal_dir: Path | None = Path(journal).expanduser() if journal and not is_embedded else None
        #: seconds a transaction may wait in the mempool before it is replaced with bumped fees (None: never)
        self.stuck_after: float | None = _env_number(STUCK_ENV, float, stuck_after, _STUCK_AFTER)
        #: the most fogfed pays per gas, in wei (None: no cap)
        self.max_fee_per_gas: int | None = _env_number(MAX_FEE_ENV, int, max_fee_per_gas, None)
        #: (first hash, hash that was mined) of every transaction this object replaced with bumped fees
        self.replacements: list[tuple[str, str]] = []
        self._reconciled: set[str] = set()

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
            if not env_key and self.balance(Account.from_key(keys[0]).address) == 0:
                raise ChainError(f"{self.label} has no funded dev accounts",
                                 f"set {PRIVATE_KEY_ENV} to the private key of a funded account")
        accounts.extend(Account.from_key(k) for k in keys)
        return accounts

    def balance(self, address: str) -> int:
        """Balance of ``address`` in wei."""
        who = checksum(address, "address")
        return int(self._read("eth_getBalance", lambda: self.w3.eth.get_balance(who)))

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

    def final_block(self) -> int:
        """The newest block at the configured confirmation depth (the head with 0 confirmations)."""
        if self.confirmations == 0:
            return self.block_number()
        return int(self._read("the final block", lambda: final_block(self.w3, self.confirmations)))

    def block_hash(self, number: int) -> bytes | None:
        """The hash of block ``number`` on this chain now (None past the head): what a cache of
        chain data records to notice a reorganisation or another chain."""
        block = self._read("eth_getBlockByNumber", lambda: self.w3.eth.get_block(number)
                           if number <= self.w3.eth.block_number else None)
        return None if block is None else bytes(block["hash"])

    def read_block(self) -> int | str:
        """The block views read at: ``latest`` with 0 confirmations, else the final block."""
        return "latest" if self.confirmations == 0 else max(self.final_block(), 0)

    def nonce_used(self, address: str, nonce: int, block: int | str | None = None) -> bool:
        """Whether the chain has mined a transaction of ``address`` at ``nonce`` as of ``block`` (default
        the read block, :meth:`read_block`): from then on no other transaction signed with that nonce
        can ever be mined (a reorganisation deeper than the confirmation setting aside)."""
        who = checksum(address, "address")
        block = self.read_block() if block is None else block
        return int(self._read("eth_getTransactionCount",
                              lambda: self.w3.eth.get_transaction_count(who, block))) > nonce

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
        if isinstance(exc, UNREACHABLE_ERRORS) or any(s in text for s in ("connection", "timed out", "timeout",
                                                                      "refused")):
            return chain_unreachable(self.label, exc)
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
        """EIP-1559 fees from the node: its suggested tip (eth_maxPriorityFeePerGas, 1 gwei when it has
        none) and a fee cap of twice the latest base fee plus the tip, which stays valid through six
        full blocks of base-fee rises; legacy gasPrice on chains without a base fee."""
        block = self.w3.eth.get_block("latest")
        base = block.get("baseFeePerGas")
        if base is None:
            return {"gasPrice": int(self.w3.eth.gas_price)}
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except Exception:  # noqa: BLE001 - nodes without the method
            tip = _PRIORITY_FEE
        tip = tip or _PRIORITY_FEE
        return {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}

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
             gas: int | None = None, function: str | None = None,
             on_nonce: Callable[[int], object] | None = None) -> Any:
        """Sign locally, send, wait for the receipt. Reverts raise ContractRevert; returns the receipt.

        ``on_nonce(nonce)`` is called with the nonce the transaction is signed with, before it is
        journaled or broadcast (so before anything can mine it), again for each other nonce tried;
        the fee bumps of a stuck transaction keep its nonce. A caller that notes it can later tell,
        from :meth:`nonce_used`, when the transaction can no longer be mined.
        """
        if not isinstance(account, LocalAccount):
            raise InvalidArgument(f"the sender must be an eth_account LocalAccount, got {type(account).__name__}",
                                  "use chain.dev_accounts() or Account.from_key(...)")
        try:
            return self._send(account, to, data, value, gas, function, on_nonce)
        except Exception as exc:  # noqa: BLE001 - the node may vanish at any step
            raise self._translate(exc, function, account.address) from None

    def _send(self, account: LocalAccount, to: str | None, data: bytes, value: int, gas: int | None,
              function: str | None, on_nonce: Callable[[int], object] | None = None) -> Any:
        tx: dict[str, Any] = {"from": account.address, "data": data, "value": value, "chainId": self.chain_id}
        if to is not None:
            tx["to"] = to
        tx["gas"] = gas if gas is not None else self._estimate(tx, function)
        fees = self._fees()
        self._check_cap(fees, function)
        if self.is_embedded:
            tx_hash, _ = self._sign_and_send(account, {**tx, **fees}, function, on_nonce=on_nonce)
            step(f"sent:{function}")
            try:
                receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=_RECEIPT_TIMEOUT,
                                                                   poll_latency=0.05)
            except Exception as exc:  # noqa: BLE001
                raise self.unreachable(exc) or TransactionFailed(
                    f"{function or 'transaction'} {tx_hash.hex()} was not mined: {exc}",
                    "check that the node is mining") from None
        else:
            tx_hash, nonce = self._sign_and_send(account, tx, function, fees, on_nonce)
            step(f"sent:{function}")  # fault tests: killed with the transaction sent, its receipt not yet read
            receipt = self._wait_mined(account, tx, nonce, fees, tx_hash, function)
            tx_hash = receipt["transactionHash"]
        if receipt["status"] != 1:
            raise self._replay_failure({**tx, **fees}, receipt, function)
        if self.confirmations != 0:
            receipt = self._await_final(tx_hash, receipt, function)
        return receipt

    def _check_cap(self, fees: dict[str, int], function: str | None) -> None:
        if self.max_fee_per_gas is not None and fee_cap(fees) > self.max_fee_per_gas:
            raise TransactionUnderpriced(
                f"{function or 'transaction'} needs a fee of {fee_cap(fees)} wei per gas, above the cap of "
                f"{self.max_fee_per_gas} wei ({MAX_FEE_ENV})",
                "wait for lower fees or raise the cap")

    def _journal(self, address: str) -> TxJournal | None:
        return TxJournal(self.tx_journal_dir, self.chain_id, address) if self.tx_journal_dir else None

    def recover(self, account: LocalAccount) -> Reconciled:
        """Reconcile ``account``'s transaction journal with the chain (done by the first send of a process):
        re-broadcast what the node dropped, forget what was mined or replaced. Empty without a journal."""
        journal = self._journal(account.address)
        if journal is None:
            return Reconciled()
        with journal.locked():
            return self._reconcile(account, journal)

    def settle(self, account: LocalAccount, timeout: float = _RECEIPT_TIMEOUT) -> Reconciled:
        """:meth:`recover`, then wait until no transaction of ``account``'s journal is left in the mempool.

        An operation resumed after a kill calls this before reading the chain to decide what is left:
        a transaction the killed run sent may still be waiting to be mined, and sending it again would
        duplicate it. Returns at once without a journal (embedded chain: nothing is ever in flight);
        TransactionFailed when one is still not mined after ``timeout`` seconds.
        """
        journal = self._journal(account.address)
        if journal is None:
            return Reconciled()
        deadline, poll = time.monotonic() + timeout, 0.05
        try:
            with journal.locked():
                result = self._reconcile(account, journal)
            while result.waiting or result.resent:
                with journal.locked():
                    left = journal.reconcile(self.w3, self._fees(),
                                             lambda t: account.sign_transaction(t).raw_transaction)
                if not left.waiting and not left.resent:
                    break
                if time.monotonic() > deadline:
                    names = ", ".join(f"{p.function or 'transaction'} (nonce {n})"
                                      for n, p in sorted(journal.pending().items()))
                    raise TransactionFailed(f"{names} sent earlier by {account.address} still not mined after "
                                            f"{timeout:.0f} s", "check that the node is mining, then run the "
                                            "command again: it waits for them before deciding what is left to do")
                time.sleep(poll)
                poll = min(poll * 1.5, 0.5)
        except FogfedError:
            raise
        except Exception as exc:  # noqa: BLE001 - the node may vanish at any step
            raise self._translate(exc, "waiting for earlier transactions", account.address) from None
        return result

    def _reconcile(self, account: LocalAccount, journal: TxJournal) -> Reconciled:
        result = journal.reconcile(self.w3, self._fees(), lambda t: account.sign_transaction(t).raw_transaction)
        self._reconciled.add(account.address)
        return result

    def _sign_and_send(self, account: LocalAccount, tx: dict[str, Any], function: str | None,
                       fees: dict[str, int] | None = None,
                       on_nonce: Callable[[int], object] | None = None) -> tuple[Any, int]:
        fees = fees or {}
        journal = self._journal(account.address)
        last_error: BaseException | None = None
        for _ in range(_NONCE_RETRIES):
            with self._nonce(account.address) as slot, \
                    (journal.locked() if journal else contextlib.nullcontext()):
                if journal is not None:
                    if account.address not in self._reconciled:
                        self._reconcile(account, journal)
                    nonce = journal.next_nonce(int(self.w3.eth.get_transaction_count(account.address, "pending")))
                else:
                    if slot.next is None:
                        slot.next = int(self.w3.eth.get_transaction_count(account.address, "pending"))
                    nonce = slot.next
                if on_nonce is not None:  # before the journal: a restarted process may broadcast what it holds
                    on_nonce(nonce)
                signed = account.sign_transaction({**tx, **fees, "nonce": nonce})
                if journal is not None:  # journaled before it leaves: a crash right after is recovered
                    journal.record(Pending(nonce, tx, fees, self.w3.to_hex(signed.raw_transaction),
                                           [self.w3.to_hex(signed.hash)], function))
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Exception as exc:  # noqa: BLE001
                    slot.next = None  # resync from the node next time
                    if journal is not None:
                        journal.forget(nonce)
                    text = _message(exc)
                    if _is_base_fee_error(text) and fees:
                        last_error = exc  # the base fee rose since the fees were read: read them again
                        fees = bump_fees(fees, self._fees())
                        self._check_cap(fees, function)
                        continue
                    if _is_nonce_error(text) and not _is_funds_error(text):
                        continue
                    raise self._translate(exc, function, account.address) from None
                slot.next = nonce + 1
                return tx_hash, nonce
        if last_error is not None:
            raise TransactionUnderpriced(
                f"{function or 'transaction'}: the node refused its fee as below the base fee ({last_error})",
                "the base fee keeps rising; retry later or check the node's fee answers") from None
        raise TransactionFailed(f"{function or 'transaction'}: nonce conflicts persisted after {_NONCE_RETRIES} tries",
                                "another program may be sending from the same account")

    def _wait_mined(self, account: LocalAccount, tx: dict[str, Any], nonce: int, fees: dict[str, int],
                    tx_hash: Any, function: str | None) -> Any:
        """The receipt of the transaction at ``nonce``: one of the hashes sent for it. Left in the
        mempool longer than ``stuck_after`` seconds, it is replaced by the same transaction with fees
        bumped (bump_fees); its nonce taken by another program's transaction raises TransactionReplaced."""
        name = function or "transaction"
        hashes = [self.w3.to_hex(tx_hash)]
        journal = self._journal(account.address)
        start = time.monotonic()
        deadline, poll = start + _RECEIPT_TIMEOUT, 0.05
        next_bump = start + self.stuck_after if self.stuck_after else float("inf")
        taken_since = None  # when the nonce was first seen used with none of our hashes mined
        try:
            while time.monotonic() < deadline:
                receipt = self._first_receipt(hashes)
                if receipt is not None:
                    if journal is not None:
                        with journal.locked():
                            journal.forget(nonce)
                    if self.w3.to_hex(receipt["transactionHash"]) != hashes[0]:
                        self.replacements.append((hashes[0], self.w3.to_hex(receipt["transactionHash"])))
                    return receipt
                if int(self.w3.eth.get_transaction_count(account.address, "latest")) > nonce:
                    receipt = self._first_receipt(hashes)  # mined between the two reads?
                    if receipt is not None:
                        continue
                    # A loaded node can count the nonce used a moment before it serves the receipt:
                    # only a nonce still taken by someone else after the grace period is a replacement.
                    taken_since = taken_since if taken_since is not None else time.monotonic()
                    if time.monotonic() - taken_since < _REPLACED_GRACE:
                        time.sleep(poll)
                        continue
                    if journal is not None:
                        with journal.locked():
                            journal.forget(nonce)
                    raise TransactionReplaced(
                        f"{name}: nonce {nonce} of {account.address} was used by a transaction fogfed did not "
                        f"send (sent: {', '.join(hashes)})",
                        "another program sends from this account; check its effect, then retry")
                if time.monotonic() >= next_bump:
                    fees = self._bump(account, tx, nonce, fees, hashes, journal, name)
                    next_bump = time.monotonic() + self.stuck_after
                time.sleep(poll)
                poll = min(poll * 1.5, 0.5)
        except FogfedError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise self.unreachable(exc) or TransactionFailed(f"{name} {hashes[-1]} was not mined: {exc}") from None
        raise TransactionFailed(f"{name} {hashes[-1]} was not mined within {_RECEIPT_TIMEOUT:.0f} s",
                                "check that the node is mining; the transaction journal keeps it for a restart")

    def _first_receipt(self, hashes: list[str]) -> Any:
        for h in hashes:
            try:
                receipt = self.w3.eth.get_transaction_receipt(h)
            except TransactionNotFound:
                continue
            if receipt is not None and receipt.get("blockNumber") is not None:
                return receipt
        return None

    def _bump(self, account: LocalAccount, tx: dict[str, Any], nonce: int, fees: dict[str, int],
              hashes: list[str], journal: TxJournal | None, name: str) -> dict[str, int]:
        """Replace the stuck transaction with one at higher fees; returns the fees now in the mempool."""
        new = bump_fees(fees, self._fees())
        if self.max_fee_per_gas is not None and fee_cap(new) > self.max_fee_per_gas:
            raise TransactionUnderpriced(
                f"{name} {hashes[-1]} is stuck: replacing it needs {fee_cap(new)} wei per gas, above the cap of "
                f"{self.max_fee_per_gas} wei ({MAX_FEE_ENV})",
                "raise the cap, or wait: the transaction stays in the mempool and in the journal")
        signed = account.sign_transaction({**tx, **new, "nonce": nonce})
        new_hash = self.w3.to_hex(signed.hash)
        if journal is not None:
            with journal.locked():
                journal.record(Pending(nonce, tx, new, self.w3.to_hex(signed.raw_transaction), [new_hash],
                                       name))
        try:
            self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Exception as exc:  # noqa: BLE001
            text = _message(exc)
            if "underpriced" in text:
                return new  # not enough for this node's replacement rule: the next bump goes higher
            if _is_nonce_error(text):
                return fees  # the old one was mined meanwhile: the receipt check finds it
            raise self._translate(exc, name, account.address) from None
        hashes.append(new_hash)
        return new

    def _await_final(self, tx_hash: Any, receipt: Any, function: str | None) -> Any:
        """The receipt once its block is final and still on the chain. A reorganisation that takes the
        block away waits for the transaction's new inclusion, and broadcasts it again (its own signed
        bytes, kept from the node) when the node dropped it."""
        name = function or "transaction"
        try:
            raw = self.w3.eth.get_raw_transaction(tx_hash)
        except Exception:  # noqa: BLE001 - nodes without eth_getRawTransactionByHash
            raw = None
        deadline = time.monotonic() + _RECEIPT_TIMEOUT
        while time.monotonic() < deadline:
            try:
                current = self.w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                current = None
            if current is None:  # reorganised out of the chain
                if raw is not None and not self._known(tx_hash):
                    with contextlib.suppress(Exception):  # "already known" / "nonce too low": it is back
                        self.w3.eth.send_raw_transaction(raw)
                time.sleep(0.1)
                continue
            if current["status"] != 1:
                raise TransactionFailed(f"{name} {tx_hash.hex()} failed after a chain reorganisation "
                                        "re-included it", "check the new state and retry")
            number = int(current["blockNumber"])
            if self.final_block() >= number and self.w3.eth.get_block(number)["hash"] == current["blockHash"]:
                return current
            time.sleep(0.1)
        raise TransactionFailed(f"{name} {tx_hash.hex()} did not reach {self.confirmations} confirmations "
                                f"in {_RECEIPT_TIMEOUT:.0f} s",
                                "check that the node keeps mining, or lower the confirmation setting")

    def _known(self, tx_hash: Any) -> bool:
        try:
            return self.w3.eth.get_transaction(tx_hash) is not None
        except TransactionNotFound:
            return False

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
            return bytes(self.w3.eth.call(tx, block_identifier=self.read_block()))
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


def _add_poa_middleware_if_needed(w3: Web3) -> None:
    """Proof-of-authority chains (Besu QBFT/IBFT 2.0, Clique, BNB, Polygon PoS) put validator data in
    ``extraData`` beyond the 32 bytes web3 accepts: decided from the chain's own latest header."""
    from web3.middleware import ExtraDataToPOAMiddleware

    reply = w3.provider.make_request("eth_getBlockByNumber", ["latest", False])  # type: ignore[arg-type]
    header = reply.get("result") if isinstance(reply, dict) else None
    extra = str((header or {}).get("extraData") or "0x")
    if len(extra) > 2 + 2 * 32:
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)


def connect(rpc: str | None = None, *, chain_id: int | None = None, timeout: float = 10.0,
            confirmations: Confirmations | None = None, tx_journal: Path | str | None = None,
            stuck_after: float | None = None, max_fee_per_gas: int | None = None) -> Chain:
    """Connect to a chain.

    ``rpc`` None: a fresh in-process chain (eth-tester/py-evm) that lives as long as the
    returned object. ``"embedded:<dir>"``: the persistent embedded chain in ``<dir>``.
    ``http(s)://host:port``: a JSON-RPC node. ``chain_id``, when given, must match the
    node's (WrongChain otherwise). Unreachable nodes raise ChainUnreachable.
    ``confirmations`` (default ``$FOGFED_CONFIRMATIONS`` or 0): see :mod:`fogfed.chain.finality`.
    On a JSON-RPC node: ``tx_journal`` (default ``$FOGFED_TX_JOURNAL``), a directory for the
    per-sender transaction journals that survive restarts (``"off"``: none); ``stuck_after`` (``$FOGFED_STUCK_AFTER``,
    default 60 s), mempool seconds before a fee bump; ``max_fee_per_gas`` (``$FOGFED_MAX_FEE_PER_GAS``,
    wei), a fee cap. See :mod:`fogfed.chain.nonces`.
    """
    if confirmations is not None:
        confirmations = parse_confirmations(confirmations)
    if rpc is None:
        provider = _LockedTesterProvider()
        w3 = Web3(provider)
        keys = tuple(k.to_hex() for k in provider.ethereum_tester.backend.account_keys)
        chain = Chain(w3, label="the embedded chain", is_embedded=True, identity=id(provider), dev_keys=keys,
                      confirmations=confirmations)
    elif not isinstance(rpc, str):
        raise InputError(f"the RPC endpoint must be a URL string, got {type(rpc).__name__}")
    elif rpc.startswith("embedded:"):
        from fogfed.chain.embedded import open_chain, parse_embedded

        embedded = open_chain(parse_embedded(rpc))
        chain = Chain(embedded.web3(), label=f"the embedded chain in {embedded.state_dir}", is_embedded=True,
                      identity=("embedded", str(embedded.state_dir)), dev_keys=tuple(embedded.private_keys),
                      embedded=embedded, confirmations=confirmations)
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
            _add_poa_middleware_if_needed(w3)
            chain = Chain(w3, label=rpc, is_embedded=False, identity=("rpc", rpc), dev_keys=None,
                          confirmations=confirmations, tx_journal=tx_journal, stuck_after=stuck_after,
                          max_fee_per_gas=max_fee_per_gas)
        except FogfedError:
            raise
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, non-JSON answer...
            raise chain_unreachable(rpc, exc) from None
    if chain_id is not None and chain.chain_id != chain_id:
        raise WrongChain(f"{chain.label} is chain {chain.chain_id}, not the stated chain {chain_id}",
                         "connect to the right node or drop the chain id")
    return chain


__all__ = ["Chain", "checksum", "connect", "account_from_key", "PRIVATE_KEY_ENV"]
