"""A persistent embedded chain: py-evm (via eth-tester) whose state lives in a directory.

``connect(rpc=None)`` gives a chain that vanishes with the process; the CLI
needs one that several processes share (``fogfed tas init`` in one,
``fogfed node upload`` in another, ``fogfed node serve`` running alongside).
Select it with the RPC string ``embedded:<dir>``.

Design: py-evm keeps *everything* (headers, bodies, receipts, state trie,
canonical head) in one key-value store, so the whole chain is that dict.
It is saved to ``<dir>/chain.db`` and a chain object is rebuilt on top of
it when loaded: the head is recovered from the store, and the pending block
is a fresh child of it (timestamp = now), exactly as after mining. Every
JSON-RPC request runs under an exclusive ``flock`` on ``<dir>/lock``:
reload if another process saved since we last loaded, act, save if the
store changed (temp file + fsync + rename, so readers see whole states
only). :meth:`EmbeddedChain.locked` holds the lock across several requests
when a caller needs them atomic (read nonce, then send).

Accounts are the devnet's deterministic ones (Anvil's default mnemonic), so
keys printed by ``fogfed`` work on the embedded chain, Anvil and Ganache.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eth_keys.datatypes import PrivateKey

from fogfed.chain.devnet import DEFAULT_MNEMONIC
from fogfed.errors import FogfedError

SCHEME = "embedded:"
MAGIC = b"FOGFED-CHAIN-1\n"
_STAMP = 16  # random generation id written with every save
_ACCOUNTS = 10
_HD_PATH = "m/44'/60'/0'/0"  # Anvil's and Ganache's path, so the same accounts exist there
STATE_FILE = "chain.db"
KEYS_FILE = "dev-keys.json"


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


class _TrackingDict(dict):
    """The key-value store; notes whether anything was written since the last save."""

    dirty = False

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.dirty = True
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.dirty = True
        super().__delitem__(key)


def _encode(kv: dict[bytes, bytes], stamp: bytes) -> bytes:
    parts = [MAGIC, stamp, struct.pack(">Q", len(kv))]
    for k, v in kv.items():
        parts += [struct.pack(">II", len(k), len(v)), k, v]
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


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


def _read_stamp(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + _STAMP)
    except FileNotFoundError:
        return None
    return head[len(MAGIC):] if head.startswith(MAGIC) and len(head) == len(MAGIC) + _STAMP else b""


class EmbeddedChain:
    """An eth-tester/py-evm chain whose state persists in ``state_dir``, shared by processes."""

    def __init__(self, state_dir: Path | str) -> None:
        from eth_tester import EthereumTester, PyEVMBackend

        self.state_dir = Path(state_dir).expanduser()
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.state_dir / "lock", "a+b")  # noqa: SIM115 (held for life)
        except OSError as exc:
            raise ChainStateError(f"cannot use {self.state_dir} for the embedded chain: "
                                  f"{exc.strerror or exc}", "pass a writable directory") from None
        self.path = self.state_dir / STATE_FILE
        self.backend = self._backend(PyEVMBackend)
        self._chain_class = type(self.backend.chain)
        self.tester = EthereumTester(self.backend)
        self._kv: _TrackingDict = _TrackingDict()
        self._stamp: bytes | None = None
        self._depth = 0
        self._thread_lock = threading.RLock()
        with self.locked():
            pass  # load, or create and save the genesis state

    # -- state file -------------------------------------------------------

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

    def _install(self, kv: dict[bytes, bytes]) -> None:
        from eth.db.atomic import AtomicDB
        from eth.db.backends.memory import MemoryDB

        self._kv = _TrackingDict(kv)
        self.backend.chain = self._chain_class(AtomicDB(MemoryDB(self._kv)))

    def _load_if_changed(self) -> None:
        stamp = _read_stamp(self.path)
        if stamp is None:  # a new chain: keep the genesis built in __init__
            if self._stamp is None:
                self._install(self.backend.chain.chaindb.db.wrapped_db.kv_store)
                self._kv.dirty = True
            return
        if stamp == self._stamp:
            return
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ChainStateError(f"cannot read {self.path}: {exc.strerror or exc}",
                                  "check the directory's permissions") from None
        self._stamp, kv = _decode(data, self.path)
        self._install(kv)

    def _save(self) -> None:
        stamp = secrets.token_bytes(_STAMP)
        _atomic_write(self.path, _encode(self._kv, stamp))
        self._stamp = stamp
        self._kv.dirty = False

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the chain exclusively (across processes) for the body; re-entrant.

        On entry the latest saved state is loaded; on leaving the outermost
        level, changes are saved. If the body raises, its changes are dropped
        (the next entry reloads the saved state).
        """
        with self._thread_lock:
            if self._depth == 0:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
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
                        if ok and self._kv.dirty:
                            self._save()
                        elif not ok and self._kv.dirty:
                            self._stamp = b"discarded"  # force a reload next time
                    finally:
                        fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    # -- web3 ---------------------------------------------------------------

    def provider(self) -> Any:
        """A web3 provider whose every request runs under :meth:`locked`."""
        from web3 import EthereumTesterProvider

        chain = self

        class _Provider(EthereumTesterProvider):
            def make_request(self, method: Any, params: Any) -> Any:
                with chain.locked():
                    return super().make_request(method, params)

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
        """Release the lock file handle (state is already saved after each request)."""
        self._lock_file.close()


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
