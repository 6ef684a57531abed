"""``garrison audit analyze FILE...``: detect on audit logs offline, no server needed."""

from __future__ import annotations

import argparse
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import msgspec

from garrison.audit.analyzer import AnalyzerConfig, AuditAnalyzer, RulesLoadFailed
from garrison.audit.decode import iter_stream
from garrison.events.alert import Alert
from garrison.heap import settle


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="analyze Kubernetes audit logs")
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    analyze = sub.add_parser(
        "analyze", help="run the audit rules over files of JSON lines or EventLists ('-' = stdin)"
    )
    analyze.add_argument("files", nargs="+", metavar="FILE")
    analyze.add_argument(
        "--rules", action="append", default=[], metavar="FILE", help="extra rules file (repeat)"
    )
    analyze.add_argument("--no-default-rules", action="store_true", help="only the --rules files")
    analyze.add_argument("--format", choices=("table", "json"), default="table")
    analyze.add_argument("--cluster", default="", help="cluster name to put on alerts")
    analyze.add_argument(
        "--learning-hours",
        type=float,
        default=24 * 7,
        help="service-account baseline learning period, in the log's own time",
    )
    analyze.add_argument(
        "--state",
        metavar="FILE",
        help="keep the service-account baseline in FILE between runs",
    )
    analyze.set_defaults(run=analyze_files)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def alert_line(alert: Alert) -> dict[str, Any]:
    return {
        "time": _iso(alert.last_seen),
        "rule": alert.title,
        "rule_id": alert.rule_id,
        "severity": alert.severity,
        "priority": alert.priority,
        "output": alert.output,
        "audit_id": alert.evidence.get("audit_id", ""),
        "cluster": alert.entities.cluster,
        "mitre": msgspec.to_builtins(alert.mitre),
        "entities": msgspec.to_builtins(alert.entities),
        "source": alert.source,
    }


def analyze_files(args: argparse.Namespace) -> int:
    config = AnalyzerConfig(
        rule_files=tuple(Path(p) for p in args.rules),
        default_rules=not args.no_default_rules,
        learning_seconds=args.learning_hours * 3600,
    )
    try:
        analyzer = AuditAnalyzer.from_config(config)
    except RulesLoadFailed as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    state = Path(args.state) if args.state else None
    if state is not None and state.exists() and analyzer.baseline is not None:
        try:
            analyzer.baseline.restore(state.read_bytes())
        except (OSError, msgspec.DecodeError) as exc:
            print(f"error: cannot read baseline state {state}: {exc}", file=sys.stderr)
            return 1
    settle()  # the compiled rules live as long as the process
    out = sys.stdout
    events = alerts = rejected = 0
    if args.format == "table":
        print(f"{'TIME':<27} {'SEVERITY':<13} {'RULE':<48} OUTPUT", file=out)
    with ExitStack() as stack:
        for name in args.files:
            stream: IO[bytes]
            if name == "-":
                stream = sys.stdin.buffer
            else:
                try:
                    stream = stack.enter_context(open(name, "rb"))
                except OSError as exc:
                    print(f"error: {name}: {exc.strerror}", file=sys.stderr)
                    return 1
            for batch in iter_stream(stream):
                for issue in batch.issues:
                    rejected += 1
                    print(f"warning: {name}:{issue.index}: {issue.reason}", file=sys.stderr)
                for event in batch.events:
                    events += 1
                    for alert in analyzer.analyze(event, args.cluster):
                        alerts += 1
                        _print(alert, args.format, out)
    print(
        f"{events} events analyzed, {alerts} alerts, {rejected} input items rejected",
        file=sys.stderr,
    )
    if state is not None and analyzer.baseline is not None:
        temporary = state.with_name(state.name + ".tmp")
        temporary.write_bytes(analyzer.baseline.snapshot())
        temporary.replace(state)
    return 0


def _print(alert: Alert, fmt: str, out: IO[str]) -> None:
    if fmt == "json":
        out.write(msgspec.json.encode(alert_line(alert)).decode() + "\n")
        return
    title = alert.title if len(alert.title) <= 48 else alert.title[:45] + "..."
    print(f"{_iso(alert.last_seen):<27} {alert.severity:<13} {title:<48} {alert.output}", file=out)
