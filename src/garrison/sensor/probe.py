"""Loads the sensor's BPF objects through libbpf, attaches them and drains the ring buffer."""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import msgspec

from garrison.events.errors import GarrisonError
from garrison.events.runtime import MEMO_KEY, RuntimeEvent
from garrison.sensor.attribution import CgroupResolver, container_of
from garrison.sensor.containers import ContainerInfo, ContainerMetadata
from garrison.sensor.kube import PodInfo
from garrison.sensor.libbpf import Libbpf, LibbpfError, SampleFn
from garrison.sensor.preflight import ensure_tracefs
from garrison.sensor.process_tree import Node, ProcessTree
from garrison.sensor.ring import MappedRing
from garrison.sensor.syscalls import EVENT_SYSCALLS, WATCHED_SYSCALLS
from garrison.sensor.syscalls import supported as syscalls_supported
from garrison.sensor.wire import (
    ARGS_LEN,
    ENFORCE_DENY,
    ENFORCE_DRIFT,
    EVENT_ACCEPT,
    EVENT_CHMOD,
    EVENT_CONNECT,
    EVENT_DUP_SOCKET,
    EVENT_EXEC,
    EVENT_EXIT,
    EVENT_FORK,
    EVENT_LISTEN,
    EVENT_OPEN,
    EVENT_RENAME,
    EVENT_SYSCALL,
    EVENT_UNLINK,
    EVENT_UTIMES,
    EXE_BLOCKED,
    EXE_MEMFD,
    EXE_UPPER_LAYER,
    NET_ACCEPT,
    NET_LISTEN,
    PATH_LEN,
    PREFIX_LEN,
    SOCK_OUTBOUND,
    WATCH_EXEC_BIT,
    WATCH_READ,
    WATCH_WRITE,
    ExecEvent,
    FileEvent,
    FsopEvent,
    InodeKey,
    NetEvent,
    PathKey,
    SyscallEvent,
    TaskEvent,
    unpacker,
)

