"""The store interface the backend is written against (SQLite now, PostgreSQL later)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from garrison.events.alert import Alert
from garrison.events.errors import GarrisonError


class StoreError(GarrisonError):
    """The store cannot do what was asked (corrupt file, newer schema, ...)."""


@dataclass(frozen=True, slots=True)
class ClusterRecord:
    id: str
    name: str
    created_at: float
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class StoredEvent:
    idempotency_key: str
    cluster_id: str
    kind: str
    source: str
    produced_at: float
    payload: bytes


@dataclass(frozen=True, slots=True)
class RecordResult:
    new: int = 0
    merged: int = 0
    duplicate: int = 0


@dataclass(frozen=True, slots=True)
class AlertQuery:
    cluster: str | None = None
    namespace: str | None = None
    rule_id: str | None = None
    status: str | None = None
    min_severity: int | None = None
    severity: int | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 100
    offset: int = 0


class Store(Protocol):
    def add_cluster(self, name: str) -> tuple[ClusterRecord, str]: ...
    def rotate_cluster_token(self, name: str) -> str: ...
    def cluster_by_name(self, name: str) -> ClusterRecord | None: ...
    def revoke_cluster(self, name: str) -> None: ...
    def list_clusters(self) -> list[ClusterRecord]: ...
    def cluster_for_token(self, token: str) -> ClusterRecord | None: ...
    def add_api_token(self, name: str) -> str: ...
    def api_token_valid(self, token: str) -> bool: ...
    def ingest_events(self, events: Sequence[StoredEvent]) -> int: ...
    def count_events(self) -> int: ...
    def record_alerts(self, alerts: Sequence[Alert], window_seconds: float) -> RecordResult: ...
    def query_alerts(self, query: AlertQuery) -> list[Alert]: ...
    def get_alert(self, alert_id: str) -> Alert | None: ...
    def set_alert_status(self, alert_id: str, status: str) -> Alert | None: ...
    def get_state(self, key: str) -> bytes | None: ...
    def put_state(self, key: str, value: bytes) -> None: ...
    def put_policy_assignment(self, cluster_id: str, body: bytes) -> int: ...
    def get_policy_assignment(self, cluster_id: str) -> tuple[bytes, int] | None: ...
    def close(self) -> None: ...
