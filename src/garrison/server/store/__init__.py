"""Storage behind the backend: an interface and its SQLite implementation."""

from garrison.server.store.base import (
    AlertQuery,
    ClusterRecord,
    RecordResult,
    Store,
    StoredEvent,
    StoreError,
)
from garrison.server.store.sqlite import SQLiteStore

__all__ = [
    "AlertQuery",
    "ClusterRecord",
    "RecordResult",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoredEvent",
]