OBJECT_DIR = Path(__file__).resolve().parents[3] / "build" / "kernel"
PROCESS_OBJECT = "process.bpf.o"
NET_OBJECT = "net.bpf.o"
FILE_OBJECT = "file.bpf.o"
SYSCALL_OBJECT = "syscalls.bpf.o"
# (prefix, what is reported): matched in the kernel on absolute paths. Secrets are watched
# for reads and writes; directories whose reads are routine (/etc, binaries, logs, homes)
# only for writes, so reading them costs one map lookup in the kernel and nothing more.
READ_WRITE = WATCH_READ | WATCH_WRITE
DEFAULT_WATCHED_PATHS: tuple[tuple[str, int], ...] = (
    ("/etc/shadow", READ_WRITE),
    ("/etc/gshadow", READ_WRITE),
    ("/etc/sudoers", READ_WRITE),
    ("/etc/ld.so.preload", READ_WRITE),
    ("/etc/kubernetes/", READ_WRITE),
    ("/var/lib/kubelet/", READ_WRITE),
    ("/var/run/secrets/", READ_WRITE),
    ("/run/secrets/", READ_WRITE),
    ("/root/.ssh/", READ_WRITE),
    ("/etc/ssh/ssh_host_", READ_WRITE),
    ("/proc/sys/kernel/core_pattern", READ_WRITE),
    ("/proc/sys/kernel/modprobe", READ_WRITE),
    ("/proc/kcore", READ_WRITE),
    ("/dev/mem", READ_WRITE),
    ("/var/run/docker.sock", READ_WRITE),
    ("/run/containerd/containerd.sock", READ_WRITE),
    ("/etc/", WATCH_WRITE),
    ("/bin/", WATCH_WRITE | WATCH_EXEC_BIT),
    ("/sbin/", WATCH_WRITE | WATCH_EXEC_BIT),
    ("/usr/bin/", WATCH_WRITE | WATCH_EXEC_BIT),
    ("/usr/sbin/", WATCH_WRITE | WATCH_EXEC_BIT),
    ("/usr/local/bin/", WATCH_WRITE | WATCH_EXEC_BIT),
    ("/lib/", WATCH_WRITE),
    ("/usr/lib/", WATCH_WRITE),
    ("/dev/shm/", WATCH_WRITE | WATCH_EXEC_BIT),  # noqa: S108 - watched, not used
    ("/tmp/", WATCH_EXEC_BIT),  # noqa: S108 - chmod +x of a download: drift in the making
    ("/var/tmp/", WATCH_EXEC_BIT),  # noqa: S108
    ("/var/log/", WATCH_WRITE),
    ("/root/", WATCH_WRITE | WATCH_EXEC_BIT),
    ("/home/", WATCH_WRITE | WATCH_EXEC_BIT),
    ("/sys/fs/cgroup/", WATCH_WRITE),
)
# programs on syscalls only some architectures have (x86_64 keeps open, rename, chmod, ...)
LEGACY_PROGRAMS = frozenset(
    {
        b"handle_open",
        b"handle_open_exit",
        b"handle_unlink",
        b"handle_rename",
        b"handle_renameat",
        b"handle_chmod",
        b"handle_utimes",
        b"handle_accept_exit",
    }
)
OBJECTS = (
    (PROCESS_OBJECT, (b"handle_exec", b"handle_fork", b"handle_exit"), b"events", b"drops"),
    (
        NET_OBJECT,
        (
            b"handle_connect",
            b"handle_connect_exit",
            b"handle_sock_state",
            b"handle_dup2",
            b"handle_dup3",
            b"handle_listen",
            b"handle_accept4_exit",
            b"handle_accept_exit",
        ),
        b"net_events",
        b"net_drops",
    ),
    (
        FILE_OBJECT,
        (
            b"handle_openat",
            b"handle_open",
            b"handle_openat_exit",
            b"handle_open_exit",
            b"handle_unlinkat",
            b"handle_unlink",
            b"handle_renameat2",
            b"handle_renameat",
            b"handle_rename",
            b"handle_fchmodat",
            b"handle_chmod",
            b"handle_utimensat",
            b"handle_utimes",
        ),
        b"file_events",
        b"file_drops",
    ),
    (SYSCALL_OBJECT, (b"handle_sys_enter",), b"syscall_events", b"syscall_drops"),
)


# the least time between two drains of the ring buffer (see ProcessProbe.poll); the ring
# (16 MiB) holds ~1.5 s of the benchmark's 27,000 events/s, so this costs no room
DRAIN_INTERVAL = 0.01


