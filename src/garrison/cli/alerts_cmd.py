"""``garrison alerts list``: query the backend's alerts, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from garrison.cli.backend_client import (
    Backend,
    BackendConfigError,
    BackendError,
    add_backend_arguments,
)


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="query alerts on the backend")
    sub = parser.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="list alerts, newest first")
    add_backend_arguments(listing)
    listing.add_argument("--format", choices=("table", "json"), default="table")
    for flag in ("cluster", "namespace", "rule", "status", "severity", "min-severity"):
        listing.add_argument(f"--{flag}")
    listing.add_argument("--since", type=float, help="epoch seconds")
    listing.add_argument("--until", type=float, help="epoch seconds")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(run=list_alerts)


def list_alerts(args: argparse.Namespace) -> int:
    params = {"limit": str(args.limit)}
    for key in (
        "cluster",
        "namespace",
        "rule",
        "status",
        "severity",
        "min_severity",
        "since",
        "until",
    ):
        value = getattr(args, key)
        if value is not None:
            params[key] = str(value)
    try:
        data = Backend.from_args(args).call("GET", f"/v1/alerts?{urllib.parse.urlencode(params)}")
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, BackendConfigError) else 1
    alerts = data.get("alerts", [])
    if args.format == "json":
        for alert in alerts:
            print(json.dumps(alert, sort_keys=True))
        return 0
    print(
        f"{'LAST SEEN':<20} {'SEVERITY':<13} {'COUNT':>5} {'STATUS':<9} "
        f"{'CLUSTER/NAMESPACE':<24} RULE"
    )
    for alert in alerts:
        seen = datetime.fromtimestamp(alert["last_seen"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        entities = alert.get("entities", {})
        where = f"{entities.get('cluster', '')}/{entities.get('namespace', '')}"
        print(
            f"{seen:<20} {alert['severity']:<13} {alert.get('count', 1):>5} "
            f"{alert.get('status', ''):<9} {where:<24} {alert['title']}"
        )
    print(f"{len(alerts)} alerts", file=sys.stderr)
    return 0
