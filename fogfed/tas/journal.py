"""The journal of TAS operations in flight, in ``tas.sqlite``: what a retry or ``tas sync`` must finish.

An entry is written (one SQLite transaction) before the operation's first
transaction, updated after each step whose completion the chain cannot show
by itself (e.g. a plain ether transfer has no event), and marked done at the
end. Steps the chain can show (a federation exists, a node is a member, a key
was delivered) are re-checked on chain instead of trusted from here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fogfed.tas.state import LocalDb


@dataclass
class Entry:
    """One operation: its key (e.g. the request nonce), kind, data and whether it finished."""

    key: str
    kind: str
    data: dict[str, Any]
    done: bool


class Journal:
    """Entries keyed by the operation's request nonce (hex)."""

    def __init__(self, db: LocalDb) -> None:
        self.db = db

    def get(self, key: str) -> Entry | None:
        rows = self.db.query("SELECT key, kind, data, done FROM journal WHERE key = ?", (key,))
        if not rows:
            return None
        k, kind, data, done = rows[0]
        return Entry(k, kind, json.loads(data), bool(done))

    def begin(self, key: str, kind: str, data: dict[str, Any], *, spend: bool = True,
              nonces: Iterable[bytes] = ()) -> Entry:
        """Record a new operation and (``spend``: its key is a request nonce) spend its nonce, and ``nonces``
        (a batch's requests), atomically;
        the existing entry if there is one."""
        with self.db.transaction() as c:
            rows = c.execute("SELECT 1 FROM journal WHERE key = ?", (key,)).fetchall()
            if not rows:
                now = time.time()
                c.execute("INSERT INTO journal VALUES (?, ?, ?, 0, ?)", (key, kind, json.dumps(data), now))
                if spend:
                    c.execute("INSERT OR IGNORE INTO nonces VALUES (?, ?)", (key, now))
                c.executemany("INSERT OR IGNORE INTO nonces VALUES (?, ?)", [(n.hex(), now) for n in nonces])
        entry = self.get(key)
        assert entry is not None
        return entry

    def update(self, entry: Entry, *, done: bool = False, **data: Any) -> None:
        """Merge ``data`` into the entry (and mark it done), in one transaction."""
        entry.data.update(data)
        entry.done = entry.done or done
        with self.db.transaction() as c:
            c.execute("UPDATE journal SET data = ?, done = ?, updated = ? WHERE key = ?",
                      (json.dumps(entry.data), int(entry.done), time.time(), entry.key))

    def unfinished(self, kind: str | None = None) -> list[Entry]:
        """Entries not marked done, oldest first."""
        rows = self.db.query("SELECT key, kind, data, done FROM journal WHERE done = 0 ORDER BY updated")
        return [Entry(k, kd, json.loads(d), False) for k, kd, d, _ in rows if kind is None or kd == kind]