def boot_offset() -> float:
    """Seconds to add to a CLOCK_BOOTTIME reading to get wall-clock time."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def _container(pid: int, cgroup_id: int, cgroups: CgroupResolver | None) -> str:
    if cgroups is None:
        return container_of(pid)
    found = cgroups.container(cgroup_id)
    return found if found is not None else cgroups.container_of_process(pid, cgroup_id)


class PodLookup(Protocol):
    def lookup(self, container_id: str) -> PodInfo | None: ...


# How long a process's identity (container, pod, image) is reused before it is looked up
# again, in the kernel's nanoseconds: a pod the watch learns of late shows within this.
IDENTITY_TTL_NS = 500_000_000
_replace = msgspec.structs.replace
# events a process repeats alike (the same open, the same connect): they carry a MEMO_KEY, so
# the rules run once per kind of repeat; a process's first events (exec, fork) never repeat
_REPEATING = frozenset(
    {"open", "connect", "dup_socket", "listen", "accept", "unlink", "rename", "chmod", "utimes"}
)


@dataclass(slots=True)
class _Identity:
    """What every event of one process image shares, and what it was derived from.

    It holds while the process, its parent and its session leader are the very tree nodes
    it was built from (a fork, exec or exit replaces a node), in the same cgroup, for at most
    ``IDENTITY_TTL_NS``.
    """

    serial: int  # unique among the identities this decoding made: names it in memo keys
    node: Node | None
    parent: Node | None
    leader: Node | None
    ppid: int
    cgroup_id: int
    until_ns: int
    comm_raw: bytes
    comm: str
    template: RuntimeEvent


@dataclass
class Decoding:
    """What decoding needs besides the bytes: clocks, cgroup names, the process tree."""

    offset: float
    cgroups: CgroupResolver | None
    tree: ProcessTree
    containers: ContainerMetadata | None = None
    pods: PodLookup | None = None  # this node's pods from the Kubernetes API, when watched
    seq: int = 0
    max_identities: int = 65536
    _identities: dict[int, _Identity] = field(default_factory=dict)
    _serial: int = 0

    def event(
        self,
        kind: str,
        wire: tuple[int, int, int, int, int, int, int, int, bytes],
        **fields: Any,
    ) -> RuntimeEvent:
        """A RuntimeEvent of ``kind`` with ``fields``, from the part every wire struct has:
        ``wire`` is (pid, tid, ppid, uid, gid, time_ns, cgroup_id, cap_effective, comm).

        The process's image (exe, argv, terminal, ...), its ancestors and its container come
        from the process tree and the runtime's state, looked up once per process image
        (``_Identity``) and copied into each of its events.
        """
        pid, tid, ppid, uid, gid, time_ns, cgroup_id, cap, comm = wire
        self.seq += 1
        known = self._identities.get(pid)
        nodes = self.tree.nodes
        if (
            known is None
            or time_ns >= known.until_ns
            or known.ppid != ppid
            or known.cgroup_id != cgroup_id
            or nodes.get(pid) is not known.node
            or nodes.get(ppid) is not known.parent
            or (known.template.sid and nodes.get(known.template.sid) is not known.leader)
        ):
            known = self._identify(pid, ppid, cgroup_id, time_ns)
        if comm != known.comm_raw:
            known.comm_raw, known.comm = comm, comm.partition(b"\0")[0].decode("utf-8", "replace")
        template = known.template
        event = _replace(
            template,
            type=kind,
            time=time_ns / 1e9 + self.offset,
            seq=self.seq,
            tid=tid,
            uid=uid,
            gid=gid,
            comm=known.comm,
            cap_effective=cap,
            syscall=fields.pop("syscall", None) or EVENT_SYSCALLS.get(kind, ""),
            # each event its own lists: a consumer may keep or change one
            args=list(template.args),
            ancestry=list(template.ancestry),
            ancestry_exe=list(template.ancestry_exe),
            parent_args=list(template.parent_args),
            pod_labels=dict(template.pod_labels) if template.pod_labels else {},
            **fields,
        )
        if kind in _REPEATING:  # every field but time and seq is in the key
            key = (known.serial, kind, tid, uid, gid, comm, cap, *fields.values())
            setattr(event, MEMO_KEY, key)
        return event

    def _identify(self, pid: int, ppid: int, cgroup_id: int, time_ns: int) -> _Identity:
        nodes = self.tree.nodes
        node = nodes.get(pid)
        parent = nodes.get(ppid)
        image = node or _UNKNOWN_PROCESS
        lineage = self.tree.lineage(ppid)
        container_id = _container(pid, cgroup_id, self.cgroups)
        info = self.containers.lookup(container_id) if self.containers is not None else None
        if info is None:
            info = _NO_CONTAINER
        pod = self.pods.lookup(container_id) if self.pods is not None else None
        leader = nodes.get(image.sid) if image.sid else None
        template = RuntimeEvent(
            type="",
            time=0.0,
            pid=pid,
            tid=pid,
            ppid=ppid,
            uid=-1,
            gid=-1,
            comm="",
            exe=image.exe,
            args=list(image.args),
            container_id=container_id,
            ancestry=lineage.names,
            ancestry_exe=lineage.exes,
            parent_args=lineage.parent_args,
            process_start=image.start,
            tty=image.tty,
            loginuid=image.loginuid,
            sid=image.sid,
            session_leader=leader.comm if leader is not None else "",
            cgroup_id=cgroup_id,
            exe_upper_layer=image.exe_upper_layer,
            exe_from_memfd=image.exe_from_memfd,
            container_name=pod.container if pod is not None else info.name,
            image=pod.image if pod is not None else info.image,
            privileged=info.privileged,
            pod=pod.name if pod is not None else info.pod,
            namespace=pod.namespace if pod is not None else info.namespace,
            workload=pod.workload if pod is not None else "",
            pod_labels=dict(pod.labels) if pod is not None else {},
        )
        if len(self._identities) >= self.max_identities:
            self._identities.clear()
        self._serial += 1
        known = _Identity(
            self._serial,
            node,
            parent,
            leader,
            ppid,
            cgroup_id,
            time_ns + IDENTITY_TTL_NS,
            b"",
            "",
            template,
        )
        self._identities[pid] = known
        return known

    def forget(self, pid: int) -> None:
        """The process has exited: its identity goes with it."""
        self._identities.pop(pid, None)


_UNKNOWN_PROCESS = Node(ppid=0, comm="")
_NO_CONTAINER = ContainerInfo(id="")
_EXEC = unpacker(ExecEvent)
_TASK = unpacker(TaskEvent)
_NET = unpacker(NetEvent)
_FILE = unpacker(FileEvent)
_FSOP = unpacker(FsopEvent)
_SYSCALL = unpacker(SyscallEvent)
_ARGS_AT = ExecEvent.args.offset  # c_char arrays stop at a NUL: argv is sliced from the bytes


def _text(raw: bytes) -> str:
    """A NUL-terminated (or NUL-padded) C string."""
    return raw.partition(b"\0")[0].decode("utf-8", "replace")


def decode_exec(data: bytes, ctx: Decoding) -> RuntimeEvent | None:
    if len(data) < _EXEC.size:
        return None
    (_, pid, tid, ppid, uid, gid, time_ns, cgroup_id, cap, exe_ino, args_len, flags, tty,
     loginuid, sid, _, comm, filename, _) = _EXEC.unpack_from(data)  # fmt: skip
    args_bytes = data[_ARGS_AT : _ARGS_AT + min(args_len, ARGS_LEN)]
    ctx.tree.exec(
        pid,
        ppid,
        _text(comm),
        _text(filename),
        tuple(a.decode("utf-8", "replace") for a in args_bytes.split(b"\0") if a),
        tty=tty,
        loginuid=-1 if loginuid == 0xFFFFFFFF else loginuid,
        sid=sid,
        exe_upper_layer=bool(flags & EXE_UPPER_LAYER),
        exe_from_memfd=bool(flags & EXE_MEMFD),
    )
    return ctx.event(
        "exec",
        (pid, tid, ppid, uid, gid, time_ns, cgroup_id, cap, comm),
        exe_ino=exe_ino,
        blocked=bool(flags & EXE_BLOCKED),
    )


def decode_task(data: bytes, ctx: Decoding) -> RuntimeEvent | None:
    """A fork (new process) or an exit: updates the tree, and is an event of its own."""
    if len(data) < _TASK.size:
        return None
    kind, pid, ppid, exit_code, time_ns, cgroup_id, comm = _TASK.unpack_from(data)
    wire = (pid, pid, ppid, -1, -1, time_ns, cgroup_id, 0, comm)
    if kind == EVENT_FORK:
        ctx.tree.fork(pid, ppid, _text(comm), time_ns / 1e9 + ctx.offset)
        return ctx.event("fork", wire)
    event = ctx.event("exit", wire, exit_code=exit_code)
    ctx.tree.exit(pid)
    ctx.forget(pid)
    return event


def _address(family: int, addr: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, addr[:4])
    if family == socket.AF_INET6:
        return socket.inet_ntop(socket.AF_INET6, addr[:16])
    return ""


def decode_net(data: bytes, ctx: Decoding) -> RuntimeEvent | None:
    if len(data) < _NET.size:
        return None
    (kind, pid, tid, ppid, uid, fd, newfd, sock_type, sock_flags, family, port, ret, time_ns,
     cgroup_id, addr, comm) = _NET.unpack_from(data)  # fmt: skip
    wire = (pid, tid, ppid, uid, -1, time_ns, cgroup_id, 0, comm)
    if kind in (EVENT_LISTEN, EVENT_ACCEPT):
        accepted = kind == EVENT_ACCEPT
        return ctx.event(
            "accept" if accepted else "listen",
            wire,
            fd=fd,
            res=fd,
            sock_type=sock_type,
            local_port=newfd,
            dest_ip=_address(family, addr) if accepted else "",
            dest_port=port if accepted else 0,
        )
    duped = kind == EVENT_DUP_SOCKET
    return ctx.event(
        "dup_socket" if duped else "connect",
        wire,
        fd=fd,
        newfd=newfd if duped else -1,
        res=newfd if duped else ret,
        sock_type=sock_type,
        outbound=not duped or bool(sock_flags & SOCK_OUTBOUND),
        dest_ip=_address(family, addr),
        dest_port=port,
    )


def decode_file(data: bytes, ctx: Decoding) -> RuntimeEvent | None:
    if len(data) < _FILE.size:
        return None
    (_, pid, tid, ppid, uid, flags, ret, mode, time_ns, cgroup_id, cap, comm,
     path) = _FILE.unpack_from(data)  # fmt: skip
    return ctx.event(
        "open",
        (pid, tid, ppid, uid, -1, time_ns, cgroup_id, cap, comm),
        path=_text(path),
        open_flags=flags,
        mode=mode,
        res=ret,
        fd=ret if ret >= 0 else -1,
    )


_FSOP_KINDS = {
    EVENT_UNLINK: "unlink",
    EVENT_RENAME: "rename",
    EVENT_CHMOD: "chmod",
    EVENT_UTIMES: "utimes",
}


def decode_fsop(data: bytes, ctx: Decoding) -> RuntimeEvent | None:
    """A removal, rename, permission change or explicit time change of a file."""
    if len(data) < _FSOP.size:
        return None
    (kind, pid, tid, ppid, uid, mode, time_ns, cgroup_id, cap, comm, path,
     path2) = _FSOP.unpack_from(data)  # fmt: skip
    return ctx.event(
        _FSOP_KINDS[kind],
        (pid, tid, ppid, uid, -1, time_ns, cgroup_id, cap, comm),
        path=_text(path),
        new_path=_text(path2),
        mode=mode,
    )


def decode_syscall(data: bytes, ctx: Decoding) -> RuntimeEvent | None:
    if len(data) < _SYSCALL.size:
        return None
    (_, nr, pid, tid, ppid, uid, time_ns, cgroup_id, cap, arg0, arg1, arg2,
     comm) = _SYSCALL.unpack_from(data)  # fmt: skip
    name = WATCHED_SYSCALLS.get(nr)
    if name is None:
        return None
    return ctx.event(
        "syscall",
        (pid, tid, ppid, uid, -1, time_ns, cgroup_id, cap, comm),
        syscall=name,
        syscall_args=[arg0, arg1, arg2],
    )


DECODERS: dict[int, Callable[[bytes, Decoding], RuntimeEvent | None]] = {
    EVENT_EXEC: decode_exec,
    EVENT_FORK: decode_task,
    EVENT_EXIT: decode_task,
    EVENT_CONNECT: decode_net,
    EVENT_DUP_SOCKET: decode_net,
    EVENT_LISTEN: decode_net,
    EVENT_ACCEPT: decode_net,
    EVENT_OPEN: decode_file,
    EVENT_SYSCALL: decode_syscall,
    **dict.fromkeys(_FSOP_KINDS, decode_fsop),
}


def _path_buffer(path: str) -> ctypes.Array[ctypes.c_char]:
    """A NUL-padded key of the kernel's path maps (GARRISON_PATH_LEN bytes)."""
    data = path.encode()[: PATH_LEN - 1]
    return ctypes.create_string_buffer(data, PATH_LEN)


