"""Runtime events from the node sensor."""

from __future__ import annotations

import msgspec


class RuntimeEvent(msgspec.Struct, kw_only=True):
    """One kernel event, attributed. ``container_id`` is ``host`` outside containers."""

    type: str
    time: float
    pid: int
    tid: int
    ppid: int
    uid: int
    gid: int
    comm: str
    exe: str
    args: list[str]
    container_id: str
    ancestry: list[str]
    cgroup_id: int = 0
    cap_effective: int = 0
    exe_ino: int = 0
    exe_upper_layer: bool = False  # Falco's proc.is_exe_upper_layer: written after start
    exe_from_memfd: bool = False  # Falco's proc.is_exe_from_memfd: fileless execution
    exit_code: int | None = None  # exit events: the status as wait(2) reports it
    fd: int = -1  # connect, dup_socket: the socket's descriptor
    newfd: int = -1  # dup_socket: 0, 1 or 2
    dest_ip: str = ""  # connect: Falco's fd.sip for outbound connections
    dest_port: int = 0  # connect: Falco's fd.sport
    path: str = ""  # open: the path as the process gave it (absolute)
    open_flags: int = 0  # open: open(2) flags
    syscall: str = ""  # syscall: its name (ptrace, setuid, unshare, mount, init_module, ...)
    syscall_args: list[int] = msgspec.field(default_factory=list)  # syscall: first three
