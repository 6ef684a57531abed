"""Bad input to the audit decoder: a clear reason per item, and the good items kept."""

from __future__ import annotations

import io
import json

import pytest

from garrison.audit.decode import AuditDecodeError, decode_event_list, decode_value, iter_stream

GOOD = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "a1",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/pods",
    "verb": "list",
    "user": {"username": "alice"},
}


def batch(*items: object) -> bytes:
    return json.dumps(
        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(items)}
    ).encode()


def test_mixed_batch_keeps_valid_events() -> None:
    wrong_version = {**GOOD, "auditID": "a2", "apiVersion": "audit.k8s.io/v2"}
    missing_id = {k: v for k, v in GOOD.items() if k != "auditID"}
    wrong_type = {**GOOD, "auditID": "a3", "user": "alice"}
    unknown_field = {**GOOD, "auditID": "a4", "brandNewField": {"x": 1}}
    result = decode_event_list(batch(GOOD, wrong_version, missing_id, wrong_type, unknown_field, 7))
    assert [e.audit_id for e in result.events] == ["a1", "a4"]
    reasons = {i.index: i.reason for i in result.issues}
    assert "unsupported apiVersion 'audit.k8s.io/v2'" in reasons[1]
    assert "auditID" in reasons[2]
    assert "$.user" in reasons[3]
    assert 5 in reasons


def test_whole_body_errors() -> None:
    assert decode_event_list(b"{not json").issues[0].reason.startswith("malformed JSON")
    with pytest.raises(AuditDecodeError, match="apiVersion"):
        decode_event_list(
            json.dumps({"kind": "EventList", "apiVersion": "v9", "items": []}).encode()
        )
    with pytest.raises(AuditDecodeError, match="EventList"):
        decode_event_list(json.dumps({"kind": "Pod", "items": []}).encode())


def test_single_event_and_array_and_v1beta1() -> None:
    assert len(decode_event_list(json.dumps(GOOD).encode()).events) == 1
    assert len(decode_value(json.dumps([GOOD, GOOD]).encode()).events) == 2
    old = {**GOOD, "apiVersion": "audit.k8s.io/v1beta1", "timestamp": "2019-01-01T00:00:00Z"}
    assert decode_value(json.dumps(old).encode()).events[0].timestamp


def test_json_lines_with_bad_and_truncated_lines() -> None:
    lines = [
        json.dumps(GOOD),
        "",
        '{"kind": 0}',
        json.dumps(GOOD)[:40],
        json.dumps({**GOOD, "auditID": "z"}),
    ]
    results = list(iter_stream(io.BytesIO("\n".join(lines).encode())))
    events = [e for r in results for e in r.events]
    issues = [i for r in results for i in r.issues]
    assert [e.audit_id for e in events] == ["a1", "z"]
    assert [i.index for i in issues] == [3, 4]
    assert "data not recognized as a k8s audit event" in issues[0].reason
    assert issues[1].reason.startswith("malformed JSON")


def test_pretty_printed_document() -> None:
    text = json.dumps({"kind": "EventList", "items": [GOOD]}, indent=2).encode()
    results = list(iter_stream(io.BytesIO(text)))
    assert [e.audit_id for r in results for e in r.events] == ["a1"]


DEEP = {**GOOD, "auditID": "deep", "requestObject": {}}


def deep(levels: int = 3000) -> bytes:
    """An event whose requestObject nests past msgspec's limit (a custom resource can)."""
    text = json.dumps(DEEP)
    return text.replace(
        '"requestObject": {}', '"requestObject": ' + "[" * levels + "]" * levels
    ).encode()


def test_an_event_nested_too_deeply_is_refused_alone() -> None:
    """The events beside it are kept, in an EventList, an array, or JSON lines."""
    good = json.dumps(GOOD).encode()
    other = json.dumps({**GOOD, "auditID": "a2"}).encode()
    listed = (
        b'{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": ['
        + good
        + b", "
        + deep()
        + b", "
        + other
        + b"]}"
    )
    for result in (
        decode_event_list(listed),
        decode_value(b"[" + good + b"," + deep() + b"," + other + b"]"),
    ):
        assert [e.audit_id for e in result.events] == ["a1", "a2"]
        assert [(i.index, "nested too deeply" in i.reason) for i in result.issues] == [(1, True)]
    lines = list(iter_stream(io.BytesIO(deep() + b"\n" + good + b"\n")))
    assert [e.audit_id for r in lines for e in r.events] == ["a1"]
    assert [(i.index, "nested too deeply" in i.reason) for r in lines for i in r.issues] == [
        (1, True)
    ]
    alone = decode_event_list(deep())
    assert not alone.events and "nested too deeply" in alone.issues[0].reason


def test_a_deep_list_is_still_checked_and_a_cut_one_refused_whole() -> None:
    wrong = b'{"kind": "EventList", "apiVersion": "v9", "items": [' + deep() + b"]}"
    with pytest.raises(AuditDecodeError, match="apiVersion"):
        decode_event_list(wrong)
    cut = decode_event_list(b'{"kind": "EventList", "items": [' + deep()[:-10])
    assert not cut.events and "nested too deeply" in cut.issues[0].reason
