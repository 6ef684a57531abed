"""Ring-buffer records that are short or of an unknown type are dropped, never a crash."""

from __future__ import annotations

from pathlib import Path

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
