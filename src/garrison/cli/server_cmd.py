"""``garrison server`` (the backend) and ``garrison up`` (all of it locally, no configuration)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from garrison.audit.analyzer import AnalyzerConfig, RulesLoadFailed
from garrison.cli.home import AUDIT_POLICY, Home, webhook_kubeconfig
from garrison.cli.publisher_cmd import TOKEN_ENV
from garrison.cli.serve import Backend, ServeConfig, run_until_signalled
from garrison.cli.supervise import Child, Supervisor
from garrison.content import CONTENT_DIR
from garrison.sensor.preflight import check
from garrison.sensor.probe import OBJECT_DIR, PROCESS_OBJECT
from garrison.server.api import ServerConfig
from garrison.server.store.base import StoreError
from garrison.server.store.sqlite import SQLiteStore
from garrison.tls import TLSFiles, ensure_ca, issue_certificate, local_hosts

LOCAL_CLUSTER = "local"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="data directory (default $GARRISON_HOME or ~/.garrison)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--api-port", type=int, default=8443)
    parser.add_argument("--audit-port", type=int, default=8765)
    parser.add_argument("--rules", action="append", default=[], metavar="FILE")
    parser.add_argument("--dedupe-window", type=float, default=3600.0, metavar="SECONDS")


def register_up(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="run garrison on this machine (SQLite, local TLS)")
    _common(parser)
    parser.add_argument(
        "--no-sensor", action="store_true", help="do not run the runtime sensor and publisher"
    )
    parser.set_defaults(run=run_up)


def register_server(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="run the backend: ingest, audit receiver, API")
    _common(parser)
    parser.add_argument("--db", help="SQLite file (default HOME/garrison.db)")
    parser.add_argument("--tls-cert", help="server certificate (PEM); default: issued locally")
    parser.add_argument("--tls-key", help="server key (PEM)")
    parser.add_argument("--tls-ca", help="CA for client certificates (PEM)")
    parser.set_defaults(run=run_server)


def _local_tls(home: Home) -> TLSFiles:
    ensure_ca(home.tls_dir)
    cert = home.tls_dir / "server.crt"
    if cert.exists() and (home.tls_dir / "server.key").exists():
        return TLSFiles(cert=cert, key=home.tls_dir / "server.key", ca=home.tls_dir / "ca.crt")
    return issue_certificate(home.tls_dir, home.tls_dir, "server", hosts=local_hosts())


def _serve_config(args: argparse.Namespace, home: Home, tls: TLSFiles, db: Path) -> ServeConfig:
    return ServeConfig(
        db=db,
        tls=tls,
        host=args.host,
        api_port=args.api_port,
        audit_port=args.audit_port,
        analyzer=AnalyzerConfig(rule_files=tuple(Path(p) for p in args.rules)),
        server=ServerConfig(dedupe_window_seconds=args.dedupe_window),
    )


def _run(config: ServeConfig, store: SQLiteStore, on_ready: Any, on_stop: Any = None) -> int:
    try:
        backend = Backend(config, store)
    except RulesLoadFailed as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        asyncio.run(run_until_signalled(backend, on_ready, on_stop))
    except OSError as exc:
        print(f"error: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def run_server(args: argparse.Namespace) -> int:
    home = Home.resolve(args.home)
    home.ensure()
    if bool(args.tls_cert) != bool(args.tls_key):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    if args.tls_cert:
        tls = TLSFiles(cert=Path(args.tls_cert), key=Path(args.tls_key), ca=Path(args.tls_cert))
        client_ca = Path(args.tls_ca) if args.tls_ca else None
    else:
        tls = _local_tls(home)
        client_ca = Path(args.tls_ca) if args.tls_ca else tls.ca
    try:
        store = SQLiteStore(args.db or home.db)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    config = _serve_config(args, home, tls, Path(args.db or home.db))
    config.client_ca = client_ca

    def ready(backend: Backend) -> None:
        print(
            f"garrison server: API https://{args.host}:{backend.bound['api']} "
            f"audit webhook https://{args.host}:{backend.bound['audit']}/k8s-audit",
            flush=True,
        )

    return _run(config, store, ready)


def prepare_home(home: Home, store: SQLiteStore, host: str, audit_port: int) -> dict[str, str]:
    """``garrison up`` setup once bound: API token, local cluster, kubeconfig, audit policy."""
    client = home.read_client()
    if client is None or not store.api_token_valid(client.get("token", "")):
        token = store.add_api_token("garrison-up")
        client = {"token": token, "ca": str(home.tls_dir / "ca.crt")}
    existing = home.webhook_token()
    record = store.cluster_for_token(existing) if existing else None
    if existing and record is not None and record.name == LOCAL_CLUSTER:
        cluster_token = existing
    else:
        # first start, or the kubeconfig was lost: an API server using an older copy of it
        # would be refused, so a new token is only issued when the current one is unusable
        names = {c.name for c in store.list_clusters()}
        if LOCAL_CLUSTER in names:
            cluster_token = store.rotate_cluster_token(LOCAL_CLUSTER)
        else:
            _, cluster_token = store.add_cluster(LOCAL_CLUSTER)
    ca_pem = (home.tls_dir / "ca.crt").read_text(encoding="utf-8")
    webhook_url = f"https://{host}:{audit_port}/k8s-audit"
    home.write_private(home.kubeconfig, webhook_kubeconfig(webhook_url, ca_pem, cluster_token))
    home.policy.write_text(AUDIT_POLICY, encoding="utf-8")
    client["cluster_token"] = cluster_token
    return client


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _show_alert(line: str) -> None:
    """A sensor alert line, as a newcomer reads it in the console."""
    try:
        alert = json.loads(line)
        text = f"{alert['severity']:<6} {alert['rule_id']}: {alert['output']}"
        if alert.get("update_of"):
            text += f" (x{alert['count']})"
    except (ValueError, KeyError, TypeError):
        text = line
    print(f"alert  {text}", flush=True)


def runtime_children(home: Home, api: str, cluster_token: str) -> list[Child]:
    """The sensor (analyzing on this node, queuing into the outbox) and the publisher."""
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    garrison = [sys.executable, "-m", "garrison.cli"]
    outbox = str(home.root / "outbox.db")
    sensor = Child(
        "sensor",
        [
            *garrison,
            "sensor",
            "--emit",
            "alerts",
            "--outbox",
            outbox,
            "--cluster",
            LOCAL_CLUSTER,
            "--baseline-state",
            str(home.root / "baselines.json"),
        ],
        env,
        on_stdout=_show_alert,
        on_stderr=lambda line: _say(f"[sensor] {line}"),
    )
    publisher = Child(
        "publisher",
        [
            *garrison,
            "publisher",
            "--home",
            str(home.root),
            "--outbox",
            outbox,
            "--url",
            api,
            "--cluster",
            LOCAL_CLUSTER,
            "--ca",
            str(home.tls_dir / "ca.crt"),
            "--metrics-port",
            "0",
        ],
        {**env, TOKEN_ENV: cluster_token},  # in the environment, never on a command line
        on_stdout=lambda line: _say(f"[publisher] {line}"),
        on_stderr=lambda line: _say(f"[publisher] {line}"),
    )
    return [sensor, publisher]


def sensor_problems() -> list[str]:
    """Why the runtime sensor cannot run here (empty: it can)."""
    if os.geteuid() != 0:
        return ["it needs root (CAP_BPF and CAP_PERFMON); run garrison up as root to add it"]
    return [str(p) for p in check([OBJECT_DIR / PROCESS_OBJECT])]


def run_up(args: argparse.Namespace) -> int:
    home = Home.resolve(args.home)
    home.ensure()
    tls = _local_tls(home)
    try:
        store = SQLiteStore(home.db)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    config = _serve_config(args, home, tls, home.db)
    config.client_ca = tls.ca

    supervisor: Supervisor | None = None

    async def stop_children() -> None:
        if supervisor is not None:
            await supervisor.stop()

    def ready(backend: Backend) -> None:
        nonlocal supervisor
        client = prepare_home(home, store, args.host, backend.bound["audit"])
        api = f"https://{args.host}:{backend.bound['api']}"
        audit = f"https://{args.host}:{backend.bound['audit']}/k8s-audit"
        saved = {"url": api, "token": client["token"], "ca": client["ca"]}
        home.write_private(home.client_file, json.dumps(saved, indent=2))
        example = CONTENT_DIR / "examples" / "privileged-pod.json"
        print(
            f"""garrison is up (data in {home.root})
  API             {api}   (OpenAPI: {api}/openapi.json)
  audit webhook   {audit}
  kube-apiserver  --audit-webhook-config-file={home.kubeconfig}
                  --audit-policy-file={home.policy}
  API token       in {home.client_file} (used by `garrison alerts list`)

Try it: send a sample audit event, then list the alerts it raised:
  TOKEN=$(sed -n 's/ *token: //p' {home.kubeconfig})
  curl --cacert {client["ca"]} -H "Authorization: Bearer $TOKEN" \\
       -H 'Content-Type: application/json' --data-binary @{example} {audit}
  garrison alerts list
Ctrl-C stops garrison.""",
            flush=True,
        )
        problems = ["--no-sensor was given"] if args.no_sensor else sensor_problems()
        if problems:
            for problem in problems:
                print(f"runtime sensor not started: {problem}", flush=True)
            return
        supervisor = Supervisor(runtime_children(home, api, client["cluster_token"]), say=_say)
        supervisor.start()
        print(
            f"""
Runtime sensor and publisher started (outbox {home.root / "outbox.db"}).
Try it: read the password file, and watch the alert arrive here and in the API:
  cat /etc/shadow > /dev/null
  garrison alerts list --rule runtime_shadow_read""",
            flush=True,
        )

    return _run(config, store, ready, stop_children)
