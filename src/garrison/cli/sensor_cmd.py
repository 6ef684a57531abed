"""``garrison sensor``: kernel events from eBPF, analyzed on the node, printed or queued.

``--emit events`` prints the decoded events, ``alerts`` the runtime alerts, ``both`` both
(an alert line has a ``rule`` key, an event line a ``type`` key). ``--outbox`` also writes
them to the node outbox that ``garrison publisher`` ships to the backend.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from garrison.events.errors import GarrisonError
from garrison.events.runtime import RuntimeEvent
from garrison.metrics import loopback_only
from garrison.publisher.outbox import Outbox, OutboxError
from garrison.rules.errors import RulesError
from garrison.runtime.analyzer import RuntimeAnalyzer, build_engine, needs_event_types
from garrison.runtime.baseline import ProcessBaselines
from garrison.runtime.burst import ReconBurst
from garrison.runtime.drift import DriftPolicy, DriftPolicyError
from garrison.runtime.hygiene import AlertAggregator
from garrison.sensor.enforcement import DriftEnforcer
from garrison.sensor.kube import KubeConfig, PodWatcher
from garrison.sensor.preflight import check
from garrison.sensor.probe import (
    DEFAULT_WATCHED_PATHS,
    OBJECT_DIR,
    PROCESS_OBJECT,
    READ_WRITE,
    ProcessProbe,
)
from garrison.sensor.sinks import AlertOutput, AlertSink, EventSink, JsonLines, OutboxWriter

BASELINE_SAVE_SECONDS = 60.0


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="collect and analyze kernel events (eBPF)")
    parser.add_argument("--format", choices=("jsonl",), default="jsonl")
    parser.add_argument("--emit", choices=("events", "alerts", "both"), default="events")
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
    parser.add_argument("--rules", action="append", default=[], metavar="FILE", help="extra rules")
    parser.add_argument("--no-default-rules", action="store_true", help="skip the runtime pack")
    parser.add_argument("--drift-policy", metavar="FILE", help="drift policy (YAML), reloaded")
    parser.add_argument(
        "--deny-exec",
        action="append",
        default=[],
        metavar="PATH",
        help="kill every exec of this file in the kernel (repeat)",
    )
    parser.add_argument("--baseline-state", metavar="FILE", help="keep process baselines here")
    parser.add_argument("--baseline-learning", type=float, default=3600.0, metavar="SECONDS")
    parser.add_argument("--cluster", default="", help="cluster name put on alerts and envelopes")
    parser.add_argument("--node", default=socket.gethostname(), help="node name on alerts")
    parser.add_argument("--outbox", metavar="FILE", help="also queue alerts into this outbox")
    parser.add_argument(
        "--outbox-events", action="store_true", help="queue every event too, not only alerts"
    )
    parser.add_argument(
        "--kube-url",
        help="Kubernetes API for this node's pods (default: in-cluster, when running in a pod)",
    )
    parser.add_argument("--kube-token-file", help="bearer token for --kube-url")
    parser.add_argument("--kube-ca", help="CA certificate of --kube-url")
    parser.add_argument("--no-kube", action="store_true", help="do not watch the node's pods")
    parser.add_argument(
        "--ring",
        choices=("callback", "mapped"),
        default="callback",
        help="read the ring buffer through libbpf's callback (default) or by mapping it",
    )
    parser.add_argument("--metrics-host", default="127.0.0.1")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve /metrics (0: off)")
    parser.set_defaults(run=run_sensor)


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "garrison_sensor_events", "Events decoded, by type", ["type"], registry=self.registry
        )
        self.alerts = Counter(
            "garrison_sensor_alerts", "Alerts sent, by rule", ["rule"], registry=self.registry
        )
        self.kernel_drops = Gauge(
            "garrison_sensor_kernel_drops",
            "Events the kernel could not queue (ring buffers full), summed over CPUs",
            registry=self.registry,
        )
        self.tracked = Gauge(
            "garrison_sensor_processes", "Processes in the process tree", registry=self.registry
        )

    def add_events(self, counts: dict[str, int]) -> None:
        for kind, count in counts.items():
            self.events.labels(type=kind).inc(count)
        counts.clear()


class _CountAlerts:
    def __init__(self, metrics: _Metrics) -> None:
        self.metrics = metrics

    def on_alert(self, alert: Any) -> None:
        self.metrics.alerts.labels(rule=alert.rule_id).inc()

    def flush(self) -> None:
        return None


def _pod_watcher(args: argparse.Namespace) -> PodWatcher | None:
    """This node's pods, watched from the Kubernetes API (in-cluster by default)."""
    if args.no_kube:
        return None
    if args.kube_url:
        config: KubeConfig | None = KubeConfig.from_files(
            args.kube_url,
            Path(args.kube_token_file) if args.kube_token_file else None,
            Path(args.kube_ca) if args.kube_ca else None,
        )
    else:
        config = KubeConfig.in_cluster()
    if config is None:
        return None
    watcher = PodWatcher(config, args.node)
    watcher.start()
    return watcher


