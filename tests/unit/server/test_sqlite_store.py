from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from garrison.events.alert import Alert, Entities, dedupe_key
from garrison.server.store import AlertQuery, SQLiteStore, StoredEvent, StoreError
from garrison.server.store.sqlite import MIGRATIONS


def alert(
    id: str, rule: str = "r1", namespace: str = "ns", t: float = 1000.0, sev: str = "high"
) -> Alert:
    entities = Entities(cluster="c1", namespace=namespace, pod="p")
    return Alert(
        id=id,
        rule_id=rule,
        title=rule,
        severity=sev,
        priority="Warning",
        output="o",
        source="k8s_audit",
        entities=entities,
        first_seen=t,
        last_seen=t,
        dedupe_key=dedupe_key(rule, entities),
    )


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "g.db")


def test_dedupe_merges_within_the_window_and_is_idempotent(store: SQLiteStore) -> None:
    first = store.record_alerts([alert("a"), alert("b", t=1500.0)], window_seconds=3600)
    assert (first.new, first.merged) == (1, 1)
    again = store.record_alerts([alert("a"), alert("b", t=1500.0)], window_seconds=3600)
    assert again.duplicate == 2
    later = store.record_alerts([alert("c", t=9000.0)], window_seconds=3600)
    assert later.new == 1
    stored = store.query_alerts(AlertQuery())
    assert [(a.id, a.count) for a in stored] == [("c", 1), ("a", 2)]
    assert stored[1].first_seen == 1000.0 and stored[1].last_seen == 1500.0


def test_resolved_alerts_do_not_absorb_new_ones(store: SQLiteStore) -> None:
    store.record_alerts([alert("a")], 3600)
    assert store.set_alert_status("a", "resolved") is not None
    assert store.record_alerts([alert("b", t=1001.0)], 3600).new == 1


def test_query_filters(store: SQLiteStore) -> None:
    store.record_alerts(
        [
            alert("a", "r1", "x", sev="low"),
            alert("b", "r2", "y", sev="high"),
            alert("c", "r3", "y", sev="medium"),
        ],
        3600,
    )
    assert {a.id for a in store.query_alerts(AlertQuery(namespace="y"))} == {"b", "c"}
    assert {a.id for a in store.query_alerts(AlertQuery(min_severity=2))} == {"b", "c"}
    assert {a.id for a in store.query_alerts(AlertQuery(rule_id="r1"))} == {"a"}
    assert store.query_alerts(AlertQuery(since=2000.0)) == []
    assert len(store.query_alerts(AlertQuery(limit=1))) == 1


def test_events_are_stored_once(store: SQLiteStore) -> None:
    events = [StoredEvent(f"k{i}", "c", "runtime_event", "s", 1.0, b"{}") for i in range(5)]
    assert store.ingest_events(events) == 5
    assert (
        store.ingest_events([*events[:3], StoredEvent("k9", "c", "runtime_event", "s", 1.0, b"{}")])
        == 1
    )
    assert store.count_events() == 6


def test_tokens_rotate_and_unknown_ones_fail(store: SQLiteStore) -> None:
    record, token = store.add_cluster("prod")
    assert store.cluster_for_token(token) == record
    new = store.rotate_cluster_token("prod")
    assert store.cluster_for_token(token) is None and store.cluster_for_token(new) is not None
    with pytest.raises(StoreError, match="already exists"):
        store.add_cluster("prod")
    api = store.add_api_token("me")
    assert store.api_token_valid(api) and not store.api_token_valid(api + "x")


def test_state_round_trip(store: SQLiteStore) -> None:
    store.put_state("k", b"1")
    store.put_state("k", b"2")
    assert store.get_state("k") == b"2" and store.get_state("none") is None


def test_migrations_record_the_schema_and_refuse_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = SQLiteStore(path)
    assert store.schema_version == len(MIGRATIONS) >= 2
    store.close()
    SQLiteStore(path).close()  # reopening migrates nothing
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(StoreError, match="newer than this garrison"):
        SQLiteStore(path)


def test_a_version_1_store_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    store = SQLiteStore(path)
    store.put_state("kept", b"yes")
    store.close()
    with sqlite3.connect(path) as db:  # back to what a version-1 garrison left
        db.execute("DROP TABLE policy_assignments")
        db.execute("PRAGMA user_version=1")
    store = SQLiteStore(path)
    assert store.schema_version == len(MIGRATIONS)
    assert store.get_state("kept") == b"yes"
    assert store.get_policy_assignment("none") is None  # the table migration 2 added
    store.close()


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open store"):
        SQLiteStore(path)
