"""``garrison sensor``: kernel events from eBPF, printed as JSON lines (collection half)."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from garrison.events.errors import GarrisonError
from garrison.events.runtime import RuntimeEvent
from garrison.metrics import loopback_only
from garrison.sensor.preflight import check
from garrison.sensor.probe import (
    DEFAULT_WATCHED_PATHS,
    OBJECT_DIR,
    PROCESS_OBJECT,
    READ_WRITE,
    ProcessProbe,
)


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="collect process events from the kernel (eBPF)")
    parser.add_argument("--format", choices=("jsonl",), default="jsonl")
    parser.add_argument("--emit", choices=("events",), default="events")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until Ctrl-C")
    parser.add_argument(
        "--objects", default=str(OBJECT_DIR), help="directory of compiled BPF objects"
    )
    parser.add_argument(
        "--watch-path",
        action="append",
        default=[],
        metavar="PREFIX",
        help="also report opens of paths starting with PREFIX (repeat)",
    )
    parser.add_argument("--metrics-host", default="127.0.0.1")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve /metrics (0: off)")
    parser.set_defaults(run=run_sensor)


def run_sensor(args: argparse.Namespace) -> int:
    refused = loopback_only(args.metrics_host) if args.metrics_port else None
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    objects = Path(args.objects)
    problems = check([objects / PROCESS_OBJECT])
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer

    registry = CollectorRegistry()
    events_total = Counter(
        "garrison_sensor_events", "Events decoded, by type", ["type"], registry=registry
    )
    kernel_drops = Gauge(
        "garrison_sensor_kernel_drops",
        "Events the kernel could not queue (ring buffers full), summed over CPUs",
        registry=registry,
    )
    tracked = Gauge("garrison_sensor_processes", "Processes in the process tree", registry=registry)

    def emit(event: RuntimeEvent) -> None:
        events_total.labels(type=event.type).inc()
        out.write(encoder.encode(event) + b"\n")

    try:
        probe = ProcessProbe(
            emit, objects, (*DEFAULT_WATCHED_PATHS, *((p, READ_WRITE) for p in args.watch_path))
        )
    except GarrisonError as exc:
        print(f"error: cannot start the exec probe: {exc}", file=sys.stderr)
        return 1
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if args.metrics_port:
        start_http_server(args.metrics_port, args.metrics_host, registry)
    print("garrison sensor: attached", file=sys.stderr, flush=True)
    deadline = time.monotonic() + args.duration if args.duration > 0 else None
    try:
        while not stopping and (deadline is None or time.monotonic() < deadline):
            probe.poll(100)
            out.flush()
            kernel_drops.set(probe.drops())
            tracked.set(len(probe.tree))
        probe.poll(0)
        out.flush()
    finally:
        drops = probe.drops()
        probe.close()
    print(f"{probe.decoded} events, {drops} dropped in the kernel", file=sys.stderr)
    return 0
