"""A persistent embedded chain: py-evm (via eth-tester) whose state lives in a directory.

``connect(rpc=None)`` gives a chain that vanishes with the process; the CLI
needs one that several processes share (``fogfed tas init`` in one,
``fogfed node upload`` in another, ``fogfed node serve`` running alongside).
Select it with the RPC string ``embedded:<dir>``.

Design: py-evm keeps *everything* (headers, bodies, receipts, state trie,
canonical head) in one key-value store. That store is an SQLite table in
``<dir>/chain.sqlite`` (WAL, synchronous=FULL): reads are indexed look-ups
through a cache, and a request's writes are committed as one SQLite
transaction, so a transaction costs the same on a chain of 100 or 100,000
(the first design rewrote one file holding the whole state on every
transaction, and every other process re-read it). A chain object is rebuilt
on top of the store whenever another process committed (a random generation
id in the same transaction tells): the head is recovered from the store, and
the pending block is a fresh child of it (timestamp = now), exactly as after
mining. Every JSON-RPC request runs under an exclusive ``flock`` on
``<dir>/lock``; :meth:`EmbeddedChain.locked` holds it across several
requests when a caller needs them atomic (read nonce, then send). Waits for
the lock are bounded (``$FOGFED_CHAIN_LOCK_TIMEOUT`` seconds, default 30):
the holder writes its pid and command line into the lock file, and a waiter
that gives up names it (:class:`ChainBusy`). A state directory of the first
design (``chain.db``) is converted on first open.

Accounts are the devnet's deterministic ones (Anvil's default mnemonic), so
keys printed by ``fogfed`` work on the embedded chain, Anvil and Ganache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import struct
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from eth_keys.datatypes import PrivateKey

from fogfed import _lock
from fogfed._lock import LockBusy, ProcessLock
from fogfed.chain.devnet import DEFAULT_MNEMONIC
from fogfed.errors import FogfedError

SCHEME = "embedded:"
MAGIC = b"FOGFED-CHAIN-1\n"
_STAMP = 16  # random generation id written with every save
_ACCOUNTS = 10
_HD_PATH = "m/44'/60'/0'/0"  # Anvil's and Ganache's path, so the same accounts exist there
STATE_FILE = "chain.sqlite"
LEGACY_FILE = "chain.db"  # the first design's whole-state file, converted on open
KEYS_FILE = "dev-keys.json"
FORMAT = b"fogfed-embedded-chain-2"
LOCK_TIMEOUT_ENV = "FOGFED_CHAIN_LOCK_TIMEOUT"  # the chain has its own knob; other locks use FOGFED_LOCK_TIMEOUT


class ChainStateError(FogfedError):
    """The embedded chain's state directory is unusable or its file is damaged."""


def parse_embedded(rpc: str | None) -> Path | None:
    """The state directory named by an ``embedded:<dir>`` RPC string, else None."""
    if rpc is None or not rpc.startswith(SCHEME):
        return None
    rest = rpc[len(SCHEME):]
    if not rest.strip():
        raise ChainStateError(f"{rpc!r} names no directory", "write it as embedded:/path/to/chain-dir")
    return Path(rest).expanduser()


def _decode(data: bytes, path: Path) -> tuple[bytes, dict[bytes, bytes]]:
    damaged = ChainStateError(f"embedded chain state {path} is damaged",
                              "restore it from a backup, or delete the directory to start a new chain")
    head = len(MAGIC) + _STAMP + 8
    if len(data) < head + 32 or not data.startswith(MAGIC):
        raise damaged
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise damaged
    stamp = body[len(MAGIC):len(MAGIC) + _STAMP]
    (count,) = struct.unpack_from(">Q", body, len(MAGIC) + _STAMP)
    kv: dict[bytes, bytes] = {}
    pos = head
    try:
        for _ in range(count):
            klen, vlen = struct.unpack_from(">II", body, pos)
            pos += 8
            if pos + klen + vlen > len(body):
                raise damaged
            kv[body[pos:pos + klen]] = body[pos + klen:pos + klen + vlen]
            pos += klen + vlen
    except struct.error:
        raise damaged from None
    if pos != len(body):
        raise damaged
    return stamp, kv


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ChainStateError(f"cannot save the embedded chain to {path}: {exc.strerror or exc}",
                              "check free disk space and permissions") from None


ChainBusy = LockBusy  # another process has held the chain's lock for too long