def path_key(prefix: str) -> PathKey:
    """The LPM-trie key of a watched prefix.

    The kernel reads a path into PREFIX_LEN bytes ending in a NUL, so at most PREFIX_LEN - 1
    bytes of a prefix can be compared; longer prefixes are cut there.
    """
    data = prefix.encode()[: PREFIX_LEN - 1]
    return PathKey(len(data) * 8, data)


class ProcessProbe:
    """The process programs (exec, fork, exit) and their ring buffer. Close it to detach."""

    def __init__(
        self,
        on_event: Callable[[RuntimeEvent], None],
        object_dir: Path = OBJECT_DIR,
        watched_paths: tuple[tuple[str, int], ...] = DEFAULT_WATCHED_PATHS,
        pods: PodLookup | None = None,
        *,
        accepts: bool = True,
        mapped: bool = False,
        drain_interval: float = DRAIN_INTERVAL,
    ) -> None:
        self.libbpf = Libbpf.load()
        tracefs = ensure_tracefs()  # tracepoints attach through it; a fresh machine lacks it
        if tracefs is not None:
            raise GarrisonError(str(tracefs))
        # libbpf's ring_buffer__poll with a callback per record, or (mapped=True) the ring's
        # pages read directly; bench/sensor.py measures both, and the callback was no slower
        self.mapped = mapped
        self._mapped: MappedRing | None = None
        self.drain_interval = drain_interval
        self._drained_at = 0.0
        self.on_event = on_event
        self.offset = boot_offset()
        self.decoded = 0
        self.cgroups = CgroupResolver()
        self.tree = ProcessTree()
        self.tree.seed()
        self.decoding = Decoding(self.offset, self.cgroups, self.tree, ContainerMetadata(), pods)
        self._objects: list[int] = []
        self._rb: int | None = None
        self._ring_fd = -1
        self._links: list[int] = []
        self._drops_fds: list[int] = []
        self._callback = SampleFn(self._sample)  # kept alive as long as the ring buffer
        self._process_obj = 0
        self.skipped: list[str] = []
        self._enforce_mode = 0
        try:
            for object_name, programs, events_map, drops_map in OBJECTS:
                if object_name == SYSCALL_OBJECT and not syscalls_supported():
                    continue  # syscall numbers differ off x86_64: not watched there yet
                obj = self._load(object_dir / object_name, programs, events_map, drops_map)
                if object_name == PROCESS_OBJECT:
                    self._process_obj = obj
                if object_name == FILE_OBJECT:
                    self._watch(obj, watched_paths)
                elif object_name == SYSCALL_OBJECT:
                    self._watch_syscalls(obj)
                elif object_name == NET_OBJECT:
                    self._configure_net(obj, NET_LISTEN | (NET_ACCEPT if accepts else 0))
        except BaseException:
            self.close()
            raise

    def _load(self, path: Path, programs: tuple[bytes, ...], events: bytes, drops: bytes) -> int:
        lib = self.libbpf.lib
        ptr, rc = self.libbpf.check_ptr, self.libbpf.check_rc
        obj = ptr("bpf_object__open_file", lib.bpf_object__open_file(str(path).encode(), None))
        self._objects.append(obj)
        if self._ring_fd >= 0:
            # every object writes into the first one's ring buffer: one ring keeps the
            # kernel's order across programs (an exec is read before the open it makes)
            ring = ptr(f"find {events.decode()}", lib.bpf_object__find_map_by_name(obj, events))
            rc(
                f"share the ring buffer with {path.name}",
                lib.bpf_map__reuse_fd(ring, self._ring_fd),
            )
        rc(f"bpf_object__load {path.name}", lib.bpf_object__load(obj))
        for name in programs:
            program = ptr(f"find {name.decode()}", lib.bpf_object__find_program_by_name(obj, name))
            try:
                self._links.append(ptr("bpf_program__attach", lib.bpf_program__attach(program)))
            except LibbpfError:
                if name not in LEGACY_PROGRAMS:
                    raise
                self.skipped.append(name.decode())  # an old syscall this kernel lacks
        find_map = lib.bpf_object__find_map_fd_by_name
        self._drops_fds.append(rc(f"find map {drops.decode()}", find_map(obj, drops)))
        if self._ring_fd < 0:
            self._ring_fd = rc(f"find map {events.decode()}", find_map(obj, events))
            if self.mapped:
                ring = ptr(f"find {events.decode()}", lib.bpf_object__find_map_by_name(obj, events))
                self._mapped = MappedRing(self._ring_fd, int(lib.bpf_map__max_entries(ring)))
            else:
                self._rb = ptr(
                    "ring_buffer__new",
                    lib.ring_buffer__new(self._ring_fd, self._callback, None, None),
                )
        return int(obj)

    def _watch(self, obj: int, prefixes: tuple[tuple[str, int], ...]) -> None:
        lib = self.libbpf.lib
        fd = self.libbpf.check_rc(
            "find map watched_paths", lib.bpf_object__find_map_fd_by_name(obj, b"watched_paths")
        )
        for prefix, mode in prefixes:
            key = path_key(prefix)
            value = ctypes.c_uint8(mode)
            updated = lib.bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(value), 0)
            self.libbpf.check_rc(f"watch {prefix}", updated)

    def _configure_net(self, obj: int, flags: int) -> None:
        """Which optional network events leave the kernel (listen always; accept on demand)."""
        lib = self.libbpf.lib
        fd = self.libbpf.check_rc(
            "find map net_config", lib.bpf_object__find_map_fd_by_name(obj, b"net_config")
        )
        key, value = ctypes.c_uint32(0), ctypes.c_uint32(flags)
        updated = lib.bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(value), 0)
        self.libbpf.check_rc("configure network events", updated)

    def _watch_syscalls(self, obj: int) -> None:
        lib = self.libbpf.lib
        fd = self.libbpf.check_rc(
            "find map watched_syscalls",
            lib.bpf_object__find_map_fd_by_name(obj, b"watched_syscalls"),
        )
        ignored = self.libbpf.check_rc(
            "find map ignored_tgid", lib.bpf_object__find_map_fd_by_name(obj, b"ignored_tgid")
        )
        zero, me = ctypes.c_uint32(0), ctypes.c_uint32(os.getpid())
        updated = lib.bpf_map_update_elem(ignored, ctypes.byref(zero), ctypes.byref(me), 0)
        self.libbpf.check_rc("ignore the sensor's own syscalls", updated)
        one = ctypes.c_uint8(1)
        for nr in WATCHED_SYSCALLS:
            key = ctypes.c_uint32(nr)
            updated = lib.bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(one), 0)
            self.libbpf.check_rc(f"watch syscall {nr}", updated)

    # -- enforcement (opt-in): the process object kills matching execs in the kernel ------
    def _map_fd(self, name: bytes) -> int:
        lib = self.libbpf.lib
        found = lib.bpf_object__find_map_fd_by_name(self._process_obj, name)
        return int(self.libbpf.check_rc(f"find map {name.decode()}", found))

    def _set_mode(self, flag: int, on: bool) -> None:
        self._enforce_mode = self._enforce_mode | flag if on else self._enforce_mode & ~flag
        key, value = ctypes.c_uint32(0), ctypes.c_uint32(self._enforce_mode)
        updated = self.libbpf.lib.bpf_map_update_elem(
            self._map_fd(b"enforce"), ctypes.byref(key), ctypes.byref(value), 0
        )
        self.libbpf.check_rc("update enforce", updated)

    def _put(self, map_name: bytes, key: ctypes._CData) -> None:
        one = ctypes.c_uint8(1)
        fd = self._map_fd(map_name)
        updated = self.libbpf.lib.bpf_map_update_elem(fd, ctypes.byref(key), ctypes.byref(one), 0)
        self.libbpf.check_rc(f"update {map_name.decode()}", updated)

    def deny_executables(self, paths: tuple[str, ...]) -> list[str]:
        """Kill every exec of these files, by the path given to exec and by the file itself
        (any other path or link to it). Returns the paths that do not exist (path-only)."""
        missing: list[str] = []
        for path in paths:
            self._put(b"deny_paths", _path_buffer(path))
            try:
                info = os.stat(path)
            except OSError:
                missing.append(path)
                continue
            kernel_dev = (os.major(info.st_dev) << 20) | os.minor(info.st_dev)
            self._put(b"deny_inodes", InodeKey(info.st_ino, kernel_dev, 0))
        self._set_mode(ENFORCE_DENY, bool(paths))
        return missing

    def allow_drift(self, paths: set[str]) -> None:
        for path in paths:
            self._put(b"allow_paths", _path_buffer(path))

    def block_drift(self, cgroup_id: int, block: bool) -> None:
        """Kill drifted executables (upper layer or memfd) in this container's cgroup."""
        key = ctypes.c_uint64(cgroup_id)
        if block:
            self._put(b"block_drift", key)
            if not self._enforce_mode & ENFORCE_DRIFT:
                self._set_mode(ENFORCE_DRIFT, True)
        else:
            self.libbpf.lib.bpf_map_delete_elem(self._map_fd(b"block_drift"), ctypes.byref(key))

    def _sample(self, ctx: int, data: int, size: int) -> int:
        self._record(ctypes.string_at(data, size))
        return 0

    def _record(self, raw: bytes) -> None:
        decode = DECODERS.get(int.from_bytes(raw[:4], "little"))
        event = decode(raw, self.decoding) if decode is not None else None
        if event is not None:
            self.decoded += 1
            self.on_event(event)

    def poll(self, timeout_ms: int = 100) -> int:
        """Decode what the ring buffer holds, waiting up to ``timeout_ms`` for something.

        Drains are at least ``drain_interval`` apart: records gather in the ring meanwhile
        (the kernel wakes a reader only once it has caught up, so a reader that drains each
        record as it comes is woken for nearly each one), and each wake-up, with the system
        calls and output flush around it, is paid once per batch instead.
        A signal (Ctrl-C, SIGTERM) interrupting the wait is not an error: nothing was read.
        """
        pause = self._drained_at + self.drain_interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        try:
            return self._poll(timeout_ms)
        finally:
            self._drained_at = time.monotonic()

    def _poll(self, timeout_ms: int) -> int:
        if self._mapped is not None:
            return self._mapped.poll(self._record, timeout_ms)
        polled = self.libbpf.lib.ring_buffer__poll(self._rb, timeout_ms)
        if polled == -errno.EINTR:
            return 0
        return int(self.libbpf.check_rc("ring_buffer__poll", polled))

    def drops(self) -> int:
        """Events the kernel side could not queue (ring buffer full), summed over CPUs."""
        cpus = self.libbpf.lib.libbpf_num_possible_cpus()
        total = 0
        for fd in self._drops_fds:
            values = (ctypes.c_uint64 * max(1, cpus))()
            key = ctypes.c_uint32(0)
            if self.libbpf.lib.bpf_map_lookup_elem(fd, ctypes.byref(key), values) == 0:
                total += sum(values)
        return total

    def close(self) -> None:
        lib = self.libbpf.lib
        if self._rb:
            lib.ring_buffer__free(self._rb)
            self._rb = None
        if self._mapped is not None:
            self._mapped.close()
            self._mapped = None
        for link in self._links:
            lib.bpf_link__destroy(link)
        self._links = []
        for obj in self._objects:
            lib.bpf_object__close(obj)
        self._objects = []
