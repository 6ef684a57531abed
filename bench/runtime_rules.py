"""Runtime rules throughput: the default runtime pack + Falco's stable rules, one core.

Events are the sensor's own wire records (exec, fork, exit, open, connect, dup, syscall)
for a node running many short processes, decoded by the sensor's decoders — the baseline —
then evaluated. Target (issue 3): >= 100,000 events/s for the rules, at most 3x the cost of
decoding the same events.
"""

from __future__ import annotations

import ctypes
import gc
import os
import random
import socket
import tempfile
import time
from pathlib import Path

from bench.workload import SHARED
from garrison.content import default_runtime_rule_files
from garrison.events.runtime import RuntimeEvent
from garrison.rules.engine import Engine
from garrison.rules.loader import load_files
from garrison.rules.sources import default_sources
from garrison.sensor.attribution import CgroupResolver
from garrison.sensor.probe import DECODERS, Decoding
from garrison.sensor.process_tree import ProcessTree
from garrison.sensor.wire import (
    EVENT_CONNECT,
    EVENT_DUP_SOCKET,
    EVENT_EXEC,
    EVENT_EXIT,
    EVENT_FORK,
    EVENT_OPEN,
    EVENT_SYSCALL,
    ExecEvent,
    FileEvent,
    NetEvent,
    SyscallEvent,
    TaskEvent,
)

EVENTS = 100_000
ROUNDS = 5
FALCO_STABLE = SHARED / "corpora" / "falco-rules" / "falco_rules.yaml"
PROGRAMS = [
    ("/bin/sh", ["sh", "-c", "run-parts /etc/periodic"]),
    ("/usr/bin/python3", ["python3", "/app/manage.py", "migrate"]),
    ("/usr/sbin/nginx", ["nginx", "-g", "daemon off;"]),
    ("/bin/ls", ["ls", "-la", "/var/lib/app"]),
    ("/bin/cat", ["cat", "/proc/meminfo"]),
    ("/usr/bin/curl", ["curl", "-fsS", "http://localhost:8080/healthz"]),
    ("/usr/bin/java", ["java", "-jar", "/app/server.jar"]),
    ("/usr/local/bin/node", ["node", "server.js"]),
    ("/bin/grep", ["grep", "-q", "ready", "/run/app/status"]),
    ("/usr/bin/awk", ["awk", "{print $1}"]),
    ("/bin/date", ["date", "+%s"]),
    ("/usr/bin/pg_isready", ["pg_isready", "-h", "db"]),
]
PATHS = ["/etc/shadow", "/etc/passwd.new", "/var/log/app.log", "/usr/bin/tool", "/etc/hosts"]


def _fill(raw: ctypes.Structure, kind: int, pid: int, cgroup: int, comm: bytes) -> None:
    raw.type = kind  # type: ignore[attr-defined]
    raw.pid = pid  # type: ignore[attr-defined]
    raw.ppid = pid - 1  # type: ignore[attr-defined]
    raw.time_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME)  # type: ignore[attr-defined]
    raw.cgroup_id = cgroup  # type: ignore[attr-defined]
    raw.comm = comm  # type: ignore[attr-defined]


