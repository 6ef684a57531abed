from __future__ import annotations

import time
from pathlib import Path

import pytest

from garrison.publisher.envelopes import envelope_record
from garrison.publisher.outbox import Outbox, OutboxError, Record


def records(
    n: int, kind: str = "runtime_event", start: int = 0, created: float = 0.0
) -> list[Record]:
    return [Record(f"{kind}-{i}", kind, b"x" * 100, created) for i in range(start, start + n)]


def test_put_peek_ack_in_order_and_idempotent(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    assert box.put(records(5)) == 5
    assert box.put(records(5)) == 0  # same keys again: stored once
    first = box.peek(3)
    assert [box.key_of(r.id) for r in first] == [
        "runtime_event-0",
        "runtime_event-1",
        "runtime_event-2",
    ]
    box.ack([r.id for r in first])
    assert [box.key_of(r.id) for r in box.peek(10)] == ["runtime_event-3", "runtime_event-4"]


def test_a_second_process_sees_the_same_records(tmp_path: Path) -> None:
    writer, reader = Outbox(tmp_path / "o.db"), Outbox(tmp_path / "o.db")
    writer.put(records(3))
    assert len(reader.peek(10)) == 3


def test_cap_drops_oldest_low_severity_first_never_alerts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put(records(10, "alert"))
    box.put(records(10, "runtime_event"))
    box.put(records(5, "alert", start=10))
    dropped = box.enforce(max_bytes=20 * 100, max_age_seconds=3600)
    assert dropped == 5
    kept = [box.key_of(r.id) for r in box.peek(100)]
    assert sum(k.startswith("alert") for k in kept) == 15
    assert [k for k in kept if k.startswith("runtime")] == [
        f"runtime_event-{i}" for i in range(5, 10)
    ]
    # a cap only alerts could satisfy: every low-severity record goes, no alert does
    assert box.enforce(max_bytes=100, max_age_seconds=3600) == 5
    assert box.stats().records == 15 and box.stats().dropped == 10


def test_age_cap(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put(records(3, created=time.time() - 7200))
    box.put(records(2, start=3))
    box.put(records(1, "alert", created=time.time() - 7200))
    assert box.enforce(max_bytes=10**9, max_age_seconds=3600) == 3
    assert box.stats().records == 3


def test_corrupt_file_is_quarantined_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"garbage" * 1000)
    box = Outbox(path)
    assert box.stats().records == 0
    moved = list(tmp_path.glob("o.db.corrupt-*"))
    assert len(moved) == 1 and moved[0].read_bytes().startswith(b"garbage")
    path2 = tmp_path / "p.db"
    path2.write_bytes(b"garbage" * 1000)
    with pytest.raises(OutboxError, match="unusable"):
        Outbox(path2, quarantine_corrupt=False)


def test_envelope_records_are_envelopes(tmp_path: Path) -> None:
    import msgspec

    from garrison.events.envelope import Envelope

    record = envelope_record(
        kind="runtime_event", key="k1", payload=b'{"pid":1}', cluster_id="c", source="s"
    )
    envelope = msgspec.json.decode(record.body, type=Envelope)
    assert envelope.idempotency_key == "k1" and bytes(envelope.payload) == b'{"pid":1}'
