"""``garrison admission``: the Gatekeeper-compatible admission webhook and its configuration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry

from garrison.admission.assignment import AssignmentPuller
from garrison.admission.audit import AuditSweep, KubeSource, MemorySource, ObjectSource
from garrison.admission.evaluate import load_policy_set
from garrison.admission.files import read_objects
from garrison.admission.inventory import Inventory
from garrison.admission.rbac import rbac_manifests
from garrison.admission.result_cache import DEFAULT_ENTRIES
from garrison.admission.sources import Bundle, PolicySources, parse_effects
from garrison.admission.sync import kinds_to_sync, list_inventory, parse_sync
from garrison.admission.webhook import (
    DEFAULT_MAX_BODY,
    AdmissionConfig,
    AdmissionMetrics,
    AdmissionWebhook,
    ReloadingCertificate,
)
from garrison.admission.webhook_config import webhook_configurations
from garrison.admission.worker import WorkerError, WorkerPool
from garrison.events.errors import GarrisonError
from garrison.events.finding import Finding
from garrison.heap import settle
from garrison.kube import KubeConfig
from garrison.publisher.envelopes import envelope_record
from garrison.publisher.outbox import Outbox, Record

log = logging.getLogger("garrison.admission")


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="the admission webhook (Gatekeeper-compatible)")
    sub = parser.add_subparsers(dest="admission_command", required=True, metavar="ACTION")
    serve = sub.add_parser("serve", help="serve /v1/admit and /v1/mutate over HTTPS")
    add_policy_arguments(serve)
    serve.add_argument("--tls-cert", type=Path, required=True, help="serving certificate (PEM)")
    serve.add_argument("--tls-key", type=Path, required=True, help="its private key (PEM)")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a webhook serves the cluster
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--deadline", type=float, default=2.5, help="seconds per review")
    serve.add_argument("--failure-mode", choices=("ignore", "fail"), default="ignore")
    serve.add_argument(
        "--exempt-namespace",
        action="append",
        default=None,
        help="namespace never judged (default: kube-system, garrison)",
    )
    serve.add_argument("--reload-interval", type=float, default=5.0, help="seconds")
    serve.add_argument("--max-body", type=int, default=DEFAULT_MAX_BODY, help="bytes per review")
    serve.add_argument(
        "--result-cache",
        type=int,
        default=DEFAULT_ENTRIES,
        metavar="ENTRIES",
        help="evaluations shared between reviews a template cannot tell apart (0: none)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="evaluation worker processes (one core each; each holds the whole policy set)",
    )
    add_kube_arguments(serve)
    serve.add_argument(
        "--sync",
        action="append",
        default=[],
        metavar="GROUP/KIND",
        help="replicate a kind into data.inventory (beyond what templates declare)",
    )
    serve.add_argument("--sync-interval", type=float, default=60.0, help="seconds between lists")
    serve.add_argument("--sync-max-objects", type=int, default=100_000)
    serve.add_argument(
        "--no-sync", action="store_true", help="no API server: inventory from files only"
    )
    serve.set_defaults(run=run_serve)
    audit = sub.add_parser("audit", help="judge existing objects (Gatekeeper's audit sweep)")
    add_policy_arguments(audit)
    add_kube_arguments(audit)
    audit.add_argument(
        "--objects",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="audit these objects instead of an API server",
    )
    audit.add_argument("--cluster", default="", help="cluster name on findings")
    audit.add_argument("--interval", type=float, default=0, help="seconds between sweeps; 0: once")
    audit.add_argument("--chunk-size", type=int, default=500)
    audit.add_argument("--violations-limit", type=int, default=20, help="kept per constraint")
    audit.add_argument("--format", choices=("text", "jsonl"), default="text")
    audit.add_argument("--outbox", type=Path, help="also queue every finding for the publisher")
    audit.set_defaults(run=run_audit)
    config = sub.add_parser(
        "webhook-config", help="print the Validating/MutatingWebhookConfiguration (YAML)"
    )
    config.add_argument("--namespace", default="garrison")
    config.add_argument("--service", default="garrison-admission")
    config.add_argument("--ca-file", type=Path, required=True, help="CA that signed the cert")
    config.add_argument("--timeout", type=int, default=3, help="seconds (1-30)")
    config.add_argument("--failure-policy", choices=("Ignore", "Fail"), default="Ignore")
    config.add_argument("--mutating", action="store_true", help="also the mutating webhook")
    config.set_defaults(run=run_webhook_config)
    rbac = sub.add_parser(
        "rbac", help="print the least-privilege ServiceAccount, ClusterRole and binding (YAML)"
    )
    add_policy_arguments(rbac)
    rbac.add_argument(
        "--sync",
        action="append",
        default=[],
        metavar="GROUP/KIND",
        help="a kind the webhook will replicate into data.inventory (as serve --sync)",
    )
    rbac.add_argument("--namespace", default="garrison")
    rbac.add_argument("--service-account", default="garrison-admission")
    rbac.set_defaults(run=run_rbac)


def add_kube_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-server", help="https://host:port (default: in-cluster)")
    parser.add_argument("--token-file", type=Path, help="bearer token for the API server")
    parser.add_argument("--ca", type=Path, help="CA of the API server")


def kube_config(args: argparse.Namespace) -> KubeConfig | None:
    """The API server from flags, else the in-cluster service account, else None."""
    if args.api_server:
        if args.token_file is None:
            raise GarrisonError("--api-server needs --token-file")
        return KubeConfig.from_files(args.api_server, args.token_file, args.ca)
    return KubeConfig.in_cluster()


def add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="ConstraintTemplates, Constraints and mutators (files or directories)",
    )
    parser.add_argument(
        "--initiative",
        action="append",
        default=[],
        metavar="NAME",
        help="a built-in initiative (pod-security-baseline, pod-security-restricted, "
        "azure-kubernetes-builtins)",
    )
    parser.add_argument(
        "--effect",
        action="append",
        default=[],
        metavar="INITIATIVE/CONSTRAINT=EFFECT",
        help="override a built-in's effect: deny, warn, audit or disabled",
    )
    parser.add_argument(
        "--inventory",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="objects for data.inventory and namespaceSelector",
    )
    parser.add_argument("--engine", choices=("auto", "rego", "cel"), default="auto")
    parser.add_argument(
        "--assignment-url", help="backend https:// URL to pull this cluster's assignment from"
    )
    parser.add_argument(
        "--cluster-token-file", type=Path, help="the cluster's agent token (for the backend)"
    )
    parser.add_argument("--backend-ca", type=Path, help="CA of the backend")


def sources_from(args: argparse.Namespace) -> PolicySources:
    return PolicySources(
        paths=list(args.policy),
        initiatives=list(args.initiative),
        effects=parse_effects(args.effect),
        inventory_paths=list(args.inventory),
    )


def load_sources(
    args: argparse.Namespace,
) -> tuple[PolicySources, AssignmentPuller | None, Bundle]:
    """The policy sources the flags name, the backend puller (first pull done) and what they
    load now; raises GarrisonError when any of it fails."""
    sources = sources_from(args)
    puller = puller_from(args)
    if puller is not None:
        sources.assignment = puller.current
    return sources, puller, sources.load()


def puller_from(args: argparse.Namespace) -> AssignmentPuller | None:
    """The backend puller, when an assignment URL is given; its first pull must succeed."""
    if not args.assignment_url:
        return None
    if args.cluster_token_file is None:
        raise GarrisonError("--assignment-url needs --cluster-token-file")
    try:
        token = args.cluster_token_file.read_text().strip()
    except OSError as exc:
        raise GarrisonError(f"cannot read the cluster token: {exc.strerror}") from None
    puller = AssignmentPuller(args.assignment_url, token, args.backend_ca)
    puller.pull()
    return puller


def _audit_source(args: argparse.Namespace) -> ObjectSource:
    if args.objects:
        return MemorySource(o for path in args.objects for o in read_objects(path))
    config = kube_config(args)
    if config is None:
        raise GarrisonError("not in a cluster: give --api-server and --token-file, or --objects")
    return KubeSource(config)


def run_audit(args: argparse.Namespace) -> int:
    outbox: Outbox | None = None
    try:
        sources, puller, bundle = load_sources(args)
        source = _audit_source(args)
        if args.outbox is not None:
            outbox = Outbox(args.outbox)
        while True:
            code = _sweep(args, bundle, source, outbox)
            if args.interval <= 0:
                return code
            time.sleep(args.interval)
            if puller is not None:
                try:
                    if puller.pull():
                        sources.assignment = puller.current
                except GarrisonError as exc:
                    log.warning("assignment not refreshed: %s", exc)
            bundle = sources.load()
    except (GarrisonError, OSError) as exc:
        print(f"garrison admission audit: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        if outbox is not None:
            outbox.close()


def _sweep(
    args: argparse.Namespace, bundle: Any, source: ObjectSource, outbox: Outbox | None
) -> int:
    policy = load_policy_set(bundle.objects, args.engine, Inventory(bundle.inventory))
    records: list[Record] = []
    encoder = msgspec.json.Encoder()

    def sink(finding: Finding) -> None:
        payload = encoder.encode(finding)
        if args.format == "jsonl":
            sys.stdout.write(payload.decode() + "\n")
        if outbox is not None:
            ref = finding.object
            key = f"finding:{finding.audit_id}:{finding.policy_kind}/{finding.policy_name}:"
            key += f"{ref.kind}/{ref.namespace}/{ref.name}:{len(records)}"
            records.append(
                envelope_record(
                    kind="finding",
                    key=key[:200],
                    payload=payload,
                    cluster_id=args.cluster or "local",
                    source="admission-audit",
                    produced_at=finding.time,
                )
            )

    sweep = AuditSweep(
        policy,
        source,
        cluster=args.cluster,
        chunk=args.chunk_size,
        violations_limit=args.violations_limit,
        sink=sink,
    )
    report = sweep.run()
    if outbox is not None and records:
        outbox.put(records)
    for error in report.errors:
        print(f"audit error: {error}", file=sys.stderr)
    if args.format == "text":
        for entry in sorted(report.constraints.values(), key=lambda e: (-e.total, e.name)):
            if not entry.total:
                continue
            print(f"{entry.total:6d}  {entry.kind}/{entry.name} ({entry.action})")
            for finding in entry.violations:
                print(f"          {finding.object.describe()}: {finding.message}")
            if entry.total > len(entry.violations):
                print(f"          ... and {entry.total - len(entry.violations)} more")
    total = sum(e.total for e in report.constraints.values())
    print(
        f"audit {report.audit_id}: {report.objects} objects, {len(report.constraints)} "
        f"constraints, {total} violations, {len(report.errors)} errors in "
        f"{report.finished - report.started:.1f} s",
        file=sys.stderr,
    )
    return 1 if report.errors else 0


def run_rbac(args: argparse.Namespace) -> int:
    """Read access to exactly what the audit sweep and the inventory sync will list."""
    try:
        _, _, bundle = load_sources(args)
        policy = load_policy_set(bundle.objects, args.engine, cache_entries=0)
        kinds = policy.kinds() | kinds_to_sync(bundle.objects) | parse_sync(args.sync)
    except (GarrisonError, OSError) as exc:
        print(f"garrison admission rbac: {exc}", file=sys.stderr)
        return 2
    text = rbac_manifests(kinds, namespace=args.namespace, service_account=args.service_account)
    sys.stdout.write(text)
    return 0


def run_webhook_config(args: argparse.Namespace) -> int:
    try:
        ca = args.ca_file.read_bytes()
        text = webhook_configurations(
            namespace=args.namespace,
            service=args.service,
            ca_pem=ca,
            timeout_seconds=args.timeout,
            failure_policy=args.failure_policy,
            mutating=args.mutating,
        )
    except (OSError, GarrisonError) as exc:
        print(f"garrison admission webhook-config: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    if not 1 <= args.workers <= 64:
        print("garrison admission: --workers must be 1 to 64", file=sys.stderr)
        return 2
    if not 0 <= args.result_cache <= 1_000_000:
        print("garrison admission: --result-cache must be 0 to 1000000", file=sys.stderr)
        return 2
    try:
        sources, puller, bundle = load_sources(args)
        certificate = ReloadingCertificate(args.tls_cert, args.tls_key, args.reload_interval)
    except GarrisonError as exc:
        print(f"garrison admission: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"garrison admission: cannot load the TLS certificate: {exc}", file=sys.stderr)
        return 2
    exempt = tuple(args.exempt_namespace) if args.exempt_namespace else ("kube-system", "garrison")
    config = AdmissionConfig(
        deadline_s=args.deadline,
        failure_mode=args.failure_mode,
        exempt_namespaces=exempt,
        max_body=args.max_body,
    )
    try:
        return asyncio.run(_serve(args, sources, bundle, certificate, config, puller))
    except WorkerError as exc:
        print(f"garrison admission: {exc}", file=sys.stderr)
        return 2


async def _serve(
    args: argparse.Namespace,
    sources: PolicySources,
    bundle: Any,
    certificate: ReloadingCertificate,
    config: AdmissionConfig,
    puller: AssignmentPuller | None,
) -> int:
    worker = WorkerPool(bundle.load_message(args.engine, args.result_cache), args.workers)
    loaded = await worker.start()
    webhook = AdmissionWebhook(
        worker,
        config,
        AdmissionMetrics.create(CollectorRegistry()),
        mutators=bundle.mutators,
        namespaces=bundle.namespaces,
    )
    webhook.assigned_exempt = bundle.exempt_namespaces
    syncer = None
    if not args.no_sync:
        config_kube = kube_config(args)
        if config_kube is not None:
            kinds = kinds_to_sync(bundle.objects) | parse_sync(args.sync)
            syncer = asyncio.create_task(
                _sync_loop(args, KubeSource(config_kube), kinds, worker, webhook)
            )
    runner = web.AppRunner(webhook.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=certificate.context)
    await site.start()
    host, port = runner.addresses[0][:2]
    settle()  # the loaded bundle lives until the next reload
    print(
        f"garrison admission serving https://{host}:{port}/v1/admit "
        f"({loaded['templates']} templates, {loaded['constraints']} constraints)",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fingerprint = sources.fingerprint()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.reload_interval)
            certificate.check()
            if puller is not None:
                try:
                    if await asyncio.to_thread(puller.pull):
                        sources.assignment = puller.current
                except GarrisonError as exc:
                    log.warning("assignment not refreshed, the running set stays: %s", exc)
            current = sources.fingerprint()
            if current != fingerprint:
                fingerprint = current
                await _reload(worker, webhook, sources, args)
    finally:
        if syncer is not None:
            syncer.cancel()
        await runner.cleanup()
        await worker.close()
    return 0


async def _sync_loop(
    args: argparse.Namespace,
    source: KubeSource,
    kinds: set[tuple[str, str]],
    worker: WorkerPool,
    webhook: AdmissionWebhook,
) -> None:
    """List the synced kinds every interval; a failed list keeps the last inventory."""
    while True:
        try:
            objects, refused = await asyncio.to_thread(
                list_inventory, source, kinds, args.sync_max_objects
            )
            await worker.replace_inventory(objects)
            webhook.namespaces = {
                str(o["metadata"]["name"]): o for o in objects if o.get("kind") == "Namespace"
            }
            if refused:
                log.warning("inventory full: %d objects left out (--sync-max-objects)", refused)
        except (GarrisonError, OSError) as exc:
            log.warning("inventory not refreshed, the last one stays: %s", exc)
        except Exception:  # a bug must not stop the sync for good: say it, go on
            log.exception("inventory sync failed; the last inventory stays")
        await asyncio.sleep(args.sync_interval)


async def _reload(
    worker: WorkerPool, webhook: AdmissionWebhook, sources: PolicySources, args: argparse.Namespace
) -> None:
    """New policies take effect whole, or not at all (the running set stays)."""
    try:
        bundle = sources.load()
        answer = await worker.reload(bundle.load_message(args.engine, args.result_cache))
    except (GarrisonError, OSError) as exc:
        log.error("policies not reloaded, the running set stays: %s", exc)
        return
    webhook.mutators = bundle.mutators
    if bundle.namespaces:  # else the synced ones stay
        webhook.namespaces = bundle.namespaces
    webhook.assigned_exempt = bundle.exempt_namespaces
    settle()
    log.info(
        "policies reloaded: %s templates, %s constraints",
        answer["templates"],
        answer["constraints"],
    )