def wire_stream(count: int, cgroups: list[int], seed: int = 7) -> list[bytes]:
    """Short-lived processes: fork, exec, a few opens and connects, exit."""
    rng = random.Random(seed)
    out: list[bytes] = []
    pid = 100_000
    while len(out) < count:
        pid += 2
        cgroup = rng.choice(cgroups)
        exe, argv = rng.choice(PROGRAMS)
        comm = os.path.basename(exe).encode()[:15]
        fork = TaskEvent()
        _fill(fork, EVENT_FORK, pid, cgroup, b"sh")
        out.append(bytes(fork))
        exec_event = ExecEvent()
        _fill(exec_event, EVENT_EXEC, pid, cgroup, comm)
        exec_event.tid = pid
        exec_event.filename = exe.encode()
        args = b"\0".join(a.encode() for a in argv) + b"\0"
        ctypes.memmove(ctypes.addressof(exec_event) + ExecEvent.args.offset, args, len(args))
        exec_event.args_len = len(args)
        exec_event.flags = 0x1 | (0x2 if rng.random() < 0.01 else 0)
        exec_event.cap_effective = 0xA80425FB
        out.append(bytes(exec_event))
        for _ in range(rng.choice((0, 1, 2))):
            opened = FileEvent()
            _fill(opened, EVENT_OPEN, pid, cgroup, comm)
            opened.path = rng.choice(PATHS).encode()
            opened.flags = rng.choice((os.O_RDONLY, os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
            opened.ret = 3
            out.append(bytes(opened))
        if rng.random() < 0.5:
            net = NetEvent()
            _fill(net, EVENT_CONNECT, pid, cgroup, comm)
            net.family = socket.AF_INET
            net.port = rng.choice((443, 5432, 8080, 53))
            net.addr[:4] = list(socket.inet_aton(rng.choice(("10.0.3.7", "203.0.113.9"))))
            net.sock_type = 1
            out.append(bytes(net))
        if rng.random() < 0.05:
            dup = NetEvent()
            _fill(dup, EVENT_DUP_SOCKET, pid, cgroup, comm)
            dup.family = socket.AF_INET
            dup.newfd = 1
            dup.addr[:4] = list(socket.inet_aton("10.0.3.8"))
            out.append(bytes(dup))
        if rng.random() < 0.05:
            call = SyscallEvent()
            _fill(call, EVENT_SYSCALL, pid, cgroup, comm)
            call.nr = rng.choice((101, 105, 272, 308))
            out.append(bytes(call))
        exit_event = TaskEvent()
        _fill(exit_event, EVENT_EXIT, pid, cgroup, comm)
        out.append(bytes(exit_event))
    return out[:count]


def decode(records: list[bytes], ctx: Decoding) -> list[RuntimeEvent]:
    out: list[RuntimeEvent] = []
    for record in records:
        event = DECODERS[int.from_bytes(record[:4], "little")](record, ctx)
        if event is not None:
            out.append(event)
    return out


def engine() -> tuple[Engine, int, int]:
    files = [*default_runtime_rule_files(), FALCO_STABLE]
    loaded = load_files(files)
    built, report = Engine.build(loaded.ruleset, default_sources()["syscall"])
    return built, report.compiled, len(loaded.ruleset.rules)


def main() -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix="garrison-bench-cgroups-"))
    cgroups = []
    for index in range(20):
        directory = root / "kubepods" / f"{index:064x}"
        directory.mkdir(parents=True)
        cgroups.append(directory.stat().st_ino)
    records = wire_stream(EVENTS, cgroups)
    rules, compiled, total = engine()
    print(f"runtime rules: {EVENTS:,} sensor events, {compiled}/{total} rules compiled")
    print("  (garrison's runtime pack + Falco's stable rules, one core)")
    gc.collect()
    gc.freeze()
    decode_times, rule_times = [], []
    matches = 0
    for _ in range(ROUNDS):
        ctx = Decoding(0.0, CgroupResolver(root), ProcessTree())
        start = time.perf_counter()
        events = decode(records, ctx)
        decode_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        matches = sum(len(rules.evaluate(event)) for event in events)
        rule_times.append(time.perf_counter() - start)
    decode_s, rules_s = min(decode_times), min(rule_times)
    print(f"  decode only (baseline)   {EVENTS / decode_s:>10,.0f} events/s")
    print(
        f"  rules                    {EVENTS / rules_s:>10,.0f} events/s   "
        f"{rules_s / decode_s:.2f}x decode-only ({matches:,} matches a pass)"
    )
    both = decode_s + rules_s
    print(f"  decode + rules           {EVENTS / both:>10,.0f} events/s")
    print("  targets: rules >= 100,000 events/s and <= 3.00x decode-only")
    ctx = Decoding(0.0, CgroupResolver(root), ProcessTree())
    costly = sorted(rules.profile(decode(records[:20_000], ctx)).items(), key=lambda kv: -kv[1])
    print("  costliest rules (seconds over 20,000 events):")
    for name, seconds in costly[:10]:
        print(f"    {seconds:8.4f}  {name}")
    return {
        "rules events/s": EVENTS / rules_s,
        "rules ratio": rules_s / decode_s,
        "decode events/s": EVENTS / decode_s,
    }


if __name__ == "__main__":
    main()
