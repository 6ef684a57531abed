"""SQLite store: WAL mode, numbered migrations, batched transactions, one writer lock.

Safe to call from several threads: every use of the connection holds ``self._lock``.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import msgspec

from garrison.events.alert import Alert, Severity
from garrison.server.store.base import (
    AlertQuery,
    ClusterRecord,
    RecordResult,
    StoredEvent,
    StoreError,
)
from garrison.sqlite_tx import immediate

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE clusters (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token_hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE api_tokens (
        token_hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE events (
        idempotency_key TEXT PRIMARY KEY,
        cluster_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        produced_at REAL NOT NULL,
        received_at REAL NOT NULL,
        payload BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX events_cluster_time ON events(cluster_id, produced_at);
    CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        dedupe_key TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        severity INTEGER NOT NULL,
        cluster TEXT NOT NULL,
        namespace TEXT NOT NULL,
        status TEXT NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        count INTEGER NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX alerts_dedupe ON alerts(dedupe_key, status, last_seen);
    CREATE INDEX alerts_last_seen ON alerts(last_seen);
    CREATE INDEX alerts_cluster ON alerts(cluster, namespace);
    CREATE TABLE alert_ids (
        incoming_id TEXT PRIMARY KEY,
        alert_id TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE state (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE policy_assignments (
        cluster_id TEXT PRIMARY KEY REFERENCES clusters(id),
        body BLOB NOT NULL,
        version INTEGER NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
)

_alert_decoder = msgspec.json.Decoder(Alert)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


class SQLiteStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None

    # -- schema ---------------------------------------------------------------------------
    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > len(MIGRATIONS):
            raise StoreError(
                f"store {self.path} has schema {version}, newer than this garrison "
                f"({len(MIGRATIONS)}); upgrade garrison"
            )
        for number in range(version, len(MIGRATIONS)):
            with immediate(self._db):
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number + 1}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
        return int(version)

    # -- clusters and tokens --------------------------------------------------------------
    def add_cluster(self, name: str) -> tuple[ClusterRecord, str]:
        token = new_token("gct")
        record = ClusterRecord(id=uuid.uuid4().hex, name=name, created_at=time.time())
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO clusters(id, name, token_hash, created_at) VALUES (?,?,?,?)",
                    (record.id, name, hash_token(token), record.created_at),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"cluster {name!r} already exists") from None
        return record, token

    def rotate_cluster_token(self, name: str) -> str:
        """Give a cluster a new token; the old one stops working at once."""
        token = new_token("gct")
        with self._lock:
            cursor = self._db.execute(
                "UPDATE clusters SET token_hash = ?, revoked = 0 WHERE name = ?",
                (hash_token(token), name),
            )
        if cursor.rowcount == 0:
            raise StoreError(f"no cluster named {name!r}")
        return token

    def cluster_by_name(self, name: str) -> ClusterRecord | None:
        """An enrolled, not revoked cluster (for client-certificate authentication)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, name, created_at, revoked FROM clusters WHERE name = ?", (name,)
            ).fetchone()
        if row is None or row[3]:
            return None
        return ClusterRecord(row[0], row[1], row[2], False)

    def revoke_cluster(self, name: str) -> None:
        """Refuse the cluster's token from now on (``rotate`` issues a working one again)."""
        with self._lock:
            cursor = self._db.execute("UPDATE clusters SET revoked = 1 WHERE name = ?", (name,))
        if cursor.rowcount == 0:
            raise StoreError(f"no cluster named {name!r}")

    def list_clusters(self) -> list[ClusterRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, created_at, revoked FROM clusters ORDER BY name"
            ).fetchall()
        return [ClusterRecord(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def cluster_for_token(self, token: str) -> ClusterRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, name, created_at, revoked FROM clusters WHERE token_hash = ?",
                (hash_token(token),),
            ).fetchone()
        if row is None or row[3]:
            return None
        return ClusterRecord(row[0], row[1], row[2], False)

    def add_api_token(self, name: str) -> str:
        token = new_token("gat")
        with self._lock:
            self._db.execute(
                "INSERT INTO api_tokens(token_hash, name, created_at) VALUES (?,?,?)",
                (hash_token(token), name, time.time()),
            )
        return token

    def api_token_valid(self, token: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM api_tokens WHERE token_hash = ?", (hash_token(token),)
            ).fetchone()
        return row is not None

    # -- events ---------------------------------------------------------------------------
    def ingest_events(self, events: Sequence[StoredEvent]) -> int:
        """Store each idempotency key once; returns how many were new."""
        now = time.time()
        rows = [
            (e.idempotency_key, e.cluster_id, e.kind, e.source, e.produced_at, now, e.payload)
            for e in events
        ]
        with self._lock:
            before = self._db.total_changes
            with immediate(self._db):
                self._db.executemany(
                    "INSERT OR IGNORE INTO events VALUES (?,?,?,?,?,?,?)",
                    rows,
                )
            return self._db.total_changes - before

    def count_events(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM events").fetchone()
        return int(count)

    # -- alerts ---------------------------------------------------------------------------
    def record_alerts(self, alerts: Sequence[Alert], window_seconds: float) -> RecordResult:
        """Store alerts, merging each into an active alert of the same key within the window."""
        new = merged = duplicate = 0
        with self._lock, immediate(self._db):
            for alert in alerts:
                outcome = self._record_one(alert, window_seconds)
                new += outcome == "new"
                merged += outcome == "merged"
                duplicate += outcome == "duplicate"
        return RecordResult(new=new, merged=merged, duplicate=duplicate)

    def _record_one(self, alert: Alert, window: float) -> str:
        db = self._db
        if db.execute("SELECT 1 FROM alert_ids WHERE incoming_id = ?", (alert.id,)).fetchone():
            return "duplicate"
        row = db.execute(
            "SELECT id, body FROM alerts WHERE dedupe_key = ? AND status = 'active' "
            "AND last_seen >= ? AND first_seen <= ? ORDER BY last_seen DESC LIMIT 1",
            (alert.dedupe_key, alert.first_seen - window, alert.last_seen + window),
        ).fetchone()
        if row is not None:
            stored = _alert_decoder.decode(row[1])
            stored.count += alert.count
            stored.first_seen = min(stored.first_seen, alert.first_seen)
            stored.last_seen = max(stored.last_seen, alert.last_seen)
            db.execute(
                "UPDATE alerts SET count = ?, first_seen = ?, last_seen = ?, body = ? WHERE id = ?",
                (
                    stored.count,
                    stored.first_seen,
                    stored.last_seen,
                    msgspec.json.encode(stored),
                    stored.id,
                ),
            )
            db.execute("INSERT INTO alert_ids VALUES (?, ?)", (alert.id, stored.id))
            return "merged"
        db.execute(
            "INSERT INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                alert.id,
                alert.dedupe_key,
                alert.rule_id,
                int(Severity.parse(alert.severity)),
                alert.entities.cluster,
                alert.entities.namespace,
                alert.status,
                alert.first_seen,
                alert.last_seen,
                alert.count,
                msgspec.json.encode(alert),
            ),
        )
        db.execute("INSERT INTO alert_ids VALUES (?, ?)", (alert.id, alert.id))
        return "new"

    def query_alerts(self, query: AlertQuery) -> list[Alert]:
        clauses: list[str] = []
        params: list[object] = []
        for column, value in (
            ("cluster", query.cluster),
            ("namespace", query.namespace),
            ("rule_id", query.rule_id),
            ("status", query.status),
            ("severity", query.severity),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.min_severity is not None:
            clauses.append("severity >= ?")
            params.append(query.min_severity)
        if query.since is not None:
            clauses.append("last_seen >= ?")
            params.append(query.since)
        if query.until is not None:
            clauses.append("first_seen <= ?")
            params.append(query.until)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT body FROM alerts {where} ORDER BY last_seen DESC, id LIMIT ? OFFSET ?"  # noqa: S608 - columns are fixed names, values are bound
        params += [max(0, min(query.limit, 10_000)), max(0, query.offset)]
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [_alert_decoder.decode(r[0]) for r in rows]

    def get_alert(self, alert_id: str) -> Alert | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return None if row is None else _alert_decoder.decode(row[0])

    def set_alert_status(self, alert_id: str, status: str) -> Alert | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None:
                return None
            alert = _alert_decoder.decode(row[0])
            alert.status = status
            self._db.execute(
                "UPDATE alerts SET status = ?, body = ? WHERE id = ?",
                (status, msgspec.json.encode(alert), alert_id),
            )
        return alert

    # -- detector state -------------------------------------------------------------------
    def get_state(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_state(self, key: str, value: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO state VALUES (?,?,?) ON CONFLICT(key) DO UPDATE "
                "SET value = excluded.value, updated_at = excluded.updated_at",
                (key, value, time.time()),
            )

    # -- policy assignments ---------------------------------------------------------------
    def put_policy_assignment(self, cluster_id: str, body: bytes) -> int:
        """Store a cluster's assignment; returns its new version (1, 2, ...)."""
        with self._lock, immediate(self._db):
            row = self._db.execute(
                "SELECT version FROM policy_assignments WHERE cluster_id = ?", (cluster_id,)
            ).fetchone()
            version = (row[0] if row else 0) + 1
            self._db.execute(
                "INSERT INTO policy_assignments (cluster_id, body, version, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(cluster_id) DO UPDATE SET "
                "body = excluded.body, version = excluded.version, "
                "updated_at = excluded.updated_at",
                (cluster_id, body, version, time.time()),
            )
        return int(version)

    def get_policy_assignment(self, cluster_id: str) -> tuple[bytes, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body, version FROM policy_assignments WHERE cluster_id = ?",
                (cluster_id,),
            ).fetchone()
        return (bytes(row[0]), int(row[1])) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
