from __future__ import annotations

from pathlib import Path

from garrison.sensor.process_tree import ProcessTree


def test_fork_exec_exit_and_ancestry() -> None:
    tree = ProcessTree()
    tree.fork(10, 1, "containerd-shim")
    tree.fork(20, 10, "containerd-shim")
    tree.exec(20, 10, "sh")
    tree.fork(30, 20, "sh")
    tree.exec(30, 20, "curl")
    assert tree.ancestry(30) == ["curl", "sh", "containerd-shim"]
    tree.exit(20)
    assert tree.ancestry(30) == ["curl", "sh", "containerd-shim"]  # kept from its creation
    tree.exit(30)
    assert tree.ancestry(30) == []  # the process itself is gone


def test_bounded_and_cycle_safe() -> None:
    tree = ProcessTree(max_entries=100)
    for pid in range(1, 1001):
        tree.fork(pid, pid - 1, f"p{pid}")
    assert len(tree) == 100 and tree.evicted == 900
    tree.fork(5, 6, "a")
    tree.fork(6, 5, "b")  # pid reuse making a cycle: chains are copied at creation, finite
    assert tree.ancestry(5) == ["a"] and tree.ancestry(6) == ["b", "a"]
    for pid in range(2000, 2020):  # a deep chain keeps DEPTH ancestors
        tree.fork(pid, pid - 1, f"d{pid}")
    assert len(tree.ancestry(2019)) == 8


def test_seed_from_proc(tmp_path: Path) -> None:
    for pid, ppid, name in ((1, 0, "init"), (42, 1, "my (odd) name")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(f"{pid} ({name}) S {ppid} 0 0")
    (tmp_path / "self").mkdir()
    tree = ProcessTree()
    assert tree.seed(tmp_path) == 2
    assert tree.ancestry(42) == ["my (odd) name", "init"]
