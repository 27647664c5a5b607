"""The auditor's local SQLite checkpoint: replayed events, progress, state snapshot.

One file per deployment. Each fetched block range is committed in one
transaction (its events and the new ``last_block``), so an interrupted replay
resumes after the last committed range. At the end of a replay the rebuilt
state is stored as a snapshot; resuming loads it and re-applies only the
events committed after it.

The hash of every committed range's last block and of every block with an
event is kept (table ``blocks``), so a reorganisation of blocks already
replayed is seen on resume or during a replay: :meth:`Checkpoint.rewind`
drops everything above the newest block whose hash the chain still has (the
common ancestor), and the replay goes on from there.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fogfed.audit.abi import Event
from fogfed.audit.errors import AuditError

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL, time INTEGER NOT NULL,
    name TEXT NOT NULL, args TEXT NOT NULL, PRIMARY KEY (block, log_index));
CREATE TABLE IF NOT EXISTS snapshot (section TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    value TEXT NOT NULL, PRIMARY KEY (section, key));
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, hash TEXT NOT NULL);
"""


def _rows(state: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    # Big dicts and lists one entry per row (kind d / l); everything else whole (kind v).
    # An empty dict or list is stored whole, so it comes back with its type.
    for section, value in state.items():
        if isinstance(value, dict) and value and section != "contract":
            for key, item in value.items():
                yield section, "d", key, json.dumps(item)
        elif isinstance(value, list) and value:
            for i, item in enumerate(value):
                yield section, "l", f"{i:012d}", json.dumps(item)
        else:
            yield section, "v", "", json.dumps(value)


class Checkpoint:
    """An open checkpoint file bound to one (chain id, contract address)."""

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path, self.db = path, db

    @classmethod
    def open(cls, path: Path | str, chain_id: int | None = None, address: str | None = None) -> "Checkpoint":
        """Open or create ``path``; refuse a file that belongs to another deployment.

        With chain_id/address None the file must exist (read-only use by ``report``).
        """
        path = Path(path)
        if chain_id is None and not path.is_file():
            raise AuditError(f"no audit checkpoint at {path}", "run `fogfed audit replay` first")
        try:
            db = sqlite3.connect(path)
            # WAL + synchronous=NORMAL: a commit survives a crash of this process without an fsync
            # per range; a power cut can lose the last ranges, which the next replay fetches again.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise AuditError(f"{path} is not an audit checkpoint ({exc})",
                             "pass another --db path or delete the file") from exc
        cp = cls(path, db)
        if chain_id is None:
            if "address" not in meta:
                raise AuditError(f"{path} holds no replay", "run `fogfed audit replay` first")
            return cp
        want = {"schema": SCHEMA_VERSION, "chain_id": str(chain_id), "address": address}
        if not meta:
            with db:
                db.executemany("INSERT INTO meta VALUES (?, ?)", want.items())
            return cp
        for key, value in want.items():
            if meta.get(key) != value:
                db.close()
                raise AuditError(f"checkpoint {path} belongs to {key} {meta.get(key)}, not {value}",
                                 "pass another --db path for this deployment")
        return cp

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, values: dict[str, Any]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                [(k, str(v)) for k, v in values.items()])

    @property
    def address(self) -> str:
        return self.meta("address") or ""

    @property
    def chain_id(self) -> int:
        return int(self.meta("chain_id") or 0)

    @property
    def last_block(self) -> int | None:
        """Last block whose events are all committed, or None before any."""
        value = self.meta("last_block")
        return int(value) if value is not None else None

    def commit_range(self, events: Iterable[Event], last_block: int,
                     hashes: dict[int, str] | None = None) -> None:
        """Store one fetched range's events, the block hashes seen, and advance ``last_block``, atomically."""
        rows = [(e.block, e.log_index, e.tx, e.timestamp, e.name, json.dumps(e.args)) for e in events]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
            self.db.executemany("INSERT OR REPLACE INTO blocks VALUES (?, ?)", sorted((hashes or {}).items()))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('last_block', ?)", (str(last_block),))

    def block_hashes(self, newest_first: bool = True) -> Iterator[tuple[int, str]]:
        """(number, hash) of the recorded blocks."""
        order = "DESC" if newest_first else "ASC"
        yield from self.db.execute(f"SELECT number, hash FROM blocks ORDER BY number {order}")

    def block_hash(self, number: int) -> str | None:
        row = self.db.execute("SELECT hash FROM blocks WHERE number = ?", (number,)).fetchone()
        return row[0] if row else None

    def rewind(self, ancestor: int | None) -> int:
        """Forget everything above block ``ancestor`` (None: everything); returns the events dropped.

        The snapshot goes too when it is newer than ``ancestor``; restore() then rebuilds the state
        from the stored events, which are all at or below it."""
        keep = -1 if ancestor is None else ancestor
        with self.db:
            dropped = self.db.execute("DELETE FROM events WHERE block > ?", (keep,)).rowcount
            self.db.execute("DELETE FROM blocks WHERE number > ?", (keep,))
            snap = self.meta("snapshot_block")
            if snap is not None and int(snap) > keep:
                self.db.execute("DELETE FROM snapshot")
                self.db.execute("DELETE FROM meta WHERE key = 'snapshot_block'")
            if ancestor is None:
                self.db.execute("DELETE FROM meta WHERE key = 'last_block'")
            else:
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('last_block', ?)", (str(ancestor),))
            reorgs = int(self.meta("reorgs") or 0) + 1
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('reorgs', ?)", (str(reorgs),))
        return dropped

    def events(self, after_block: int = -1, newest_first: bool = False, limit: int = -1) -> Iterator[Event]:
        """Stored events after ``after_block``, streamed in chain order (or newest first)."""
        order = "DESC" if newest_first else "ASC"
        cursor = self.db.execute(
            f"SELECT block, log_index, tx, time, name, args FROM events WHERE block > ? "
            f"ORDER BY block {order}, log_index {order} LIMIT ?", (after_block, limit))
        for block, log_index, tx, time, name, args in cursor:
            yield Event(block, log_index, tx, time, name, json.loads(args))

    def event_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def save_snapshot(self, block: int, state: dict[str, Any]) -> None:
        """Store ``state`` as of ``block``: one row per federation, member, file... so that
        neither writing nor reading it needs more than one entry's JSON at a time."""
        with self.db:
            self.db.execute("DELETE FROM snapshot")
            self.db.executemany("INSERT INTO snapshot VALUES (?, ?, ?, ?)", _rows(state))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('snapshot_block', ?)", (str(block),))

    def snapshot(self) -> tuple[int, dict[str, Any]] | None:
        """(block, state) of the stored snapshot, or None."""
        block = self.meta("snapshot_block")
        if block is None:
            return None
        state: dict[str, Any] = {}
        try:
            for section, kind, key, value in self.db.execute(
                    "SELECT section, kind, key, value FROM snapshot ORDER BY rowid"):
                if kind == "v":
                    state[section] = json.loads(value)
                elif kind == "d":
                    state.setdefault(section, {})[key] = json.loads(value)
                else:
                    state.setdefault(section, []).append(json.loads(value))
        except json.JSONDecodeError as exc:
            raise AuditError(f"the state snapshot in {self.path} is corrupt",
                             "delete the file and replay again") from exc
        return int(block), state

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