class _Store(MutableMapping):
    """py-evm's key-value store kept in SQLite: reads through a cache, writes buffered until commit.

    A chain of any length costs one indexed lookup per read and one SQLite
    transaction per request that changed anything, instead of the whole
    state rewritten (and re-read by every other process) per transaction.
    """

    _CACHE_MAX = 500_000

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn, self._path = conn, path
        self._cache: dict[bytes, bytes] = {}
        self._writes: dict[bytes, bytes | None] = {}  # None: deleted

    @property
    def dirty(self) -> bool:
        return bool(self._writes)

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _damaged(self._path, exc) from None

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._writes:
            value = self._writes[key]
            if value is None:
                raise KeyError(key)
            return value
        try:
            return self._cache[key]
        except KeyError:
            pass
        rows = self._query("SELECT v FROM kv WHERE k = ?", (key,))
        if not rows:
            raise KeyError(key)
        if len(self._cache) >= self._CACHE_MAX:
            self._cache.clear()
        value = self._cache[key] = bytes(rows[0][0])
        return value

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._writes[bytes(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self._writes[bytes(key)] = None

    def __iter__(self) -> Iterator[bytes]:
        keys = {bytes(r[0]) for r in self._query("SELECT k FROM kv")}
        keys.update(k for k, v in self._writes.items() if v is not None)
        keys.difference_update(k for k, v in self._writes.items() if v is None)
        return iter(sorted(keys))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def generation(self) -> bytes | None:
        rows = self._query("SELECT v FROM meta WHERE k = 'generation'")
        return bytes(rows[0][0]) if rows else None

    def commit(self) -> bytes:
        """Write the buffered changes and a new generation id in one SQLite transaction; return the id."""
        stamp = secrets.token_bytes(_STAMP)
        puts = [(k, v) for k, v in self._writes.items() if v is not None]
        dels = [(k,) for k, v in self._writes.items() if v is None]
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", puts)
                self._conn.executemany("DELETE FROM kv WHERE k = ?", dels)
                self._conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('generation', ?)", (stamp,))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            self.discard()
            raise ChainStateError(f"cannot save the embedded chain to {self._path}: {exc}",
                                  "check free disk space and permissions") from None
        except sqlite3.DatabaseError as exc:
            self.discard()
            raise _damaged(self._path, exc) from None
        for k, v in self._writes.items():
            if v is None:
                self._cache.pop(k, None)
            elif len(self._cache) < self._CACHE_MAX:
                self._cache[k] = v
        self._writes.clear()
        return stamp

    def discard(self) -> None:
        """Drop the buffered changes (the caller's request failed)."""
        self._writes.clear()

    def forget(self) -> None:
        """Drop the read cache (another process committed)."""
        self._cache.clear()


def _damaged(path: Path, exc: BaseException | None = None) -> ChainStateError:
    why = f" ({exc})" if exc else ""
    return ChainStateError(f"embedded chain state {path} is damaged{why}",
                           "restore it from a backup, or delete the directory to start a new chain")


def _connect(path: Path) -> sqlite3.Connection:
    # SQLite takes an empty or missing file for a new database: an existing file that is
    # not one is a damaged chain, never silently a fresh one.
    try:
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\0":
                raise _damaged(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ChainStateError(f"cannot read {path}: {exc.strerror or exc}", "check the directory's permissions") from None
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a mined transaction survives a power cut too
        conn.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
        rows = conn.execute("SELECT v FROM meta WHERE k = 'format'").fetchall()
        if not rows:
            conn.execute("INSERT OR IGNORE INTO meta (k, v) VALUES ('format', ?)", (FORMAT,))
        elif bytes(rows[0][0]) != FORMAT:
            raise _damaged(path)
    except sqlite3.OperationalError as exc:
        raise ChainStateError(f"cannot open the embedded chain state {path}: {exc}",
                              "check free disk space and permissions") from None
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, exc) from None
    return conn


def _indexed_backend(base: Any) -> Any:
    """``base`` (eth-tester's PyEVMBackend) finding transactions through py-evm's hash index.

    eth-tester looks a transaction up by walking every block back from the
    head, so each receipt of an old block costs the chain's length and
    ``eth_getLogs`` over a long chain (the auditor's replay, the TAS's and
    node's reconciliation) grows quadratically; py-evm's database already
    indexes hash -> (block, position).
    """
    from eth.exceptions import TransactionNotFound as EvmNotFound
    from eth_tester.backends.pyevm.serializers import serialize_transaction, serialize_transaction_receipt
    from eth_tester.exceptions import TransactionNotFound

    class IndexedBackend(base):  # type: ignore[misc, valid-type]
        def _find(self, transaction_hash: bytes) -> tuple[Any, Any, int]:
            pending = self.chain.get_block()
            for index, tx in enumerate(pending.transactions):
                if tx.hash == transaction_hash:
                    return pending, tx, index
            try:
                number, index = self.chain.chaindb.get_transaction_index(transaction_hash)
            except EvmNotFound:
                raise TransactionNotFound(f"No transaction found for transaction hash: "
                                          f"0x{bytes(transaction_hash).hex()}") from None
            block = self.chain.get_canonical_block_by_number(number)
            return block, block.transactions[index], index

        def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
            block, tx, index = self._find(transaction_hash)
            return serialize_transaction(block, tx, index, block.number == self.chain.get_block().number)

        def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
            block, tx, index = self._find(transaction_hash)
            return serialize_transaction_receipt(block, block.get_receipts(self.chain.chaindb), tx, index,
                                                 block.number == self.chain.get_block().number,
                                                 self.chain.get_vm())

    return IndexedBackend


def _checked_gas_estimate(state: Any, transaction: Any) -> int:
    """Gas for ``transaction`` from one run at the block's limit and one run that confirms it.

    py-evm's default binary search runs the transaction about 13 times (to
    21,000 gas of the least that succeeds), all under the chain's lock. Here:
    what the run at the limit used before refunds, plus 1/63 of it (a call
    forwards at most 63/64 of what is left) and 2,300 (an SSTORE needs that
    much left), is tried once; if that run fails, the binary search decides.
    Like the search, the answer is a limit confirmed to succeed on this state.
    """
    from eth.estimators.gas import _get_computation_error, binary_gas_search_intrinsic_tolerance
    from eth.vm.spoof import SpoofTransaction

    snapshot = state.snapshot()
    try:
        computation = state.apply_transaction(SpoofTransaction(transaction, gas=state.gas_limit, gas_price=0))
        if computation.is_error:
            raise computation.error
        used = transaction.intrinsic_gas + computation.get_gas_used()
    finally:
        state.revert(snapshot)
    candidate = min(used + used // 63 + 2300, state.gas_limit)
    if _get_computation_error(state, SpoofTransaction(transaction, gas=candidate)) is None:
        return candidate
    return binary_gas_search_intrinsic_tolerance(state, transaction)


class EmbeddedChain:
    """An eth-tester/py-evm chain whose state persists in ``state_dir``, shared by processes."""

    def __init__(self, state_dir: Path | str, *, lock_timeout: float | None = None) -> None:
        from eth_tester import EthereumTester, PyEVMBackend

        self.state_dir = Path(state_dir).expanduser()
        self.lock_timeout = _lock.lock_timeout(LOCK_TIMEOUT_ENV) if lock_timeout is None else float(lock_timeout)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._lock = ProcessLock(self.state_dir / "lock", f"the embedded chain in {self.state_dir}",
                                     self.lock_timeout, LOCK_TIMEOUT_ENV)
        except OSError as exc:
            raise ChainStateError(f"cannot use {self.state_dir} for the embedded chain: "
                                  f"{exc.strerror or exc}", "pass a writable directory") from None
        self.path = self.state_dir / STATE_FILE
        self.backend = self._backend(_indexed_backend(PyEVMBackend))
        self._chain_class = type("EmbeddedEvmChain", (type(self.backend.chain),),
                                 {"gas_estimator": staticmethod(_checked_gas_estimate)})  # see _install
        self._genesis: dict[bytes, bytes] | None = dict(self.backend.chain.chaindb.db.wrapped_db.kv_store)
        self.tester = EthereumTester(self.backend)
        self._depth = 0
        self._thread_lock = threading.RLock()
        self._generation: bytes | None = None
        self._store: _Store | None = None
        with self.locked():
            pass  # open (converting a first-design directory), or create and save the genesis state

    # -- state --------------------------------------------------------------

    def _backend(self, backend_class: Any) -> Any:
        # Deriving the mnemonic's keys costs ~0.4 s per process, so the (public,
        # well-known) dev keys are derived once and kept next to the state.
        keys_file = self.state_dir / KEYS_FILE
        try:
            keys = json.loads(keys_file.read_text())
            if not (isinstance(keys, list) and len(keys) == _ACCOUNTS):
                raise ValueError(keys_file)
            backend = backend_class()
            backend.account_keys = tuple(PrivateKey(bytes.fromhex(k.removeprefix("0x"))) for k in keys)
            return backend
        except FileNotFoundError:
            pass
        except (ValueError, TypeError, AttributeError):
            raise ChainStateError(f"embedded chain keys {keys_file} are damaged",
                                  "delete the file: it is re-created from the devnet mnemonic") from None
        backend = backend_class.from_mnemonic(DEFAULT_MNEMONIC, num_accounts=_ACCOUNTS, hd_path=_HD_PATH)
        _atomic_write(keys_file, json.dumps([k.to_hex() for k in backend.account_keys]).encode())
        return backend

    def _open_store(self) -> _Store:
        legacy = self.state_dir / LEGACY_FILE
        store = _Store(_connect(self.path), self.path)
        if store.generation() is None:
            if legacy.exists():  # a first-design directory: convert it once
                try:
                    data = legacy.read_bytes()
                except OSError as exc:
                    raise ChainStateError(f"cannot read {legacy}: {exc.strerror or exc}",
                                          "check the directory's permissions") from None
                _, kv = _decode(data, legacy)
            else:
                kv = self._genesis or {}
            for k, v in kv.items():
                store[k] = v
            store.commit()
            with contextlib.suppress(OSError):
                legacy.unlink()
        self._genesis = None
        return store

    def _install(self) -> None:
        from eth.db.atomic import AtomicDB
        from eth.db.backends.memory import MemoryDB

        assert self._store is not None
        self.backend.chain = self._chain_class(AtomicDB(MemoryDB(self._store)))  # type: ignore[arg-type]

    def _load_if_changed(self) -> None:
        if self._store is None:
            self._store = self._open_store()
        generation = self._store.generation()
        if generation != self._generation:
            self._store.forget()
            self._install()
            self._generation = generation

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the chain exclusively (across processes) for the body; re-entrant.

        On entry the latest committed state is used; on leaving the outermost
        level, changes are committed as one SQLite transaction. If the body
        raises, its changes are dropped. The wait is bounded (ChainBusy).
        """
        if not self._thread_lock.acquire(timeout=self.lock_timeout):
            raise LockBusy(f"the embedded chain in {self.state_dir} is busy: another thread of this "
                            f"process has held it for over {self.lock_timeout:.0f} s",
                            f"{LOCK_TIMEOUT_ENV}=<seconds> waits longer")
        try:
            if self._depth == 0:
                self._lock.acquire()
            self._depth += 1
            ok = False
            try:
                if self._depth == 1:
                    self._load_if_changed()
                yield
                ok = True
            finally:
                self._depth -= 1
                if self._depth == 0:
                    try:
                        store = self._store
                        if store is not None and store.dirty:
                            if ok:
                                self._generation = store.commit()
                            else:
                                store.discard()
                                self._generation = None  # rebuild the chain object from the committed state
                    finally:
                        self._lock.release()
        finally:
            self._thread_lock.release()

    # -- web3 ---------------------------------------------------------------

    def provider(self) -> Any:
        """A web3 provider whose every request runs under :meth:`locked`."""
        from web3 import EthereumTesterProvider

        chain = self
        constant: dict[str, Any] = {}  # answers that never change, given without the lock

        class _Provider(EthereumTesterProvider):
            def make_request(self, method: Any, params: Any) -> Any:
                # web3's middleware asks eth_chainId and eth_accounts around every eth_call (five
                # requests for one): each was a turn of the cross-process lock that 8 uploaders queue for
                if method in _CONSTANT and method in constant:
                    return {**constant[method], "id": repr(self._current_request_id)}
                with chain.locked():
                    response = super().make_request(method, params)
                if method in _CONSTANT and "result" in response:
                    constant[method] = response
                return response

        return _Provider(self.tester)

    def web3(self) -> Any:
        """A ``Web3`` on this chain."""
        from web3 import Web3

        return Web3(self.provider())

    @property
    def private_keys(self) -> list[str]:
        """The funded dev accounts' private keys (0x-hex), deterministic."""
        return [k.to_hex() for k in self.backend.account_keys]

    def close(self) -> None:
        """Release the lock file handle and the database (state is already saved after each request)."""
        if self._store is not None:
            self._store._conn.close()
        self._lock.close()


# Fixed for a state directory's life: the chain id (genesis) and the dev accounts (KEYS_FILE).
_CONSTANT = frozenset({"eth_chainId", "eth_accounts"})

_open_chains: dict[Path, EmbeddedChain] = {}
_open_lock = threading.Lock()


def open_chain(state_dir: Path | str) -> EmbeddedChain:
    """The process-wide :class:`EmbeddedChain` for ``state_dir`` (one per directory)."""
    key = Path(state_dir).expanduser().resolve()
    with _open_lock:
        if key not in _open_chains:
            _open_chains[key] = EmbeddedChain(key)
        return _open_chains[key]


def default_state_dir() -> Path:
    """``$FOGFED_HOME/chain``, or ``~/.fogfed/chain``."""
    home = os.environ.get("FOGFED_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".fogfed") / "chain"
