from __future__ import annotations

from pathlib import Path

import pytest

from garrison.sensor.attribution import HOST, ancestry, container_of_cgroup
from garrison.sensor.preflight import check

CID = "3f2a9c0e1b7d" + "0" * 52


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12.slice/cri-containerd-{CID}.scope\n",
            CID,
        ),
        (f"0::/system.slice/crio-{CID}.scope\n", CID),
        (f"0::/system.slice/docker-{CID}.scope\n", CID),
        (f"12:memory:/docker/{CID}\n0::/\n", CID),
        (f"0::/kubepods/besteffort/pod7/{CID}\n", CID),
        ("0::/garrison-test-1\n", "garrison-test-1"),  # runc without a manager
        ("0::/user.slice/user-0.slice/session-1.scope\n", HOST),
        ("0::/init.scope\n", HOST),
        ("0::/\n", HOST),
    ],
)
def test_container_ids_from_cgroup_paths(text: str, expected: str) -> None:
    assert container_of_cgroup(text) == expected


def test_ancestry_is_bounded_and_reads_names(tmp_path: Path) -> None:
    for pid, ppid, name in (
        (30, 20, "sh"),
        (20, 10, "containerd-shim"),
        (10, 1, "containerd"),
        (1, 0, "init"),
    ):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({name}) S {ppid} 0 0 0")
    assert ancestry(30, proc=tmp_path) == ["sh", "containerd-shim", "containerd", "init"]
    assert ancestry(30, depth=2, proc=tmp_path) == ["sh", "containerd-shim"]
    assert ancestry(999, proc=tmp_path) == []


def test_preflight_names_a_missing_object(tmp_path: Path) -> None:
    problems = [str(p) for p in check([tmp_path / "exec.bpf.o"])]
    assert any("exec.bpf.o is missing: run `make kernel`" in p for p in problems)


def test_cgroup_ids_resolve_through_directory_inodes(tmp_path: Path) -> None:
    import os

    from garrison.sensor.attribution import CgroupResolver

    (tmp_path / "kubepods" / f"cri-containerd-{CID}.scope").mkdir(parents=True)
    resolver = CgroupResolver(tmp_path, rescan_seconds=60)
    root_id = os.stat(tmp_path).st_ino
    container_id = os.stat(tmp_path / "kubepods" / f"cri-containerd-{CID}.scope").st_ino
    assert resolver.container(root_id) == HOST
    assert resolver.container(container_id) == CID
    (tmp_path / "late-container").mkdir()  # created after the first scan: a new id rescans
    assert resolver.container(os.stat(tmp_path / "late-container").st_ino) == "late-container"
    assert resolver.container(987654321) is None  # unknown, and not rescanned again at once


def test_watched_prefix_keys_fit_the_kernel_buffer() -> None:
    from garrison.sensor.probe import path_key
    from garrison.sensor.wire import PREFIX_LEN

    assert path_key("/etc/shadow").prefixlen == len("/etc/shadow") * 8
    long = "/" + "x" * 200
    key = path_key(long)
    assert key.prefixlen == (PREFIX_LEN - 1) * 8 and key.path == long[: PREFIX_LEN - 1].encode()


def test_a_late_event_is_never_blamed_on_the_process_that_reused_its_pid(tmp_path: Path) -> None:
    """The cgroup of an exited container is gone; /proc/<pid> now shows another process."""
    import os

    from garrison.sensor.attribution import UNKNOWN, CgroupResolver

    cgroups, proc = tmp_path / "cgroup", tmp_path / "proc"
    other = cgroups / "g-benign-web-server"
    other.mkdir(parents=True)
    (proc / "4242").mkdir(parents=True)
    (proc / "4242" / "cgroup").write_text("0::/g-benign-web-server\n")  # the pid's new owner
    resolver = CgroupResolver(cgroups, rescan_seconds=60)
    gone = 987654321  # the cgroup id the event carries: a directory removed since
    assert resolver.container(gone) is None
    assert resolver.container_of_process(4242, gone, proc) == UNKNOWN
    # while the process still lives in the event's cgroup, /proc/<pid> is believed
    live = os.stat(other).st_ino
    assert resolver.container_of_process(4242, live, proc) == "g-benign-web-server"
    assert resolver.container_of_process(999, live, proc) == UNKNOWN  # no such process
