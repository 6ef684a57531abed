"""Loads the sensor's BPF objects through libbpf, attaches them and drains the ring buffer."""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from pathlib import Path

from garrison.events.runtime import RuntimeEvent
from garrison.sensor.attribution import CgroupResolver, ancestry, container_of
from garrison.sensor.libbpf import Libbpf, SampleFn
from garrison.sensor.wire import ARGS_LEN, EVENT_EXEC, EXE_MEMFD, EXE_UPPER_LAYER, ExecEvent

OBJECT_DIR = Path(__file__).resolve().parents[3] / "build" / "kernel"
EXEC_OBJECT = "exec.bpf.o"


def boot_offset() -> float:
    """Seconds to add to a CLOCK_BOOTTIME reading to get wall-clock time."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def decode_exec(
    data: bytes, offset: float, cgroups: CgroupResolver | None = None
) -> RuntimeEvent | None:
    if len(data) < ctypes.sizeof(ExecEvent):
        return None
    raw = ExecEvent.from_buffer_copy(data)
    if raw.type != EVENT_EXEC:
        return None
    start = ExecEvent.args.offset  # c_char arrays stop at a NUL: slice the raw bytes instead
    args_bytes = data[start : start + min(raw.args_len, ARGS_LEN)]
    args = [a.decode("utf-8", "replace") for a in args_bytes.split(b"\0") if a]
    return RuntimeEvent(
        type="exec",
        time=raw.time_ns / 1e9 + offset,
        pid=raw.pid,
        tid=raw.tid,
        ppid=raw.ppid,
        uid=raw.uid,
        gid=raw.gid,
        comm=raw.comm.decode("utf-8", "replace"),
        exe=raw.filename.decode("utf-8", "replace"),
        args=args,
        container_id=_container(raw.pid, raw.cgroup_id, cgroups),
        ancestry=ancestry(raw.ppid),
        cgroup_id=raw.cgroup_id,
        cap_effective=raw.cap_effective,
        exe_ino=raw.exe_ino,
        exe_upper_layer=bool(raw.flags & EXE_UPPER_LAYER),
        exe_from_memfd=bool(raw.flags & EXE_MEMFD),
    )


def _container(pid: int, cgroup_id: int, cgroups: CgroupResolver | None) -> str:
    found = cgroups.container(cgroup_id) if cgroups is not None else None
    return found if found is not None else container_of(pid)


class ExecProbe:
    """The exec tracepoint program and its ring buffer. Close it to detach."""

    def __init__(
        self, on_event: Callable[[RuntimeEvent], None], object_dir: Path = OBJECT_DIR
    ) -> None:
        self.libbpf = Libbpf.load()
        lib = self.libbpf.lib
        self.on_event = on_event
        self.offset = boot_offset()
        self.decoded = 0
        self.cgroups = CgroupResolver()
        self._obj = self._link = self._rb = None
        path = str(object_dir / EXEC_OBJECT).encode()
        try:
            self._obj = self.libbpf.check_ptr(
                "bpf_object__open_file", lib.bpf_object__open_file(path, None)
            )
            self.libbpf.check_rc("bpf_object__load", lib.bpf_object__load(self._obj))
            program = self.libbpf.check_ptr(
                "find program handle_exec",
                lib.bpf_object__find_program_by_name(self._obj, b"handle_exec"),
            )
            self._link = self.libbpf.check_ptr(
                "bpf_program__attach", lib.bpf_program__attach(program)
            )
            self._events_fd = self.libbpf.check_rc(
                "find map events", lib.bpf_object__find_map_fd_by_name(self._obj, b"events")
            )
            self._drops_fd = self.libbpf.check_rc(
                "find map drops", lib.bpf_object__find_map_fd_by_name(self._obj, b"drops")
            )
            self._callback = SampleFn(self._sample)  # kept alive as long as the ring buffer
            self._rb = self.libbpf.check_ptr(
                "ring_buffer__new",
                lib.ring_buffer__new(self._events_fd, self._callback, None, None),
            )
        except BaseException:
            self.close()
            raise

    def _sample(self, ctx: int, data: int, size: int) -> int:
        event = decode_exec(ctypes.string_at(data, size), self.offset, self.cgroups)
        if event is not None:
            self.decoded += 1
            self.on_event(event)
        return 0

    def poll(self, timeout_ms: int = 100) -> int:
        return int(
            self.libbpf.check_rc(
                "ring_buffer__poll", self.libbpf.lib.ring_buffer__poll(self._rb, timeout_ms)
            )
        )

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
        if self._link:
            lib.bpf_link__destroy(self._link)
            self._link = None
        if self._obj:
            lib.bpf_object__close(self._obj)
            self._obj = None
