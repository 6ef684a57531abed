"""RuntimeEvent factories for tests: what the sensor would decode for common actions."""

from __future__ import annotations

import os
import time
from typing import Any

from garrison.events.runtime import RuntimeEvent

CONTAINER = "0f3c9a1b2d4e"
_SYSCALL = {
    "exec": "execve",
    "open": "openat",
    "connect": "connect",
    "dup_socket": "dup2",
    "fork": "clone",
    "exit": "procexit",
    "unlink": "unlinkat",
    "rename": "renameat2",
    "chmod": "fchmodat",
    "utimes": "utimensat",
    "listen": "listen",
    "accept": "accept4",
}


def event(kind: str, **fields: Any) -> RuntimeEvent:
    base: dict[str, Any] = {
        "type": kind,
        "time": fields.pop("time", time.time()),
        "seq": 1,
        "pid": 4242,
        "tid": 4242,
        "ppid": 4200,
        "uid": 0,
        "gid": 0,
        "comm": "sh",
        "exe": "/bin/sh",
        "args": ["/bin/sh"],
        "container_id": CONTAINER,
        "ancestry": ["bash", "containerd-shim"],
        "ancestry_exe": ["/bin/bash", "/usr/bin/containerd-shim-runc-v2"],
        "syscall": _SYSCALL.get(kind, ""),
    }
    base.update(fields)
    return RuntimeEvent(**base)


def spawn(path: str, *args: str, **fields: Any) -> RuntimeEvent:
    """An exec of ``path`` with ``args`` (argv[0] is the path, comm its base name)."""
    fields.setdefault("comm", os.path.basename(path)[:15])
    fields.setdefault("exe", path)
    return event("exec", args=[path, *args], **fields)


def open_file(path: str, flags: int = os.O_RDONLY, *, fd: int = 3, **fields: Any) -> RuntimeEvent:
    fields.setdefault("comm", "cat")
    fields.setdefault("exe", "/bin/cat")
    fields.setdefault("args", ["/bin/cat", path])
    res = fd if fd >= 0 else fields.pop("res", -2)
    return event("open", path=path, open_flags=flags, fd=fd, res=res, **fields)


def connect(ip: str, port: int, **fields: Any) -> RuntimeEvent:
    fields.setdefault("sock_type", 1)
    fields.setdefault("outbound", True)
    return event("connect", dest_ip=ip, dest_port=port, fd=3, res=0, **fields)


def dup_socket(ip: str, port: int, newfd: int, **fields: Any) -> RuntimeEvent:
    return event(
        "dup_socket",
        dest_ip=ip,
        dest_port=port,
        fd=3,
        newfd=newfd,
        res=newfd,
        sock_type=1,
        **fields,
    )


def syscall(name: str, *args: int, **fields: Any) -> RuntimeEvent:
    return event("syscall", syscall=name, syscall_args=list(args), **fields)
