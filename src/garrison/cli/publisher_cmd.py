"""``garrison publisher``: drain a node's outbox to the backend (the DaemonSet's 2nd container)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from garrison.cli.home import Home
from garrison.metrics import loopback_only, render
from garrison.publisher.metrics import publisher_metrics
from garrison.publisher.outbox import Outbox, OutboxError
from garrison.publisher.shipper import Shipper, ShipperConfig
from garrison.tls import client_context

log = logging.getLogger("garrison.publisher")
TOKEN_ENV = "GARRISON_CLUSTER_TOKEN"  # noqa: S105 - the name of a variable, not a secret


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="ship the node outbox to the backend over HTTPS")
    parser.add_argument("--home", help="data directory (default $GARRISON_HOME or ~/.garrison)")
    parser.add_argument(
        "--outbox", help="outbox file shared with the sensor (default HOME/outbox.db)"
    )
    parser.add_argument("--url", required=True, help="backend base URL, https://...")
    parser.add_argument("--cluster", required=True, help="this cluster's name, as enrolled")
    parser.add_argument(
        "--token-file", help=f"file holding the cluster token (default: ${TOKEN_ENV})"
    )
    parser.add_argument("--ca", help="CA certificate of the backend (default: system CAs)")
    parser.add_argument("--client-cert", help="client certificate for mTLS (optional)")
    parser.add_argument("--client-key", help="client key for mTLS")
    parser.add_argument("--batch-size", type=int, default=4000)
    parser.add_argument("--max-bytes", type=int, default=256 * 1024 * 1024, help="outbox cap")
    parser.add_argument("--max-age", type=float, default=24 * 3600, help="outbox cap, seconds")
    parser.add_argument("--metrics-host", default="127.0.0.1")
    parser.add_argument("--metrics-port", type=int, default=9464, help="0 disables /metrics")
    parser.set_defaults(run=run_publisher)


def read_token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            print(f"error: cannot read token file: {exc.strerror}", file=sys.stderr)
            return None
    return os.environ.get(TOKEN_ENV, "").strip() or None


def run_publisher(args: argparse.Namespace) -> int:
    if not args.url.startswith("https://"):
        print("error: --url must be https:// (tokens never travel in clear text)", file=sys.stderr)
        return 2
    refused = loopback_only(args.metrics_host) if args.metrics_port else None
    if refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    token = read_token(args)
    if token is None and not args.client_cert:
        print(
            f"error: no cluster credential: pass --token-file, set {TOKEN_ENV}, "
            "or give --client-cert and --client-key",
            file=sys.stderr,
        )
        return 2
    if bool(args.client_cert) != bool(args.client_key):
        print("error: --client-cert and --client-key go together", file=sys.stderr)
        return 2
    home = Home.resolve(args.home)
    home.ensure()
    try:
        outbox = Outbox(args.outbox or home.root / "outbox.db")
    except OutboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    context = None
    if args.ca or args.client_cert:
        try:
            context = client_context(
                Path(args.ca) if args.ca else None,
                Path(args.client_cert) if args.client_cert else None,
                Path(args.client_key) if args.client_key else None,
            )
        except (OSError, ValueError) as exc:
            print(f"error: TLS material: {exc}", file=sys.stderr)
            return 1
    config = ShipperConfig(
        url=args.url.rstrip("/") + "/v1/ingest",
        token=token or "",
        cluster_id=args.cluster,
        source=f"publisher/{os.uname().nodename}",
        batch_size=args.batch_size,
        max_bytes=args.max_bytes,
        max_age_seconds=args.max_age,
    )
    registry = CollectorRegistry()
    shipper = Shipper(outbox, config, publisher_metrics(registry), context)
    try:
        asyncio.run(_serve(shipper, registry, args.metrics_host, args.metrics_port))
    finally:
        outbox.close()
    return 0


async def _serve(shipper: Shipper, registry: CollectorRegistry, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner: web.AppRunner | None = None
    if port:
        app = web.Application()

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=render(registry), content_type="text/plain")

        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
    log.info("publisher shipping to %s", shipper.config.url)
    try:
        await shipper.run(stop)
    finally:
        if runner is not None:
            await runner.cleanup()
