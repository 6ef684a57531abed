"""Loads the sensor's BPF objects through libbpf, attaches them and drains the ring buffer."""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from pathlib import Path

from garrison.events.runtime import RuntimeEvent
from garrison.sensor.attribution import CgroupResolver, container_of
from garrison.sensor.libbpf import Libbpf, SampleFn
from garrison.sensor.process_tree import ProcessTree
from garrison.sensor.wire import (
    ARGS_LEN,
    EVENT_EXEC,
    EVENT_EXIT,
    EVENT_FORK,
    EXE_MEMFD,
    EXE_UPPER_LAYER,
    ExecEvent,
    TaskEvent,
)

OBJECT_DIR = Path(__file__).resolve().parents[3] / "build" / "kernel"
PROCESS_OBJECT = "process.bpf.o"
PROGRAMS = (b"handle_exec", b"handle_fork", b"handle_exit")


def boot_offset() -> float:
    """Seconds to add to a CLOCK_BOOTTIME reading to get wall-clock time."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def _container(pid: int, cgroup_id: int, cgroups: CgroupResolver | None) -> str:
    found = cgroups.container(cgroup_id) if cgroups is not None else None
    return found if found is not None else container_of(pid)


def decode_exec(
    data: bytes, offset: float, cgroups: CgroupResolver | None, tree: ProcessTree
) -> RuntimeEvent | None:
    if len(data) < ctypes.sizeof(ExecEvent):
        return None
    raw = ExecEvent.from_buffer_copy(data)
    if raw.type != EVENT_EXEC:
        return None
    start = ExecEvent.args.offset  # c_char arrays stop at a NUL: slice the raw bytes instead
    args_bytes = data[start : start + min(raw.args_len, ARGS_LEN)]
    args = [a.decode("utf-8", "replace") for a in args_bytes.split(b"\0") if a]
    comm = raw.comm.decode("utf-8", "replace")
    tree.exec(raw.pid, raw.ppid, comm)
    return RuntimeEvent(
        type="exec",
        time=raw.time_ns / 1e9 + offset,
        pid=raw.pid,
        tid=raw.tid,
        ppid=raw.ppid,
        uid=raw.uid,
        gid=raw.gid,
        comm=comm,
        exe=raw.filename.decode("utf-8", "replace"),
        args=args,
        container_id=_container(raw.pid, raw.cgroup_id, cgroups),
        ancestry=tree.ancestry(raw.ppid),
        cgroup_id=raw.cgroup_id,
        cap_effective=raw.cap_effective,
        exe_ino=raw.exe_ino,
        exe_upper_layer=bool(raw.flags & EXE_UPPER_LAYER),
        exe_from_memfd=bool(raw.flags & EXE_MEMFD),
    )


def decode_task(
    data: bytes, offset: float, cgroups: CgroupResolver | None, tree: ProcessTree
) -> RuntimeEvent | None:
    """A fork (new process) or an exit: updates the tree, and is an event of its own."""
    if len(data) < ctypes.sizeof(TaskEvent):
        return None
    raw = TaskEvent.from_buffer_copy(data)
    comm = raw.comm.decode("utf-8", "replace")
    if raw.type == EVENT_FORK:
        tree.fork(raw.pid, raw.ppid, comm)
        kind = "fork"
    elif raw.type == EVENT_EXIT:
        kind = "exit"
    else:
        return None
    event = RuntimeEvent(
        type=kind,
        time=raw.time_ns / 1e9 + offset,
        pid=raw.pid,
        tid=raw.pid,
        ppid=raw.ppid,
        uid=-1,
        gid=-1,
        comm=comm,
        exe="",
        args=[],
        container_id=_container(raw.pid, raw.cgroup_id, cgroups),
        ancestry=tree.ancestry(raw.ppid),
        cgroup_id=raw.cgroup_id,
        exit_code=raw.exit_code if kind == "exit" else None,
    )
    if kind == "exit":
        tree.exit(raw.pid)
    return event


class ProcessProbe:
    """The process programs (exec, fork, exit) and their ring buffer. Close it to detach."""

    def __init__(
        self, on_event: Callable[[RuntimeEvent], None], object_dir: Path = OBJECT_DIR
    ) -> None:
        self.libbpf = Libbpf.load()
        lib = self.libbpf.lib
        ptr, rc = self.libbpf.check_ptr, self.libbpf.check_rc
        self.on_event = on_event
        self.offset = boot_offset()
        self.decoded = 0
        self.cgroups = CgroupResolver()
        self.tree = ProcessTree()
        self.tree.seed()
        self._obj: int | None = None
        self._rb: int | None = None
        self._links: list[int] = []
        path = str(object_dir / PROCESS_OBJECT).encode()
        try:
            self._obj = ptr("bpf_object__open_file", lib.bpf_object__open_file(path, None))
            rc("bpf_object__load", lib.bpf_object__load(self._obj))
            for name in PROGRAMS:
                found = lib.bpf_object__find_program_by_name(self._obj, name)
                program = ptr(f"find program {name.decode()}", found)
                self._links.append(ptr("bpf_program__attach", lib.bpf_program__attach(program)))
            find_map = lib.bpf_object__find_map_fd_by_name
            self._events_fd = rc("find map events", find_map(self._obj, b"events"))
            self._drops_fd = rc("find map drops", find_map(self._obj, b"drops"))
            self._callback = SampleFn(self._sample)  # kept alive as long as the ring buffer
            ring = lib.ring_buffer__new(self._events_fd, self._callback, None, None)
            self._rb = ptr("ring_buffer__new", ring)
        except BaseException:
            self.close()
            raise

    def _sample(self, ctx: int, data: int, size: int) -> int:
        raw = ctypes.string_at(data, size)
        if int.from_bytes(raw[:4], "little") == EVENT_EXEC:
            event = decode_exec(raw, self.offset, self.cgroups, self.tree)
        else:
            event = decode_task(raw, self.offset, self.cgroups, self.tree)
        if event is not None:
            self.decoded += 1
            self.on_event(event)
        return 0

    def poll(self, timeout_ms: int = 100) -> int:
        polled = self.libbpf.lib.ring_buffer__poll(self._rb, timeout_ms)
        return int(self.libbpf.check_rc("ring_buffer__poll", polled))

    def drops(self) -> int:
        """Events the kernel side could not queue (ring buffer full), summed over CPUs."""
        cpus = self.libbpf.lib.libbpf_num_possible_cpus()
        values = (ctypes.c_uint64 * max(1, cpus))()
        key = ctypes.c_uint32(0)
        rc = self.libbpf.lib.bpf_map_lookup_elem(self._drops_fd, ctypes.byref(key), values)
        return sum(values) if rc == 0 else 0

    def close(self) -> None:
        lib = self.libbpf.lib
        if self._rb:
            lib.ring_buffer__free(self._rb)
            self._rb = None
        for link in self._links:
            lib.bpf_link__destroy(link)
        self._links = []
        if self._obj:
            lib.bpf_object__close(self._obj)
            self._obj = None
