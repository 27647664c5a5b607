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
    """One operation: its key (e.g. the request nonce), kind, data, whether it finished, and when it began
    and last changed (Unix seconds; ``started`` None for an entry older than that column whose key is no
    request nonce)."""

    key: str
    kind: str
    data: dict[str, Any]
    done: bool
    started: float | None = None
    updated: float | None = None


# An entry from before the ``started`` column: a request's nonce was spent in the same transaction.
_COLUMNS = ("key, kind, data, done, COALESCE(started, (SELECT spent_at FROM nonces WHERE nonce = journal.key)), "
            "updated")


class Journal:
    """Entries keyed by the operation's request nonce (hex)."""

    def __init__(self, db: LocalDb) -> None:
        self.db = db

    def get(self, key: str) -> Entry | None:
        rows = self.db.query(f"SELECT {_COLUMNS} FROM journal WHERE key = ?", (key,))  # noqa: S608 (fixed)
        if not rows:
            return None
        k, kind, data, done, started, updated = rows[0]
        return Entry(k, kind, json.loads(data), bool(done), started, updated)

    def begin(self, key: str, kind: str, data: dict[str, Any], *, spend: bool = True,
              nonces: Iterable[bytes] = ()) -> Entry:
        """Record a new operation and (``spend``: its key is a request nonce) spend its nonce, and ``nonces``
        (a batch's requests), atomically;
        the existing entry if there is one."""
        with self.db.transaction() as c:
            rows = c.execute("SELECT 1 FROM journal WHERE key = ?", (key,)).fetchall()
            if not rows:
                now = time.time()
                c.execute("INSERT INTO journal (key, kind, data, done, updated, started) VALUES (?, ?, ?, 0, ?, ?)",
                          (key, kind, json.dumps(data), now, now))
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
        entry.updated = time.time()
        with self.db.transaction() as c:
            c.execute("UPDATE journal SET data = ?, done = ?, updated = ? WHERE key = ?",
                      (json.dumps(entry.data), int(entry.done), entry.updated, entry.key))

    def unfinished(self, kind: str | None = None) -> list[Entry]:
        """Entries not marked done, oldest first."""
        rows = self.db.query(f"SELECT {_COLUMNS} FROM journal WHERE done = 0 ORDER BY updated")  # noqa: S608
        return [Entry(k, kd, json.loads(d), False, started, updated)
                for k, kd, d, _, started, updated in rows if kind is None or kd == kind]
