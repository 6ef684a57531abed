"""Ring-buffer records that are short or of an unknown type are dropped, never a crash."""

from __future__ import annotations

from pathlib import Path

from garrison.events.runtime import RuntimeEvent
from garrison.sensor.attribution import CgroupResolver
from garrison.sensor.kube import PodInfo, containers_of
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


def test_pod_identity_from_the_node_pod_watch(tmp_path: Path) -> None:
    """With the pod watch running, events carry pod, namespace, labels and workload."""
    container = "c" * 64
    pod = {
        "metadata": {
            "name": "api-6d4cf56db6-abcde",
            "namespace": "shop",
            "labels": {"app": "api", "pod-template-hash": "6d4cf56db6"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "api-6d4cf56db6", "controller": True}
            ],
        },
        "status": {
            "containerStatuses": [
                {"name": "main", "image": "shop/api:2", "containerID": f"containerd://{container}"}
            ]
        },
    }
    found = containers_of(pod)

    class Pods:  # the PodWatcher's lookup, over the same pod document
        def lookup(self, container_id: str) -> PodInfo | None:
            return found.get(container_id)

    cgroup = tmp_path / "kubepods" / container
    cgroup.mkdir(parents=True)
    ctx = Decoding(0.0, CgroupResolver(tmp_path), ProcessTree(), pods=Pods())
    raw = ExecEvent(type=EVENT_EXEC, pid=7, tid=7, ppid=1, time_ns=1, args_len=0)
    raw.comm = b"sh"
    raw.cgroup_id = cgroup.stat().st_ino
    event = DECODERS[EVENT_EXEC](bytes(raw), ctx)
    assert event is not None and event.container_id == container
    assert (event.pod, event.namespace, event.workload) == (
        "api-6d4cf56db6-abcde",
        "shop",
        "deployment/api",
    )
    assert event.pod_labels["app"] == "api" and event.container_name == "main"


def test_events_follow_the_process_tree_as_it_changes() -> None:
    """The process part of events is reused per process image, never past a change."""
    from garrison.sensor.wire import EVENT_OPEN, FileEvent

    tree = ProcessTree()
    tree.fork(10, 1, "sshd", 0.0)
    tree.exec(10, 1, "sshd", "/usr/sbin/sshd", ("sshd",), sid=10)  # the session leader
    tree.fork(20, 10, "bash", 0.0)
    tree.exec(20, 10, "bash", "/bin/bash", ("bash", "-l"), sid=10)  # the parent
    tree.fork(30, 20, "bash", 0.0)
    tree.exec(30, 20, "less", "/bin/less", ("less", "/etc/shadow"), sid=10)
    ctx = Decoding(0.0, None, tree)

    def opened() -> tuple[str, list[str], list[str], list[str], str]:
        raw = FileEvent(type=EVENT_OPEN, pid=30, tid=30, ppid=20, time_ns=1)
        raw.path = b"/etc/shadow"
        event = DECODERS[EVENT_OPEN](bytes(raw), ctx)
        assert event is not None and event.path == "/etc/shadow"
        return event.exe, event.args, event.ancestry, event.parent_args, event.session_leader

    first = opened()
    assert first == ("/bin/less", ["less", "/etc/shadow"], ["bash", "sshd"], ["bash", "-l"], "sshd")
    again = opened()
    assert again == first and again[1] is not first[1]  # each event its own lists
    tree.exec(30, 20, "cat", "/bin/cat", ("cat", "/etc/shadow"), sid=10)  # the process execs
    assert opened()[:2] == ("/bin/cat", ["cat", "/etc/shadow"])
    tree.exec(20, 10, "zsh", "/bin/zsh", ("zsh",), sid=10)  # the parent execs
    assert opened()[2:4] == (["zsh", "sshd"], ["zsh"])
    tree.exec(10, 1, "dropbear", "/usr/sbin/dropbear", ("dropbear",), sid=10)  # the leader
    assert opened()[4] == "dropbear"


def test_unpackers_read_every_field_where_ctypes_puts_it() -> None:
    """The struct formats the decoders use are derived from the ctypes mirrors (which a
    kernel test checks against BTF): each field, padding included, lands in its place."""
    import ctypes

    from garrison.sensor.wire import WIRE_STRUCTS, unpacker

    for name, layout in WIRE_STRUCTS.items():
        record = layout()
        expected: list[object] = []
        for number, (field, kind, *_) in enumerate(layout._fields_, start=1):
            length = getattr(kind, "_length_", None)
            if length is None:
                setattr(record, field, number)
                expected.append(number)
            elif kind._type_ is ctypes.c_char or kind._type_ is ctypes.c_uint8:
                value = bytes([number]) * length
                ctypes.memmove(
                    ctypes.addressof(record) + getattr(layout, field).offset, value, length
                )
                expected.append(value)
            else:
                values = [number * 100 + i for i in range(length)]
                getattr(record, field)[:] = values
                expected.extend(values)
        assert list(unpacker(layout).unpack(bytes(record))) == expected, name


