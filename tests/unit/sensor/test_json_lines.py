"""The sensor's JSON lines: batched into one write per tick, whole even on a raw stream."""

from __future__ import annotations

import io

from garrison.events.runtime import RuntimeEvent
from garrison.sensor.sinks import JsonLines


class TakesThreeBytes(io.RawIOBase):
    """A raw stream that accepts at most three bytes a write, as a pipe may take part of one."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        chunk = bytes(memoryview(b)[:3])  # type: ignore[arg-type]
        self.data += chunk
        self.writes += 1
        return len(chunk)


def event(pid: int) -> RuntimeEvent:
    return RuntimeEvent(
        type="exec",
        time=1.0,
        pid=pid,
        tid=pid,
        ppid=1,
        uid=0,
        gid=0,
        comm="sh",
        exe="/bin/sh",
        args=["sh"],
        container_id="host",
        ancestry=[],
    )


def test_lines_wait_for_the_tick_and_arrive_whole() -> None:
    out = TakesThreeBytes()
    lines = JsonLines(out, events=True)
    for pid in range(3):
        lines.on_event(event(pid))
    assert out.writes == 0  # nothing written per event
    lines.tick(0.0)
    text = out.data.decode()
    assert [line.count('"pid":') for line in text.splitlines()] == [1, 1, 1]
    assert text.endswith("\n") and '"pid":2' in text


def test_a_full_buffer_is_written_before_the_tick() -> None:
    out = io.BytesIO()
    lines = JsonLines(out, events=True, max_buffer=100)
    for pid in range(10):
        lines.on_event(event(pid))
    assert out.getvalue().count(b"\n") >= 5
    lines.close()
    assert out.getvalue().count(b"\n") == 10


def test_events_off_prints_alerts_only() -> None:
    out = io.BytesIO()
    lines = JsonLines(out, events=False)
    lines.on_event(event(1))
    lines.close()
    assert out.getvalue() == b""
