"""A bounded process tree, seeded from /proc and kept by fork, exec and exit events.

Ancestry then comes from the event stream itself: an exec is decoded after its parents'
forks and execs and before their exits, and each process keeps its ancestors' names from
when it was created, so even a chain of processes that all ended before the sensor read them
keeps its names. Each node also keeps what the process's current
image is (executable, argv, terminal, login uid, drift flags), so events other than exec —
an open, a connect — carry the command line of the process that made them.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

MAX_ARGS = 64  # argv entries kept per process (the kernel already bounds them to 512 bytes)
DEPTH = 8  # ancestors kept per process


@dataclass(frozen=True, slots=True)
class Node:
    ppid: int
    comm: str
    exe: str = ""
    args: tuple[str, ...] = ()
    tty: int = 0
    loginuid: int = -1
    sid: int = 0
    start: float = 0.0  # wall-clock seconds when the process was created; 0 unknown
    exe_upper_layer: bool = False
    exe_from_memfd: bool = False
    # the ancestors' names and executables when this process was created (parent first):
    # an event's ancestry is then one lookup, and survives ancestors that have exited
    chain_names: tuple[str, ...] = ()
    chain_exes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Lineage:
    """What an event needs of its process's ancestors."""

    names: list[str]
    exes: list[str]
    parent_args: list[str]


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

    def get(self, pid: int) -> Node | None:
        return self._nodes.get(pid)

    @property
    def nodes(self) -> Mapping[int, Node]:
        """Every process known, by pid (read-only: change it through the events)."""
        return self._nodes

    def seed(self, proc: Path = Path("/proc")) -> int:
        """Every process alive now; returns how many were read."""
        count = 0
        boot = _boot_time()
        ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        for entry in proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            rest = stat[stat.rindex(")") + 2 :].split()
            ppid = int(rest[1])
            sid = int(rest[3]) if len(rest) > 3 else 0
            tty = int(rest[4]) if len(rest) > 4 else 0
            start = boot + int(rest[19]) / ticks if len(rest) > 19 and boot else 0.0
            node = Node(ppid, comm, *_image(entry), tty=tty, sid=sid, start=start)
            self._put(int(entry.name), node)
            count += 1
        self._link_seeded()
        return count

    def _link_seeded(self) -> None:
        """Chains for processes read from /proc (in no particular order)."""
        done: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {}

        def chain(pid: int, seen: frozenset[int]) -> tuple[tuple[str, ...], tuple[str, ...]]:
            if pid in done:
                return done[pid]
            node = self._nodes.get(pid)
            parent = self._nodes.get(node.ppid) if node is not None else None
            if node is None or parent is None or node.ppid in seen:
                done[pid] = ((), ())
                return done[pid]
            names, exes = chain(node.ppid, seen | {pid})
            done[pid] = ((parent.comm, *names)[:DEPTH], (parent.exe, *exes)[:DEPTH])
            return done[pid]

        for pid in list(self._nodes):
            names, exes = chain(pid, frozenset())
            self._nodes[pid] = replace(self._nodes[pid], chain_names=names, chain_exes=exes)

    def _chain_below(self, ppid: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        parent = self._nodes.get(ppid)
        if parent is None:
            return (), ()
        return (
            (parent.comm, *parent.chain_names)[:DEPTH],
            (parent.exe, *parent.chain_exes)[:DEPTH],
        )

    def fork(self, pid: int, ppid: int, comm: str, start: float = 0.0) -> None:
        """A new process: a copy of its parent's image until it execs."""
        parent = self._nodes.get(ppid)
        names, exes = self._chain_below(ppid)
        if parent is None:
            node = Node(ppid, comm, start=start, chain_names=names, chain_exes=exes)
        else:
            node = replace(
                parent, ppid=ppid, comm=comm, start=start, chain_names=names, chain_exes=exes
            )
        self._put(pid, node)

    def exec(
        self,
        pid: int,
        ppid: int,
        comm: str,
        exe: str = "",
        args: tuple[str, ...] = (),
        *,
        tty: int = 0,
        loginuid: int = -1,
        sid: int = 0,
        exe_upper_layer: bool = False,
        exe_from_memfd: bool = False,
    ) -> Node:
        known = self._nodes.get(pid)
        if known is not None and known.ppid == ppid:
            names, exes = known.chain_names, known.chain_exes
        else:
            names, exes = self._chain_below(ppid)
        node = Node(
            ppid,
            comm,
            exe,
            args[:MAX_ARGS],
            tty,
            loginuid,
            sid,
            known.start if known is not None else 0.0,
            exe_upper_layer,
            exe_from_memfd,
            names,
            exes,
        )
        self._put(pid, node)
        return node

    def exit(self, pid: int) -> None:
        self._nodes.pop(pid, None)

    def ancestry(self, ppid: int, depth: int = 8) -> list[str]:
        """Names of the parent, grandparent, ... as far as the tree knows (bounded)."""
        return self.lineage(ppid, depth).names

    def lineage(self, ppid: int, depth: int = DEPTH) -> Lineage:
        """The parent (``ppid``), then its ancestors as they were when it was created."""
        parent = self._nodes.get(ppid)
        if parent is None:
            return Lineage([], [], [])
        return Lineage(
            [parent.comm, *parent.chain_names[: depth - 1]],
            [parent.exe, *parent.chain_exes[: depth - 1]],
            list(parent.args),
        )


def _image(entry: Path) -> tuple[str, tuple[str, ...]]:
    """A live process's executable and argv (empty for kernel threads or when unreadable)."""
    try:
        exe = os.readlink(entry / "exe")
    except OSError:
        exe = ""
    try:
        raw = (entry / "cmdline").read_bytes()
    except OSError:
        raw = b""
    args = tuple(a.decode("utf-8", "replace") for a in raw.split(b"\0") if a)
    return exe, args[:MAX_ARGS]


def _boot_time() -> float:
    try:
        return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    except OSError:
        return 0.0