def test_identity_is_looked_up_again_when_the_cgroup_changes_or_it_ages(tmp_path: Path) -> None:
    """A process's container and pod are reused between its events, but a move to another
    cgroup shows at once, and a pod the watch learns of late within IDENTITY_TTL_NS."""
    from garrison.sensor.probe import IDENTITY_TTL_NS
    from garrison.sensor.wire import EVENT_OPEN, FileEvent

    first, second = "a" * 64, "b" * 64
    inodes = {}
    for container in (first, second):
        cgroup = tmp_path / "kubepods" / container
        cgroup.mkdir(parents=True)
        inodes[container] = cgroup.stat().st_ino
    known: dict[str, PodInfo] = {}

    class Pods:
        def lookup(self, container_id: str) -> PodInfo | None:
            return known.get(container_id)

    tree = ProcessTree()
    tree.exec(40, 1, "app", "/app", ("app",))
    ctx = Decoding(0.0, CgroupResolver(tmp_path), tree, pods=Pods())

    def opened(container: str, time_ns: int) -> tuple[str, str]:
        raw = FileEvent(type=EVENT_OPEN, pid=40, tid=40, ppid=1, time_ns=time_ns)
        raw.cgroup_id = inodes[container]
        event = DECODERS[EVENT_OPEN](bytes(raw), ctx)
        assert event is not None
        return event.container_id, event.pod

    assert opened(first, 1) == (first, "")
    known[first] = PodInfo(namespace="shop", name="api-1", container="main", image="api:1")
    assert opened(first, 2) == (first, "")  # reused: not looked up again yet
    assert opened(first, 2 + IDENTITY_TTL_NS) == (first, "api-1")
    assert opened(second, 3 + IDENTITY_TTL_NS) == (second, "")


def test_identities_are_bounded_and_forgotten_at_exit() -> None:
    from garrison.sensor.wire import EVENT_EXIT, EVENT_OPEN, FileEvent, TaskEvent

    ctx = Decoding(0.0, None, ProcessTree(), max_identities=8)
    for pid in range(100, 150):
        raw = FileEvent(type=EVENT_OPEN, pid=pid, tid=pid, ppid=1, time_ns=1)
        assert DECODERS[EVENT_OPEN](bytes(raw), ctx) is not None
        assert len(ctx._identities) <= 8
    exited = TaskEvent(type=EVENT_EXIT, pid=149, ppid=1, time_ns=2)
    assert DECODERS[EVENT_EXIT](bytes(exited), ctx) is not None
    assert 149 not in ctx._identities


def test_repeats_carry_equal_memo_keys_and_reuse_only_what_holds() -> None:
    """A process's repeated opens and connects carry the same MEMO_KEY (so the rules run once
    for them); another path, another process image or an exec makes another key, and the
    rules' answers with keys equal those without."""
    import socket

    from garrison.events.runtime import MEMO_KEY
    from garrison.runtime.analyzer import build_engine
    from garrison.sensor.wire import EVENT_CONNECT, EVENT_OPEN, FileEvent, NetEvent

    tree = ProcessTree()
    tree.exec(50, 1, "cat", "/bin/cat", ("cat", "/etc/shadow"))
    ctx = Decoding(0.0, None, tree)

    def opened(path: bytes, time_ns: int) -> RuntimeEvent:
        raw = FileEvent(type=EVENT_OPEN, pid=50, tid=50, ppid=1, time_ns=time_ns, ret=3)
        raw.path = path
        event = DECODERS[EVENT_OPEN](bytes(raw), ctx)
        assert event is not None
        return event

    def connected(port: int, time_ns: int) -> RuntimeEvent:
        raw = NetEvent(type=EVENT_CONNECT, pid=50, tid=50, ppid=1, time_ns=time_ns, port=port)
        raw.family = socket.AF_INET
        raw.addr[:4] = list(socket.inet_aton("203.0.113.9"))
        event = DECODERS[EVENT_CONNECT](bytes(raw), ctx)
        assert event is not None
        return event

    events = [opened(b"/etc/shadow", t) for t in (1, 2)] + [opened(b"/etc/hosts", 3)]
    events += [connected(p, t) for p, t in ((3333, 4), (3333, 5), (443, 6))]
    keys = [getattr(e, MEMO_KEY) for e in events]
    assert keys[0] == keys[1] != keys[2] and keys[3] == keys[4] != keys[5]
    tree.exec(50, 1, "sh", "/bin/sh", ("sh",))  # a new image: new keys
    events.append(opened(b"/etc/shadow", 7))
    assert getattr(events[-1], MEMO_KEY) != keys[0]
    exec_raw = ExecEvent(type=EVENT_EXEC, pid=50, tid=50, ppid=1, time_ns=8)
    exec_event = DECODERS[EVENT_EXEC](bytes(exec_raw), ctx)
    assert exec_event is not None and getattr(exec_event, MEMO_KEY, None) is None

    remembering, fresh = build_engine([])[0], build_engine([])[0]
    assert remembering.memoizable
    for event in events:
        reused = remembering.evaluate(event, memo_key=getattr(event, MEMO_KEY))
        assert [m.rule.id for m in reused] == [m.rule.id for m in fresh.evaluate(event)]
    assert remembering.memo_hits == 2
    assert any(fresh.evaluate(e) for e in events)  # the comparison saw matches
