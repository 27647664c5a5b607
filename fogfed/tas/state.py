"""The TAS's local state: authenticated settings, and a cache of the chain it can always rebuild.

The chain is the source of truth. Locally the TAS keeps only:

* ``state.json``: its settings (contract, chain id, deployment block, TAS
  account, mobility contract), authenticated with an HMAC under a random
  key kept in the encrypted keystore (``state_mac_key``): a file edited by
  anyone else is refused, not trusted. A home of the first design (no such
  key in its keystore, an unauthenticated version-1 file) is converted once
  on open; once converted, a version-1 file is refused (no downgrade);
* ``tas.sqlite``: spent request nonces, the journal of operations in flight
  (:mod:`fogfed.tas.journal`) and a cache of what the contract's events say
  (this TAS's federations, the nodes ever added, the keys delivered), read
  incrementally from the last block seen. Every write is an SQLite
  transaction, so several TAS processes lose nothing; the cache can be
  dropped and re-read (``rebuild``);
* ``tas.lock``: held by every operation that sends transactions, so two TAS
  processes never interleave their steps (bounded wait, holder named).

Members are never taken from a local file: their federation, state and X25519
key come from the contract's ``member`` view, their attributes from their
federation's creation event.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fogfed._lock import ProcessLock
from fogfed.errors import FogfedError
from fogfed.keys.keystore import write_private_file

STATE = "state.json"
DB = "tas.sqlite"
LOCK = "tas.lock"
FORMAT = "fogfed-tas-state"
VERSION = 2
_SETTINGS = {"contract": str, "chain_id": int, "deploy_block": (int, type(None)), "address": str,
             "mobility": (str, type(None))}
MAC_SECRET = "state_mac_key"  # the keystore entry


class TasStateError(FogfedError):
    """A local TAS file is missing, damaged or was changed outside fogfed."""


def _mac(key: bytes, settings: dict[str, Any]) -> str:
    body = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def save_settings(home: Path, key: bytes, settings: dict[str, Any]) -> None:
    """Write ``state.json``: the settings and their HMAC."""
    doc = {"format": FORMAT, "version": VERSION, **settings, "mac": _mac(key, settings)}
    write_private_file(Path(home) / STATE, json.dumps(doc, indent=1, sort_keys=True).encode())


def conversion_key(eth_private_key: bytes) -> bytes:
    """The MAC key a home of the first design is converted with (derived, so a conversion cut short
    between writing ``state.json`` and the keystore is finished on the next open)."""
    return hmac.new(eth_private_key, b"fogfed tas state.json v2 conversion", hashlib.sha256).digest()


def load_settings(home: Path, key: bytes, *, allow_v1: bool = False) -> tuple[dict[str, Any], list[str] | None]:
    """The settings from ``state.json`` (checked), and the nonces of a version-1 file (else None).

    A version-1 file (unauthenticated, with members and federations in it) is
    accepted only with ``allow_v1`` (a keystore of the first design): its
    settings and nonces are kept (the rest is read from the chain) and the
    caller converts the home. Otherwise only a version-2 file authenticated under ``key`` is.
    """
    path = Path(home) / STATE
    fix = "restore it from a backup (its contents can be re-created: contract, chain id and TAS account)"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise TasStateError(f"TAS state {path} is missing", fix) from None
    except (OSError, ValueError, UnicodeDecodeError):
        raise TasStateError(f"TAS state {path} is unreadable or not JSON", fix) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") not in (1, VERSION):
        raise TasStateError(f"TAS state {path} is not a fogfed TAS state file", fix)
    settings = {k: doc.get(k) for k in _SETTINGS}
    for name, types in _SETTINGS.items():
        value = settings[name]
        if not isinstance(value, types) or isinstance(value, bool):
            raise TasStateError(f"TAS state {path} is damaged: {name!r} is {type(value).__name__}", fix)
    if doc["version"] == 1 and not allow_v1:
        raise TasStateError(f"TAS state {path} was changed outside fogfed (a version-1 file in a converted home)",
                            "restore it from a backup; do not edit it by hand")
    if doc["version"] == 1:
        nonces = doc.get("nonces", [])
        if not isinstance(nonces, list) or not all(isinstance(n, str) for n in nonces):
            raise TasStateError(f"TAS state {path} is damaged: 'nonces' is not a list of strings", fix)
        return settings, nonces
    if set(doc) != {"format", "version", "mac", *_SETTINGS} or not isinstance(doc.get("mac"), str) \
            or not hmac.compare_digest(doc["mac"], _mac(key, settings)):
        raise TasStateError(f"TAS state {path} was changed outside fogfed (its authentication code does not "
                            "match)", "restore it from a backup; do not edit it by hand")
    return settings, None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, spent_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS journal (key TEXT PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL,
                                    done INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL, started REAL);
CREATE TABLE IF NOT EXISTS federations (id INTEGER PRIMARY KEY, location TEXT NOT NULL, service TEXT NOT NULL,
                                        parent INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (address TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS delivered (node TEXT NOT NULL, federation INTEGER NOT NULL, epoch INTEGER NOT NULL,
                                      PRIMARY KEY (node, federation, epoch)) WITHOUT ROWID;
"""


