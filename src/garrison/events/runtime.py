"""Runtime events from the node sensor."""

from __future__ import annotations

import msgspec

HOST_CONTAINER = "host"  # container_id of a process outside any container
# container_id of an event read after its container's cgroup was removed, whose pid already
# belongs to another process: which container it came from cannot be known
UNKNOWN_CONTAINER = "unknown"
NOT_A_CONTAINER = frozenset({HOST_CONTAINER, UNKNOWN_CONTAINER})
# An attribute (never encoded) the sensor sets on events it vouches for: two events with equal
# keys agree on every field but the clock and sequence ones, so the rules engine may reuse
# the first one's matching rules for the second (see Engine.evaluate).
MEMO_KEY = "memo_key"


class RuntimeEvent(msgspec.Struct, kw_only=True, dict=True):
    """One kernel event, attributed. ``container_id`` is ``host`` outside containers and
    ``unknown`` where a late event's container could no longer be told. (``dict=True``: an
    instance may carry attributes that are not fields, such as ``MEMO_KEY``; they are
    neither encoded nor copied.)"""

    type: str
    time: float
    seq: int = 0  # the sensor's own sequence number (Falco's evt.num), from 1
    pid: int
    tid: int
    ppid: int
    uid: int
    gid: int
    comm: str
    exe: str
    args: list[str]
    container_id: str
    ancestry: list[str]  # names of the parent, grandparent, ...
    ancestry_exe: list[str] = msgspec.field(default_factory=list)  # their executables
    parent_args: list[str] = msgspec.field(default_factory=list)  # the parent's argv
    process_start: float = 0.0  # when the process was created (0: unknown)
    tty: int = 0  # controlling terminal (tty_nr); 0: none
    loginuid: int = -1  # audit login uid; -1: not from a login
    sid: int = 0  # session id: the pid of the session leader (a shell, an exec session)
    session_leader: str = ""  # the session leader's name, where the sensor knows it
    cgroup_id: int = 0
    cap_effective: int = 0
    exe_ino: int = 0
    exe_upper_layer: bool = False  # Falco's proc.is_exe_upper_layer: written after start
    exe_from_memfd: bool = False  # Falco's proc.is_exe_from_memfd: fileless execution
    blocked: bool = False  # exec: the sensor killed the new image before it ran (policy)
    exit_code: int | None = None  # exit events: the status as wait(2) reports it
    res: int = 0  # the syscall's result where known: a descriptor, 0, or -errno
    fd: int = -1  # connect, dup_socket: the socket; open: the new descriptor (-1: failed)
    newfd: int = -1  # dup_socket: 0, 1 or 2
    sock_type: int = 0  # connect, dup_socket: SOCK_STREAM (1), SOCK_DGRAM (2); 0 unknown
    outbound: bool = False  # connect; dup_socket: a socket this host connected out (a client)
    dest_ip: str = ""  # connect: the server (Falco's fd.sip); dup_socket, accept: the peer
    dest_port: int = 0  # connect: Falco's fd.sport; dup_socket, accept: the peer's port
    local_port: int = 0  # listen, accept: the port this host serves
    path: str = ""  # open, unlink, rename, chmod, utimes: the path as the process gave it
    open_flags: int = 0  # open: open(2) flags
    mode: int = 0  # open: permissions of a created file; chmod: the new mode
    new_path: str = ""  # rename: the new path (path is the old one)
    # Falco's evt.type: execve, clone, procexit, openat, connect, dup2, or the watched
    # syscall's own name (ptrace, setuid, unshare, mount, init_module, socket, ...)
    syscall: str = ""
    syscall_args: list[int] = msgspec.field(default_factory=list)  # syscall: first three
    # container and Kubernetes identity, where the sensor knows it
    container_name: str = ""
    image: str = ""
    privileged: bool = False
    pod: str = ""
    namespace: str = ""
    workload: str = ""  # the pod's controller (deployment/web), from the Kubernetes API
    pod_labels: dict[str, str] = msgspec.field(default_factory=dict)
