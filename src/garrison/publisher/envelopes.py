"""Building outbox records: each is one Envelope, serialized once by whoever produces it."""

from __future__ import annotations

import time

import msgspec

from garrison.events.envelope import SCHEMA_VERSION, Envelope
from garrison.publisher.outbox import Record


def envelope_record(
    *, kind: str, key: str, payload: bytes, cluster_id: str, source: str, produced_at: float = 0.0
) -> Record:
    """An outbox record holding one envelope whose payload is already-encoded JSON."""
    when = produced_at or time.time()
    envelope = Envelope(
        schema_version=SCHEMA_VERSION,
        cluster_id=cluster_id,
        source=source,
        kind=kind,
        idempotency_key=key,
        produced_at=when,
        payload=msgspec.Raw(payload),
    )
    return Record(key=key, kind=kind, body=msgspec.json.encode(envelope), created=when)


def batch_body(bodies: list[bytes]) -> bytes:
    """The ingest API's body for these envelopes, without decoding them again."""
    return b'{"envelopes":[' + b",".join(bodies) + b"]}"
