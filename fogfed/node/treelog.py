"""The node's cache of FogFed's member-tree events, shared by its processes (``<home>/tree-events.sqlite``).

Every upload, fetch and key refresh replays the federations' member trees
from the chain (fogfed.protocol.membertree); a fresh process used to read every
tree event since the deployment first, a cost that grows with the chain. This
cache keeps the events (the same DecodedEvent records ``eth_getLogs`` gives,
in chain order) up to a final block, so a process reads only the blocks after
it. It is a cache only, never a source of truth:

* **Authenticated.** The rows are hashed in order into one chain of SHA-256
  digests, and an HMAC under a key derived from the node's Ethereum key binds
  that digest to the chain id, contract, last block, its hash and the row
  count. A hostile or damaged edit (a removal dropped, an epoch changed, rows
  cut) fails the check, and the cache is rebuilt from the chain: it can never
  make an upload encrypt to a revoked member. An older authentic copy is
  harmless: the blocks after it are read from the chain.
* **Checked against the chain.** The hash of its last block must be the
  chain's hash of that block now; after a reorganisation, or on another chain,
  the cache is rebuilt. Only final blocks are stored.
* **Concurrent processes lose nothing.** An extension is one SQLite
  transaction that appends only if the file still holds what this process
  read (else another process extended it first: its rows are as good).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from fogfed.chain.types import DecodedEvent

TREE_LOG = "tree-events.sqlite"
_FORMAT = "fogfed-tree-events-1"


def cache_key(eth_private_key: bytes) -> bytes:
    """The HMAC key of a node's tree-event cache (only the node's own processes can write a valid one)."""
    return hmac.new(bytes(eth_private_key), b"fogfed tree-event cache key", hashlib.sha256).digest()


def _encode(event: DecodedEvent) -> str:
    args = {k: {"$b": v.hex()} if isinstance(v, (bytes, bytearray)) else v for k, v in event.args.items()}
    return json.dumps([event.block_number, event.log_index, event.tx_hash, event.name, args],
                      sort_keys=True, separators=(",", ":"))


def _decode(text: str) -> DecodedEvent:
    block, index, tx_hash, name, args = json.loads(text)
    args = {k: bytes.fromhex(v["$b"]) if isinstance(v, dict) else v for k, v in args.items()}
    return DecodedEvent(name, args, block, tx_hash, index)


def _link(digest: bytes, row: str) -> bytes:
    return hashlib.sha256(digest + row.encode()).digest()


class TreeEventCache:
    """One node home's tree-event cache (see the module docstring)."""

    def __init__(self, path: Path, key: bytes, chain_id: int, contract: str) -> None:
        self.path, self._key = Path(path), key
        self._scope = f"{_FORMAT}|{chain_id}|{contract.lower()}"
        self._seen: tuple[int, bytes, bytes] | None = None  # (rows, chain digest, mac) as last read

    def _open(self) -> sqlite3.Connection:
        if not self.path.exists():  # private like the rest of the home (it says whom the node federates with)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # a cache: what a power cut loses is read from the chain again
        conn.execute("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, row TEXT NOT NULL)")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
        return conn

    def _mac(self, digest: bytes, rows: int, block: int, block_hash: bytes) -> bytes:
        text = f"{self._scope}|{rows}|{block}|{block_hash.hex()}|{digest.hex()}".encode()
        return hmac.new(self._key, text, hashlib.sha256).digest()

    def _genesis(self) -> bytes:
        return hashlib.sha256(self._scope.encode()).digest()

    def load(self, block_hash: Any) -> tuple[list[DecodedEvent], int]:
        """(events, last block they cover) if the file is authentic and ``block_hash(n)`` (the chain's
        hash of block n) agrees with it; ([], -1) otherwise (missing, damaged, tampered, another chain)."""
        self._seen = None
        try:
            with contextlib.closing(self._open()) as conn:
                meta = dict(conn.execute("SELECT k, v FROM meta").fetchall())
                if not {"block", "hash", "rows", "mac"} <= meta.keys():
                    return [], -1
                block, stored_hash, count, mac = int(meta["block"]), bytes(meta["hash"]), int(meta["rows"]), \
                    bytes(meta["mac"])
                digest, events = self._genesis(), []
                for (row,) in conn.execute("SELECT row FROM events ORDER BY seq"):
                    digest = _link(digest, row)
                    events.append(row)
        except (sqlite3.DatabaseError, ValueError, TypeError):
            return [], -1  # damaged: rebuilt from the chain
        if len(events) != count or not hmac.compare_digest(mac, self._mac(digest, count, block, stored_hash)):
            return [], -1  # not written by this node's processes as it is now: rebuilt from the chain
        if block_hash(block) != stored_hash:
            return [], -1  # a reorganisation took the block back, or this is another chain
        try:
            decoded = [_decode(row) for row in events]
        except (ValueError, TypeError, KeyError, AttributeError):
            return [], -1
        self._seen = (count, digest, mac)
        return decoded, block

    def extend(self, events: list[DecodedEvent], block: int, block_hash: bytes) -> bool:
        """Append ``events`` (those after the last :meth:`load`, up to final block ``block``); start the file
        afresh if the last load found nothing usable. False if another process changed it meanwhile
        (its rows stand) or it cannot be written (the cache is only skipped)."""
        try:
            return self._append(events, block, block_hash)
        except sqlite3.DatabaseError:
            if self._seen is not None:
                return False
            self._discard()  # not a database at all: start a sound file in its place
            try:
                return self._append(events, block, block_hash)
            except sqlite3.DatabaseError:
                return False

    def _append(self, events: list[DecodedEvent], block: int, block_hash: bytes) -> bool:
        rows = [_encode(e) for e in events]
        count, digest, mac = self._seen or (0, self._genesis(), None)
        for row in rows:
            digest = _link(digest, row)
        new_mac = self._mac(digest, count + len(rows), block, block_hash)
        with contextlib.closing(self._open()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                current = conn.execute("SELECT v FROM meta WHERE k = 'mac'").fetchall()
                if mac is None:  # nothing usable was read: the file starts afresh
                    conn.execute("DELETE FROM events")
                    conn.execute("DELETE FROM meta")
                elif not current or bytes(current[0][0]) != mac:
                    conn.execute("ROLLBACK")
                    return False
                conn.executemany("INSERT INTO events (seq, row) VALUES (?, ?)",
                                 [(count + i, row) for i, row in enumerate(rows)])
                conn.executemany("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)",
                                 [("block", block), ("hash", block_hash), ("rows", count + len(rows)),
                                  ("mac", new_mac)])
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        self._seen = (count + len(rows), digest, new_mac)
        return True

    def _discard(self) -> None:
        """A file SQLite cannot use: removed, so the next extension starts a sound one."""
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                Path(f"{self.path}{suffix}").unlink()
        self._seen = None


__all__ = ["TREE_LOG", "TreeEventCache", "cache_key"]
