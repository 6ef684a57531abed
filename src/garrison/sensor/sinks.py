"""Where the sensor's events go: printed, analyzed into alerts, written to the node outbox.

Every consumer is an ``EventSink``; the sensor hands each decoded event to each sink, calls
``tick`` after every poll of the ring buffers and ``close`` once at the end.
"""

from __future__ import annotations

from typing import IO, Protocol

import msgspec

from garrison.events.alert import Alert, Mitre
from garrison.events.runtime import RuntimeEvent
from garrison.publisher.envelopes import envelope_record
from garrison.publisher.outbox import Outbox, Record
from garrison.runtime.analyzer import RuntimeAnalyzer
from garrison.runtime.hygiene import AlertAggregator


class EventSink(Protocol):
    def on_event(self, event: RuntimeEvent) -> None: ...

    def tick(self, now: float) -> None: ...

    def close(self) -> None: ...


class AlertOutput(Protocol):
    def on_alert(self, alert: Alert) -> None: ...

    def flush(self) -> None: ...


class AlertLine(msgspec.Struct, kw_only=True):
    """``garrison sensor --emit alerts``: one line per alert (an update repeats its id)."""

    rule: str
    rule_id: str
    severity: str
    priority: str
    output: str
    mitre: Mitre
    container_id: str
    pod: str
    namespace: str
    process: str
    count: int
    time: float
    id: str
    update_of: str = ""


def alert_line(alert: Alert) -> AlertLine:
    entities = alert.entities
    return AlertLine(
        rule=alert.title,
        rule_id=alert.rule_id,
        severity=alert.severity,
        priority=alert.priority,
        output=alert.output,
        mitre=alert.mitre,
        container_id=entities.container or "host",
        pod=entities.pod,
        namespace=entities.namespace,
        process=entities.process,
        count=alert.count,
        time=alert.last_seen,
        id=alert.id,
        update_of=str(alert.evidence.get("update_of", "")),
    )


class JsonLines:
    """Prints events and alerts as JSON lines to a binary stream.

    Lines gather in a buffer of its own and reach the stream once per tick (every poll of the
    ring buffers, at most ~100 ms) or when ``max_buffer`` bytes wait: one write per batch
    even where the stream is unbuffered (``PYTHONUNBUFFERED``, common in containers), where a
    write per event cost a system call each.
    """

    def __init__(self, out: IO[bytes], *, events: bool, max_buffer: int = 256 * 1024) -> None:
        self.out = out
        self.events = events
        self.max_buffer = max_buffer
        self._encoder = msgspec.json.Encoder()
        self._buffer = bytearray()

    def on_event(self, event: RuntimeEvent) -> None:
        if self.events:
            self._encoder.encode_into(event, self._buffer, -1)
            self._buffer += b"\n"
            if len(self._buffer) >= self.max_buffer:
                self.flush()

    def on_alert(self, alert: Alert) -> None:
        self._encoder.encode_into(alert_line(alert), self._buffer, -1)
        self._buffer += b"\n"
        self.flush()  # alerts are few and wanted at once

    def tick(self, now: float) -> None:
        self.flush()

    def flush(self) -> None:
        if self._buffer:
            with memoryview(self._buffer) as whole:
                done = 0
                while done < len(whole):  # an unbuffered (raw) stream may take part of it
                    done += self.out.write(whole[done:]) or 0
            self._buffer.clear()
        self.out.flush()

    def close(self) -> None:
        self.flush()


class OutboxWriter:
    """Queues events and alerts as envelopes; one outbox transaction per tick."""

    def __init__(
        self, outbox: Outbox, *, cluster: str, source: str, events: bool, max_pending: int = 50_000
    ) -> None:
        self.outbox = outbox
        self.cluster = cluster
        self.source = source
        self.events = events
        self.max_pending = max_pending
        self._pending: list[Record] = []
        self._encoder = msgspec.json.Encoder()

    def on_event(self, event: RuntimeEvent) -> None:
        if not self.events:
            return
        key = f"{self.source}:{event.time:.9f}:{event.pid}:{event.seq}"
        self._add("runtime_event", key, self._encoder.encode(event), event.time)

    def on_alert(self, alert: Alert) -> None:
        stored = AlertAggregator.repeats_of(alert)  # the backend counted the first already
        self._add("alert", f"alert:{alert.id}", self._encoder.encode(stored), alert.last_seen)

    def _add(self, kind: str, key: str, payload: bytes, when: float) -> None:
        self._pending.append(
            envelope_record(
                kind=kind,
                key=key,
                payload=payload,
                cluster_id=self.cluster,
                source=self.source,
                produced_at=when,
            )
        )
        if len(self._pending) >= self.max_pending:
            self.flush()

    def tick(self, now: float) -> None:
        self.flush()

    def flush(self) -> None:
        if self._pending:
            self.outbox.put(self._pending)
            self._pending = []

    def close(self) -> None:
        self.flush()


class AlertSink:
    """Runs the runtime analyzer on every event and hands its alerts to the outputs."""

    def __init__(self, analyzer: RuntimeAnalyzer, outputs: list[AlertOutput]) -> None:
        self.analyzer = analyzer
        self.outputs = outputs
        self.alerts = 0

    def _send(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.alerts += 1
            for output in self.outputs:
                output.on_alert(alert)

    def on_event(self, event: RuntimeEvent) -> None:
        self._send(self.analyzer.analyze(event))

    def tick(self, now: float) -> None:
        self._send(self.analyzer.tick(now))

    def close(self) -> None:
        self._send(self.analyzer.close())
        for output in self.outputs:
            output.flush()
