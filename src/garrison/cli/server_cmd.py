"""``garrison server`` (the backend) and ``garrison up`` (all of it locally, no configuration)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from garrison.audit.analyzer import AnalyzerConfig, RulesLoadFailed
from garrison.cli.home import AUDIT_POLICY, Home, webhook_kubeconfig
from garrison.cli.serve import Backend, ServeConfig, run_until_signalled
from garrison.content import CONTENT_DIR
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


def _run(config: ServeConfig, store: SQLiteStore, on_ready: Any) -> int:
    try:
        backend = Backend(config, store)
    except RulesLoadFailed as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        asyncio.run(run_until_signalled(backend, on_ready))
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

    def ready(backend: Backend) -> None:
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

    return _run(config, store, ready)