class LocalDb:
    """``tas.sqlite``: nonces, journal and the chain cache; every write one transaction."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / DB
        self._thread = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._add_started_column()
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None

    def _add_started_column(self) -> None:
        """Give a journal made before ``started`` existed that column (its old rows keep NULL there)."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(journal)")}
        if "started" in columns:
            return
        try:
            self._conn.execute("ALTER TABLE journal ADD COLUMN started REAL")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):  # another process opening the same home added it first
                raise

    def damaged(self, exc: BaseException) -> TasStateError:
        return TasStateError(f"TAS database {self.path} is damaged or unusable ({exc})",
                             "move it aside: the chain cache is re-read from the chain; spent request "
                             "nonces and operations in flight recorded there are lost")

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._thread:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self.damaged(exc) from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT); rolled back if the body raises."""
        with self._thread:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as exc:
                raise self.damaged(exc) from None
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                self._conn.execute("ROLLBACK")
                raise self.damaged(exc) from None
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._conn.close()

    def __del__(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()


class ChainCache:
    """What the contract's events say, cached in ``tas.sqlite`` and read on from the last block seen.

    Decoding is the chain layer's (``FogFed.events``), shared with the auditor's replay.
    """

    NAMES = ("FederationCreated", "MemberAdded", "KeyDelivered")

    def __init__(self, db: LocalDb, fed: Any, public_key: bytes, deploy_block: int | None) -> None:
        self.db, self.fed, self._pk = db, fed, public_key
        self._start = deploy_block or 0

    def refresh(self) -> None:
        """Read the events mined since the last refresh (a few blocks again: they may have been re-mined)."""
        head = self.fed.chain.block_number()
        rows = self.db.query("SELECT v FROM meta WHERE k = 'cursor'")
        cursor = int(rows[0][0]) if rows else self._start - 1
        if cursor >= head:
            return
        events = self.fed.events(from_block=max(self._start, cursor + 1), to_block=head, names=list(self.NAMES))
        with self.db.transaction() as c:
            for e in events:
                if e.name == "FederationCreated":
                    if bytes(e.args["publicKey"]) == self._pk:  # ours: issued under this TAS's system key
                        c.execute("INSERT OR IGNORE INTO federations VALUES (?, ?, ?, ?)",
                                  (e.args["federationId"], e.args["location"], e.args["service"], e.args["parent"]))
                elif e.name == "MemberAdded":
                    c.execute("INSERT OR IGNORE INTO nodes VALUES (?)", (e.args["node"],))
                else:
                    c.execute("INSERT OR IGNORE INTO delivered VALUES (?, ?, ?)",
                              (e.args["node"], e.args["federationId"], e.args["epoch"]))
            c.execute("INSERT OR REPLACE INTO meta VALUES ('cursor', ?)", (str(head),))

    def rebuild(self) -> None:
        """Forget the cache and read it all again from the deployment block."""
        with self.db.transaction() as c:
            for table in ("federations", "nodes", "delivered"):
                c.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
            c.execute("DELETE FROM meta WHERE k = 'cursor'")
        self.refresh()

    def federations(self) -> dict[int, dict[str, Any]]:
        """This TAS's federations: id -> location, service, parent."""
        return {fid: {"location": loc, "service": svc, "parent": parent}
                for fid, loc, svc, parent in self.db.query("SELECT * FROM federations ORDER BY id")}

    def nodes(self) -> list[str]:
        """Every node ever added (moves keep the address)."""
        return [r[0] for r in self.db.query("SELECT address FROM nodes ORDER BY address")]

    def delivered(self, node: str, federation_id: int, epoch: int) -> bool:
        """Whether the chain shows a key delivered to ``node`` for (federation, epoch)."""
        return bool(self.db.query("SELECT 1 FROM delivered WHERE node = ? AND federation = ? AND epoch = ?",
                                  (node, federation_id, epoch)))


class TasLock:
    """``tas.lock``, re-entrant within the process: one TAS operation at a time across processes."""

    def __init__(self, home: Path) -> None:
        self._lock = ProcessLock(Path(home) / LOCK, f"the TAS in {home}")
        self._depth = 0
        self._thread = threading.RLock()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._thread:
            if self._depth == 0:
                self._lock.acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._lock.release()
