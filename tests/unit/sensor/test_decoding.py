"""Ring-buffer records that are short or of an unknown type are dropped, never a crash."""

from __future__ import annotations

from garrison.sensor.probe import DECODERS, Decoding
from garrison.sensor.process_tree import ProcessTree
from garrison.sensor.wire import EVENT_EXEC, EVENT_SYSCALL, ExecEvent, SyscallEvent


def test_truncated_records_are_dropped() -> None:
    ctx = Decoding(0.0, None, ProcessTree())
    for kind, decode in DECODERS.items():
        assert decode(kind.to_bytes(4, "little") + b"\0" * 8, ctx) is None


def test_exec_record_decodes_and_unknown_syscall_is_dropped() -> None:
    ctx = Decoding(100.0, None, ProcessTree())
    raw = ExecEvent(type=EVENT_EXEC, pid=7, tid=7, ppid=1, time_ns=2_000_000_000, args_len=8)
    raw.comm = b"sh"
    raw.filename = b"/bin/sh"
    data = bytearray(bytes(raw))
    data[ExecEvent.args.offset : ExecEvent.args.offset + 8] = b"sh\0-c\0id"
    event = DECODERS[EVENT_EXEC](bytes(data), ctx)
    assert event is not None and event.args == ["sh", "-c", "id"] and event.time == 102.0
    unknown = SyscallEvent(type=EVENT_SYSCALL, nr=0)
    assert DECODERS[EVENT_SYSCALL](bytes(unknown), ctx) is None
