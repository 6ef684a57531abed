"""The Envelope every record travels in between processes and machines."""

from __future__ import annotations

import msgspec

SCHEMA_VERSION = 1

RECORD_KINDS = frozenset({"audit_event", "alert", "runtime_event", "data_loss", "finding"})


class Envelope(msgspec.Struct, kw_only=True):
    """A typed record plus where it came from.

    ``idempotency_key`` identifies the record itself: the backend stores each key once, so a
    retried batch never duplicates anything.
    """

    schema_version: int = SCHEMA_VERSION
    cluster_id: str
    source: str
    kind: str
    idempotency_key: str
    produced_at: float
    payload: msgspec.Raw


class EnvelopeBatch(msgspec.Struct):
    envelopes: list[msgspec.Raw]
