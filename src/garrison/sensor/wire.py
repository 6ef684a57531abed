"""The kernel → user wire format, mirrored from ``kernel/include/garrison_events.h``.

A test compares this layout with the BTF of the compiled object, so the two cannot drift.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

COMM_LEN = 16
PATH_LEN = 256
PREFIX_LEN = 64
ARGS_LEN = 512
EVENT_EXEC = 1
EVENT_FORK = 2
EVENT_EXIT = 3
EVENT_CONNECT = 4
EVENT_DUP_SOCKET = 5
EVENT_OPEN = 6
EVENT_SYSCALL = 7
EVENT_UNLINK = 8
EVENT_RENAME = 9
EVENT_CHMOD = 10
EVENT_UTIMES = 11
EVENT_LISTEN = 12
EVENT_ACCEPT = 13
EXE_OVERLAY = 0x1
EXE_UPPER_LAYER = 0x2
EXE_MEMFD = 0x4
EXE_BLOCKED = 0x8
SOCK_OUTBOUND = 0x1
NET_LISTEN = 0x1
NET_ACCEPT = 0x2
ENFORCE_DENY = 0x1
ENFORCE_DRIFT = 0x2
WATCH_READ = 0x1
WATCH_WRITE = 0x2
WATCH_EXEC_BIT = 0x4


class ExecEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("gid", ctypes.c_uint32),
        ("time_ns", ctypes.c_uint64),
        ("cgroup_id", ctypes.c_uint64),
        ("cap_effective", ctypes.c_uint64),
        ("exe_ino", ctypes.c_uint64),
        ("args_len", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("tty", ctypes.c_uint32),
        ("loginuid", ctypes.c_uint32),
        ("sid", ctypes.c_uint32),
        ("pad", ctypes.c_uint32),
        ("comm", ctypes.c_char * COMM_LEN),
        ("filename", ctypes.c_char * PATH_LEN),
        ("args", ctypes.c_char * ARGS_LEN),
    ]


class TaskEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("exit_code", ctypes.c_uint32),
        ("time_ns", ctypes.c_uint64),
        ("cgroup_id", ctypes.c_uint64),
        ("comm", ctypes.c_char * COMM_LEN),
    ]


class NetEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("fd", ctypes.c_int32),
        ("newfd", ctypes.c_int32),
        ("sock_type", ctypes.c_uint16),
        ("sock_flags", ctypes.c_uint16),
        ("family", ctypes.c_uint16),
        ("port", ctypes.c_uint16),
        ("ret", ctypes.c_int32),
        ("time_ns", ctypes.c_uint64),
        ("cgroup_id", ctypes.c_uint64),
        ("addr", ctypes.c_uint8 * 16),
        ("comm", ctypes.c_char * COMM_LEN),
    ]


class InodeKey(ctypes.Structure):
    _fields_ = [("ino", ctypes.c_uint64), ("dev", ctypes.c_uint32), ("pad", ctypes.c_uint32)]


class PathKey(ctypes.Structure):
    _fields_ = [("prefixlen", ctypes.c_uint32), ("path", ctypes.c_char * PREFIX_LEN)]


class FileEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("ret", ctypes.c_int32),
        ("mode", ctypes.c_uint32),
        ("time_ns", ctypes.c_uint64),
        ("cgroup_id", ctypes.c_uint64),
        ("cap_effective", ctypes.c_uint64),
        ("comm", ctypes.c_char * COMM_LEN),
        ("path", ctypes.c_char * PATH_LEN),
    ]


class FsopEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("mode", ctypes.c_uint32),
        ("time_ns", ctypes.c_uint64),
        ("cgroup_id", ctypes.c_uint64),
        ("cap_effective", ctypes.c_uint64),
        ("comm", ctypes.c_char * COMM_LEN),
        ("path", ctypes.c_char * PATH_LEN),
        ("path2", ctypes.c_char * PATH_LEN),
    ]


class SyscallEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_uint32),
        ("nr", ctypes.c_uint32),
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("ppid", ctypes.c_uint32),
        ("uid", ctypes.c_uint32),
        ("time_ns", ctypes.c_uint64),
        ("cgroup_id", ctypes.c_uint64),
        ("cap_effective", ctypes.c_uint64),
        ("args", ctypes.c_uint64 * 3),
        ("comm", ctypes.c_char * COMM_LEN),
    ]


WIRE_STRUCTS = {
    "garrison_syscall_event": SyscallEvent,
    "garrison_path_key": PathKey,
    "garrison_inode_key": InodeKey,
    "garrison_file_event": FileEvent,
    "garrison_fsop_event": FsopEvent,
    "garrison_exec_event": ExecEvent,
    "garrison_task_event": TaskEvent,
    "garrison_net_event": NetEvent,
}


_CODES: dict[Any, str] = {
    ctypes.c_uint8: "B",
    ctypes.c_uint16: "H",
    ctypes.c_uint32: "I",
    ctypes.c_int32: "i",
    ctypes.c_uint64: "Q",
}


def unpacker(layout: type[ctypes.Structure]) -> struct.Struct:
    """A ``struct.Struct`` reading one record of ``layout`` as a flat tuple, field by field.

    One ``unpack_from`` costs about what ``from_buffer_copy`` does, and the tuple's items are
    then plain locals, where each ctypes attribute read is a descriptor call of its own.
    Character and byte arrays come as one bytes item; other arrays as one item per element.
    Padding follows the ctypes layout, so the two can be compared (tests do).
    """
    parts, at = ["<"], 0
    for name, kind, *_ in layout._fields_:
        offset = getattr(layout, name).offset
        element: Any = getattr(kind, "_type_", None)
        if offset > at:
            parts.append(f"{offset - at}x")
        length = getattr(kind, "_length_", None)
        if length is None:
            parts.append(_CODES[kind])
        elif element in (ctypes.c_char, ctypes.c_uint8):
            parts.append(f"{length}s")
        else:
            parts.append(f"{length}{_CODES[element]}")
        at = offset + ctypes.sizeof(kind)
    size = ctypes.sizeof(layout)
    if size > at:
        parts.append(f"{size - at}x")
    unpacking = struct.Struct("".join(parts))
    if unpacking.size != size:
        raise ValueError(f"{layout.__name__}: unpacker is {unpacking.size} bytes, not {size}")
    return unpacking
