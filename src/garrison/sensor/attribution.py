"""Which container a process belongs to, from its cgroup path (runc, containerd, CRI-O, Docker)."""

from __future__ import annotations

import re
from pathlib import Path

HOST = "host"
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
