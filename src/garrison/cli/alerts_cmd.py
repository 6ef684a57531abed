"""``garrison alerts list``: query the backend's alerts, as a table or JSON lines."""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from garrison.cli.home import Home
from garrison.tls import client_context


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="query alerts on the backend")
    sub = parser.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    listing = sub.add_parser("list", help="list alerts, newest first")
    listing.add_argument("--home", help="data directory holding client.json")
    listing.add_argument("--url", help="backend URL (default from client.json)")
    listing.add_argument("--token", help="API token (default from client.json)")
    listing.add_argument("--ca", help="CA certificate to trust (default from client.json)")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    for flag in ("cluster", "namespace", "rule", "status", "severity", "min-severity"):
        listing.add_argument(f"--{flag}")
    listing.add_argument("--since", type=float, help="epoch seconds")
    listing.add_argument("--until", type=float, help="epoch seconds")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(run=list_alerts)


def fetch_alerts(url: str, token: str, context: ssl.SSLContext, params: dict[str, str]) -> Any:
    query = urllib.parse.urlencode(params)
    request = urllib.request.Request(  # noqa: S310 - the caller checked it is https
        f"{url.rstrip('/')}/v1/alerts?{query}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, context=context, timeout=30) as response:  # noqa: S310
        return json.load(response)


def list_alerts(args: argparse.Namespace) -> int:
    client = Home.resolve(args.home).read_client() or {}
    url = args.url or client.get("url")
    token = args.token or client.get("token")
    ca = args.ca or client.get("ca")
    if not url or not token or not ca:
        print(
            "error: no backend configured: run `garrison up`, or pass --url, --token and --ca",
            file=sys.stderr,
        )
        return 2
    if not Path(ca).is_file():
        print(f"error: CA certificate {ca} not found", file=sys.stderr)
        return 2
    if not url.startswith("https://"):
        print("error: --url must be https://", file=sys.stderr)
        return 2
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
        data = fetch_alerts(url, token, client_context(Path(ca)), params)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        print(f"error: backend answered {exc.code}: {detail}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"error: cannot reach {url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
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
