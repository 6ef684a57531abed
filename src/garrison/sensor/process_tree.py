"""A bounded process tree, seeded from /proc and kept by fork, exec and exit events.

Ancestry then comes from the event stream itself: an exec is decoded after its parents'
forks and execs and before their exits, so even a chain of processes that all ended before
the sensor read them keeps its names.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Node:
    ppid: int
    comm: str


class ProcessTree:
    def __init__(self, max_entries: int = 65536) -> None:
        self.max_entries = max_entries
        self._nodes: OrderedDict[int, Node] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._nodes)

    def _put(self, pid: int, node: Node) -> None:
        self._nodes[pid] = node
        self._nodes.move_to_end(pid)
        while len(self._nodes) > self.max_entries:
            self._nodes.popitem(last=False)
            self.evicted += 1

    def seed(self, proc: Path = Path("/proc")) -> int:
        """Every process alive now; returns how many were read."""
        count = 0
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            self._put(int(entry.name), Node(ppid, comm))
            count += 1
        return count

    def fork(self, pid: int, ppid: int, comm: str) -> None:
        self._put(pid, Node(ppid, comm))

    def exec(self, pid: int, ppid: int, comm: str) -> None:
        self._put(pid, Node(ppid, comm))

    def exit(self, pid: int) -> None:
        self._nodes.pop(pid, None)

    def ancestry(self, ppid: int, depth: int = 8) -> list[str]:
        """Names of the parent, grandparent, ... as far as the tree knows (bounded)."""
        names: list[str] = []
        pid = ppid
        seen: set[int] = set()
        while pid > 0 and len(names) < depth and pid not in seen:
            seen.add(pid)
            node = self._nodes.get(pid)
            if node is None:
                break
            names.append(node.comm)
            pid = node.ppid
        return names
