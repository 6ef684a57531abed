"""A durable outbox: SQLite in WAL mode, shared by the processes that write and the one that ships.

Writers (the sensor, collectors) append envelopes in batched transactions; the publisher
reads the oldest batch, ships it, and deletes it only after the backend acknowledged it. A
crash anywhere leaves every unacknowledged record in the file. The outbox is bounded in bytes
and age: past the cap the oldest low-severity records go first, alerts never; every drop is
counted in the file itself so the loss can be reported once the backend is back.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from garrison.events.errors import GarrisonError
from garrison.sqlite_tx import immediate

log = logging.getLogger("garrison.publisher.outbox")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    keep INTEGER NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_drop_order ON records(keep, id);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
KEPT_KINDS = frozenset({"alert", "data_loss"})


class OutboxError(GarrisonError):
    """The outbox file cannot be used."""


@dataclass(frozen=True, slots=True)
class Record:
    """One envelope as stored: ``body`` is the envelope's JSON."""

    key: str
    kind: str
    body: bytes
    created: float = 0.0


class Stored(NamedTuple):
    """A stored record as the shipper needs it: its id and the envelope's JSON."""

    id: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Stats:
    records: int
    bytes: int
    dropped: int
    dropped_reported: int


class Outbox:
    """One connection to the outbox file; safe for the threads of one process."""

    def __init__(self, path: str | Path, *, quarantine_corrupt: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            if not quarantine_corrupt:
                raise OutboxError(f"outbox {self.path} is unusable: {exc}") from None
            moved = self.quarantine(exc)
            log.error(
                "outbox %s was corrupt (%s); moved to %s, starting a new one", self.path, exc, moved
            )
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            (check,) = db.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check}")
            db.executescript(SCHEMA)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def quarantine(self, reason: object) -> Path:
        """Move a corrupt outbox (and its WAL files) aside; the caller opens a fresh one."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(str(self.path) + suffix)
            if source.exists():
                source.rename(Path(str(target) + suffix))
        return target

    # -- writing --------------------------------------------------------------------------
    def put(self, records: Sequence[Record]) -> int:
        """Append records in one transaction; a key already present is kept once."""
        now = time.time()
        rows = [
            (r.key, r.kind, int(r.kind in KEPT_KINDS), r.created or now, len(r.body), r.body)
            for r in records
        ]
        with self._lock:
            before = self._db.total_changes
            with immediate(self._db):
                self._db.executemany(
                    "INSERT OR IGNORE INTO records(key, kind, keep, created, size, body) "
                    "VALUES (?,?,?,?,?,?)",
                    rows,
                )
            return self._db.total_changes - before

    # -- reading and acknowledging ----------------------------------------------------------
    def peek(self, limit: int, *, after_id: int = 0) -> list[Stored]:
        """The oldest ``limit`` records (past ``after_id``), still stored until acknowledged."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, body FROM records WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return list(map(Stored._make, rows))

    def key_of(self, record_id: int) -> str:
        """The idempotency key of a stored record (for messages), or '?' once it is gone."""
        with self._lock:
            row = self._db.execute("SELECT key FROM records WHERE id = ?", (record_id,)).fetchone()
        return str(row[0]) if row else "?"

    def count_up_to(self, limit: int) -> int:
        """How many records wait, counting no further than ``limit`` (cheap on a big outbox)."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT count(*) FROM (SELECT 1 FROM records LIMIT ?)", (limit,)
            ).fetchone()
        return int(count)

    def ack_through(self, last_id: int) -> None:
        """Delete every record up to ``last_id``: a peeked batch is always the oldest prefix.

        Ids only grow (AUTOINCREMENT under SQLite's single writer), so nothing written after
        the peek can have a smaller id.
        """
        with self._lock:
            self._db.execute("DELETE FROM records WHERE id <= ?", (last_id,))

    def ack(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        with self._lock, immediate(self._db):
            self._db.executemany("DELETE FROM records WHERE id = ?", [(i,) for i in ids])

    # -- bounds -----------------------------------------------------------------------------
    def enforce(self, *, max_bytes: int, max_age_seconds: float) -> int:
        """Drop what is over the caps: too old first, then the oldest low-severity records.

        Alerts (and data-loss records) are never dropped. Returns how many were dropped;
        the running total is kept in the file.
        """
        dropped = 0
        with self._lock, immediate(self._db):
            cutoff = time.time() - max_age_seconds
            cursor = self._db.execute(
                "DELETE FROM records WHERE keep = 0 AND created < ?", (cutoff,)
            )
            dropped += cursor.rowcount
            (total,) = self._db.execute("SELECT coalesce(sum(size), 0) FROM records").fetchone()
            excess = int(total) - max_bytes
            while excess > 0:
                rows = self._db.execute(
                    "SELECT id, size FROM records WHERE keep = 0 ORDER BY id LIMIT 1000"
                ).fetchall()
                if not rows:
                    break
                victims = []
                for row_id, size in rows:
                    victims.append((row_id,))
                    excess -= size
                    if excess <= 0:
                        break
                self._db.executemany("DELETE FROM records WHERE id = ?", victims)
                dropped += len(victims)
            if dropped:
                self._bump("dropped", dropped)
        return dropped

    def _bump(self, name: str, amount: int) -> None:
        self._db.execute(
            "INSERT INTO counters(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, amount),
        )

    def mark_loss_reported(self, total: int) -> None:
        """Remember that drops up to ``total`` were reported to the backend."""
        with self._lock:
            self._db.execute(
                "INSERT INTO counters(name, value) VALUES ('dropped_reported', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
                (total,),
            )

    def stats(self) -> Stats:
        with self._lock:
            count, size = self._db.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM records"
            ).fetchone()
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
        return Stats(
            records=int(count),
            bytes=int(size),
            dropped=int(counters.get("dropped", 0)),
            dropped_reported=int(counters.get("dropped_reported", 0)),
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()
