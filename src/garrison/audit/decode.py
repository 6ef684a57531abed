"""Bytes → ``AuditEvent``s: single Events, EventLists, JSON lines, JSON arrays.

Every item is decoded on its own, so one bad item never costs the valid ones beside it:
each failure becomes a ``DecodeIssue`` saying which item and why. That holds for an item
nested deeper than msgspec decodes (about 1,000 levels; a custom resource can be): the batch
around it is then split into its items by a scan that does not recurse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec

from garrison.events.audit import AUDIT_API_VERSIONS, AuditEvent, EventList
from garrison.events.errors import GarrisonError
from garrison.json_members import TOO_DEEP, split_members

NOT_AUDIT = "data not recognized as a k8s audit event"


class AuditDecodeError(GarrisonError):
    """A whole payload that cannot be read at all (not JSON, wrong shape)."""


@dataclass(frozen=True, slots=True)
class DecodeIssue:
    index: int
    reason: str


@dataclass
class DecodeResult:
    events: list[AuditEvent] = field(default_factory=list)
    issues: list[DecodeIssue] = field(default_factory=list)

    def extend(self, other: DecodeResult, offset: int = 0) -> None:
        self.events.extend(other.events)
        self.issues.extend(DecodeIssue(i.index + offset, i.reason) for i in other.issues)


class _Probe(msgspec.Struct):
    kind: Any = None
    items: Any = None
    api_version: Any = msgspec.field(name="apiVersion", default=None)


_event_decoder = msgspec.json.Decoder(AuditEvent)
_list_decoder = msgspec.json.Decoder(EventList)
_probe_decoder = msgspec.json.Decoder(_Probe)
_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])


def _deep_list(data: bytes) -> EventList:
    """An EventList, or a JSON array of events, too deep for msgspec: split without it."""
    members = split_members(data)
    if members is None:
        raise AuditDecodeError(f"malformed JSON: {TOO_DEEP}, and not a well-formed list")
    if data.lstrip()[:1] == b"[":
        return EventList(items=[msgspec.Raw(value) for _, value in members], kind="")
    fields = dict(members)
    items = split_members(fields.get("items", b""))
    if items is None:
        raise AuditDecodeError(f"{TOO_DEEP}, and its items are not a list")
    header = {}
    for name in ("kind", "apiVersion"):
        try:
            header[name] = msgspec.json.decode(fields[name]) if name in fields else None
        except (msgspec.DecodeError, RecursionError):
            raise AuditDecodeError(f"malformed JSON in the list's {name}") from None
    return EventList(
        items=[msgspec.Raw(value) for _, value in items],
        kind=header["kind"] if isinstance(header["kind"], str) else "EventList",
        api_version=header["apiVersion"] if isinstance(header["apiVersion"], str) else "",
    )


def _check(event: AuditEvent) -> str | None:
    if not event.audit_id:
        return f"{NOT_AUDIT}: empty auditID"
    if event.api_version and event.api_version not in AUDIT_API_VERSIONS:
        return f"unsupported apiVersion {event.api_version!r} (want audit.k8s.io/v1)"
    if event.kind and event.kind != "Event":
        return f"{NOT_AUDIT}: kind {event.kind!r}"
    return None


def decode_event(raw: bytes | msgspec.Raw, index: int, result: DecodeResult) -> None:
    """Decode one Event into ``result`` (or record why it is not one)."""
    try:
        event = _event_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        result.issues.append(DecodeIssue(index, f"{NOT_AUDIT}: {exc}"))
        return
    except msgspec.DecodeError as exc:
        result.issues.append(DecodeIssue(index, f"malformed JSON: {exc}"))
        return
    except RecursionError:
        result.issues.append(DecodeIssue(index, f"malformed JSON: {TOO_DEEP}"))
        return
    problem = _check(event)
    if problem:
        result.issues.append(DecodeIssue(index, problem))
    else:
        result.events.append(event)


def _decode_items(items: list[msgspec.Raw], result: DecodeResult, offset: int = 0) -> None:
    for i, item in enumerate(items):
        decode_event(item, offset + i, result)


def decode_event_list(body: bytes) -> DecodeResult:
    """The webhook body: an EventList (a single Event is accepted too)."""
    result = DecodeResult()
    try:
        batch = _list_decoder.decode(body)
    except msgspec.DecodeError:
        return decode_value(body)
    except RecursionError:
        members = split_members(body)
        if members is None or "items" not in {key for key, _ in members}:
            return _decode_deep(body, 0)  # an array of events, or one event
        batch = _deep_list(body)
    if batch.kind != "EventList":
        raise AuditDecodeError(f"expected kind EventList, got {batch.kind!r}")
    if batch.api_version and batch.api_version not in AUDIT_API_VERSIONS:
        raise AuditDecodeError(
            f"unsupported apiVersion {batch.api_version!r} (want audit.k8s.io/v1)"
        )
    _decode_items(batch.items, result)
    return result


def decode_value(data: bytes, index: int = 0) -> DecodeResult:
    """One JSON value: an Event, an EventList or an array of Events."""
    result = DecodeResult()
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        try:
            items = _array_decoder.decode(data)
        except msgspec.DecodeError as exc:
            result.issues.append(DecodeIssue(index, f"malformed JSON: {exc}"))
            return result
        except RecursionError:
            return _decode_deep(data, index)
        _decode_items(items, result, index)
        return result
    try:
        probe = _probe_decoder.decode(data)
    except msgspec.ValidationError as exc:
        result.issues.append(DecodeIssue(index, f"{NOT_AUDIT}: {exc}"))
        return result
    except msgspec.DecodeError as exc:
        result.issues.append(DecodeIssue(index, f"malformed JSON: {exc}"))
        return result
    except RecursionError:
        return _decode_deep(data, index)
    if probe.kind == "EventList" or (probe.kind is None and isinstance(probe.items, list)):
        try:
            batch = _list_decoder.decode(data)
        except msgspec.DecodeError as exc:
            result.issues.append(DecodeIssue(index, f"bad EventList: {exc}"))
            return result
        _decode_items(batch.items, result, index)
        return result
    decode_event(data, index, result)
    return result


def _decode_deep(data: bytes, index: int) -> DecodeResult:
    """One JSON value too deep for msgspec: a list's items each on their own, else one
    event (refused as too deep)."""
    result = DecodeResult()
    members = split_members(data)
    keys = {key for key, _ in members or ()}
    if members is not None and (data.lstrip()[:1] == b"[" or "items" in keys):
        try:
            batch = _deep_list(data)
        except AuditDecodeError as exc:
            result.issues.append(DecodeIssue(index, str(exc)))
            return result
        _decode_items(batch.items, result, index)
        return result
    decode_event(data, index, result)
    return result


def iter_stream(stream: IO[bytes], batch_lines: int = 1024) -> Iterator[DecodeResult]:
    """Read JSON lines (or one JSON document) from a stream, in batches.

    Lines are counted from 1 in issues. A file whose first line is not a whole JSON value
    (a pretty-printed EventList, say) is read as one document.
    """
    first = stream.readline()
    while first and not first.strip():
        first = stream.readline()
    if not first:
        return
    try:
        msgspec.json.decode(first)
        whole = False
    except msgspec.DecodeError:
        whole = True
    except RecursionError:  # a whole line, only too deep: read as lines, it is refused alone
        whole = split_members(first) is None
    if whole:
        yield decode_value(first + stream.read(), 1)
        return
    result = DecodeResult()
    number = 1
    line: bytes = first
    while line:
        if line.strip():
            result.extend(decode_value(line, number))
        if len(result.events) + len(result.issues) >= batch_lines:
            yield result
            result = DecodeResult()
        line = stream.readline()
        number += 1
    if result.events or result.issues:
        yield result