def _analyzer(args: argparse.Namespace) -> RuntimeAnalyzer:
    engine, _ = build_engine([Path(f) for f in args.rules], default_rules=not args.no_default_rules)
    drift = DriftPolicy.load(Path(args.drift_policy)) if args.drift_policy else None
    baselines = None
    if args.baseline_state:
        baselines = ProcessBaselines(learning_seconds=args.baseline_learning)
        baselines.restore(Path(args.baseline_state))
    return RuntimeAnalyzer(
        engine,
        cluster=args.cluster,
        node=args.node,
        drift=drift,
        baselines=baselines,
        burst=ReconBurst(),
        hygiene=AlertAggregator(),
    )


def run_sensor(args: argparse.Namespace) -> int:  # noqa: C901 - one composition root
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
    analyze = args.emit != "events" or args.outbox is not None
    try:
        analyzer = _analyzer(args) if analyze else None
        outbox = Outbox(args.outbox) if args.outbox else None
    except (RulesError, DriftPolicyError, OutboxError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics = _Metrics()
    printer = JsonLines(sys.stdout.buffer, events=args.emit in ("events", "both"))
    sinks: list[EventSink] = []
    outputs: list[AlertOutput] = [_CountAlerts(metrics)]
    if args.emit != "events":
        outputs.append(printer)
    writer = None
    if outbox is not None:
        source = f"sensor/{args.node}"
        cluster = args.cluster or args.node
        writer = OutboxWriter(outbox, cluster=cluster, source=source, events=args.outbox_events)
        outputs.append(writer)
    if analyzer is not None:
        sinks.append(AlertSink(analyzer, outputs))
    sinks.append(printer)
    if writer is not None:
        sinks.append(writer)
    enforcer: DriftEnforcer | None = None

    counts: dict[str, int] = {}  # per type, moved into the metrics once a second

    def emit(event: RuntimeEvent) -> None:
        counts[event.type] = counts.get(event.type, 0) + 1
        if enforcer is not None:
            enforcer.observe(event)
        for sink in sinks:
            sink.on_event(event)

    try:
        pods = _pod_watcher(args)
    except (OSError, GarrisonError) as exc:
        print(f"error: cannot watch the node's pods: {exc}", file=sys.stderr)
        return 2
    try:
        watched = (*DEFAULT_WATCHED_PATHS, *((p, READ_WRITE) for p in args.watch_path))
        # accepts leave the kernel only when printed or when a rule can use them
        accepts = args.emit != "alerts" or (
            analyzer is not None and needs_event_types(analyzer.engine, {"accept", "accept4"})
        )
        probe = ProcessProbe(
            emit, objects, watched, pods, accepts=accepts, mapped=args.ring == "mapped"
        )
    except GarrisonError as exc:
        if pods is not None:
            pods.stop()
        print(f"error: cannot start the exec probe: {exc}", file=sys.stderr)
        return 1
    try:
        if args.deny_exec:
            for missing in probe.deny_executables(tuple(args.deny_exec)):
                print(f"warning: {missing} does not exist; denied by path only", file=sys.stderr)
        if analyzer is not None and analyzer.drift is not None:
            enforcer = DriftEnforcer(probe, analyzer.drift, analyzer.drift_scope)
    except GarrisonError as exc:
        probe.close()
        print(f"error: cannot set up blocking: {exc}", file=sys.stderr)
        return 1
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if args.metrics_port:
        start_http_server(args.metrics_port, args.metrics_host, metrics.registry)
    print("garrison sensor: attached", file=sys.stderr, flush=True)
    deadline = time.monotonic() + args.duration if args.duration > 0 else None
    metrics.kernel_drops.set(probe.drops())
    metrics.tracked.set(len(probe.tree))
    saved = counted = time.monotonic()
    baselines = analyzer.baselines if analyzer is not None else None
    try:
        while not stopping and (deadline is None or time.monotonic() < deadline):
            probe.poll(100)
            now = time.time()
            for sink in sinks:
                sink.tick(now)
            if time.monotonic() - counted >= 1.0:  # counters cost syscalls: once a second
                metrics.add_events(counts)
                metrics.kernel_drops.set(probe.drops())
                metrics.tracked.set(len(probe.tree))
                counted = time.monotonic()
            if baselines is not None and time.monotonic() - saved > BASELINE_SAVE_SECONDS:
                baselines.save(Path(args.baseline_state))
                saved = time.monotonic()
        probe.poll(0)
        metrics.add_events(counts)
    finally:
        drops = probe.drops()
        probe.close()
        if pods is not None:
            pods.stop()
        for sink in sinks:
            sink.close()
        if analyzer is not None and analyzer.baselines is not None:
            analyzer.baselines.save(Path(args.baseline_state))
        if outbox is not None:
            outbox.close()
    print(f"{probe.decoded} events, {drops} dropped in the kernel", file=sys.stderr)
    return 0
