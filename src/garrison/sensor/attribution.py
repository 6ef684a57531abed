"""Which container a process belongs to, from its cgroup path (runc, containerd, CRI-O, Docker)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from garrison.events.runtime import HOST_CONTAINER as HOST
from garrison.events.runtime import UNKNOWN_CONTAINER as UNKNOWN

_PATTERNS = (
    re.compile(r"cri-containerd-([0-9a-f]{64})\.scope"),
    re.compile(r"crio-([0-9a-f]{64})\.scope"),
    re.compile(r"docker-([0-9a-f]{64})\.scope"),
    re.compile(r"/docker/([0-9a-f]{64})"),
    re.compile(r"/kubepods[^\n]*/([0-9a-f]{64})"),
    re.compile(r"/([0-9a-f]{64})$"),
    re.compile(r"^0::/([A-Za-z0-9][A-Za-z0-9_.-]{0,127})$"),
)


def container_of_cgroup(text: str) -> str:
    """The container id in a /proc/<pid>/cgroup text, or ``host``."""
    lines = text.splitlines()
    for line in lines:
        path = line.split(":", 2)[-1]
        for pattern in _PATTERNS[:-1]:
            match = pattern.search(path)
            if match:
                return match.group(1)
    for line in lines:  # runc without a runtime manager: 0::/<container id>
        match = _PATTERNS[-1].match(line)
        if match and match.group(1) not in ("init.scope", "user.slice", "system.slice"):
            return match.group(1)
    return HOST


def container_of(pid: int, proc: Path = Path("/proc")) -> str:
    try:
        return container_of_cgroup((proc / str(pid) / "cgroup").read_text())
    except OSError:
        return HOST


def ancestry(ppid: int, depth: int = 8, proc: Path = Path("/proc")) -> list[str]:
    """Names of the parent, grandparent, ... (bounded), read from /proc while they live."""
    names: list[str] = []
    pid = ppid
    while pid > 0 and len(names) < depth:
        try:
            stat = (proc / str(pid) / "stat").read_text()
        except OSError:
            break
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        names.append(name)
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(fields[1])
    return names


def _v2_root() -> Path:
    unified = Path("/sys/fs/cgroup/unified")
    return unified if unified.is_dir() else Path("/sys/fs/cgroup")


class CgroupResolver:
    """Kernel cgroup ids → container ids, without racing the process's exit.

    The id ``bpf_get_current_cgroup_id()`` reports is the inode of the cgroup's directory in
    the v2 hierarchy, which outlives a short process. Directories are indexed by inode; a new
    id triggers one rescan, an id still unknown after it is not rescanned for again within
    ``rescan_seconds``; the index and the set of unknown ids are bounded.
    """

    def __init__(
        self, root: Path | None = None, *, rescan_seconds: float = 0.1, max_entries: int = 65536
    ) -> None:
        self.root = root or _v2_root()
        self.rescan_seconds = rescan_seconds
        self.max_entries = max_entries
        self._paths: dict[int, str] = {}
        self._missed: dict[int, float] = {}
        self._containers: dict[int, str] = {}  # a cgroup's directory names one container
        self._scanned = 0.0

    def _scan(self) -> None:
        paths: dict[int, str] = {}
        for directory, _, _ in os.walk(self.root):
            try:
                inode = os.stat(directory).st_ino
            except OSError:
                continue
            paths[inode] = "/" + os.path.relpath(directory, self.root).removeprefix(".")
            if len(paths) >= self.max_entries:
                break
        self._paths = paths
        self._scanned = time.monotonic()

    def path(self, cgroup_id: int) -> str | None:
        found = self._paths.get(cgroup_id)
        if found is not None:
            return found
        now = time.monotonic()
        missed = self._missed.get(cgroup_id)
        if missed is not None and now - missed < self.rescan_seconds:
            return None  # asked again too soon: an id that is not (or no longer) a directory
        self._scan()
        found = self._paths.get(cgroup_id)
        if found is None:
            if len(self._missed) >= 4096:
                self._missed.clear()
            self._missed[cgroup_id] = now
        return found

    def container(self, cgroup_id: int) -> str | None:
        """The container id for a cgroup id, ``host``, or None when the id is unknown."""
        found = self._containers.get(cgroup_id)
        if found is not None:
            return found
        path = self.path(cgroup_id)
        if path is None:
            return None
        found = container_of_cgroup(f"0::{path.rstrip('/') or '/'}\n")
        if len(self._containers) >= self.max_entries:
            self._containers.clear()
        self._containers[cgroup_id] = found
        return found

    def container_of_process(self, pid: int, cgroup_id: int, proc: Path = Path("/proc")) -> str:
        """The container of ``pid`` when the kernel's cgroup id is not (or no longer) indexed.

        ``/proc/<pid>`` is believed only while it is in that very cgroup: once the process has
        exited, its pid may belong to a process of another container (pids wrap quickly on a
        busy node), and an event read late would be blamed on it.
        """
        try:
            text = (proc / str(pid) / "cgroup").read_text()
        except OSError:
            return UNKNOWN
        for line in text.splitlines():
            if line.startswith("0::"):
                relative = line[3:].strip().lstrip("/")
                try:
                    same = os.stat(self.root / relative).st_ino == cgroup_id
                except OSError:
                    same = False
                return container_of_cgroup(text) if same else UNKNOWN
        return UNKNOWN
