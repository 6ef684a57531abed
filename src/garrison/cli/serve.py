"""Composition root of ``garrison server`` and ``garrison up``: store, analyzer, receiver, API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry

from garrison.audit.analyzer import AnalyzerConfig, AuditAnalyzer
from garrison.audit.decode import DecodeResult, decode_event
from garrison.audit.receiver import AuditBatch, AuditReceiver, BoundedBatchQueue, run_worker
from garrison.events.alert import Alert
from garrison.events.audit import AuditEvent
from garrison.heap import settle
from garrison.metrics import audit_metrics, ingest_metrics
from garrison.server.api import ServerAPI, ServerConfig
from garrison.server.auth import TokenCache
from garrison.server.store.sqlite import SQLiteStore
from garrison.tls import TLSFiles, server_context

log = logging.getLogger("garrison.serve")
BASELINE_STATE_KEY = "audit.service_account_baseline"
ANALYSIS_CHUNK = 25


@dataclass
class ServeConfig:
    db: Path
    tls: TLSFiles
    client_ca: Path | None = None  # CA of agents' client certificates; None: tokens only
    host: str = "127.0.0.1"
    api_port: int = 8443
    audit_port: int = 8765
    audit_max_body: int = 12 * 1024 * 1024
    audit_queue_events: int = 50_000
    analyzer: AnalyzerConfig = field(default_factory=AnalyzerConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    snapshot_seconds: float = 60.0
    token_cache_seconds: float = 5.0


class Backend:
    """Everything ``garrison server`` runs, started and stopped in order."""

    def __init__(self, config: ServeConfig, store: SQLiteStore) -> None:
        self.config = config
        self.store = store
        self.registry = CollectorRegistry()
        self.audit_metrics = audit_metrics(self.registry)
        self.analyzer = AuditAnalyzer.from_config(config.analyzer)
        self._restore_baseline()
        self.queue = BoundedBatchQueue(config.audit_queue_events)
        self.tokens = TokenCache(store.cluster_for_token, ttl_seconds=config.token_cache_seconds)
        self.receiver = AuditReceiver(
            queue=self.queue,
            metrics=self.audit_metrics,
            resolve_token=self._cluster_name_for_token,
            resolve_cert=self._cluster_name_for_cert,
            max_body=config.audit_max_body,
        )
        self.api = ServerAPI(
            store,
            ingest_metrics(self.registry),
            config.server,
            on_audit_events=self._ingested_audit_events,
        )
        self._runners: list[web.AppRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.bound: dict[str, int] = {}

    # -- wiring ---------------------------------------------------------------------------
    def _cluster_name_for_token(self, token: str) -> str | None:
        record = self.tokens.resolve(token)
        return record.name if record is not None else None

    def _cluster_name_for_cert(self, common_name: str) -> str | None:
        for record in self.store.list_clusters():
            if record.name == common_name and not record.revoked:
                return record.name
        return None

    def _restore_baseline(self) -> None:
        baseline = self.analyzer.baseline
        data = self.store.get_state(BASELINE_STATE_KEY)
        if baseline is None or data is None:
            return
        try:
            baseline.restore(data)
        except (msgspec.DecodeError, ValueError) as exc:
            log.error("service-account baseline state unreadable, starting afresh: %s", exc)

    def save_baseline(self) -> None:
        if self.analyzer.baseline is not None:
            self.store.put_state(BASELINE_STATE_KEY, self.analyzer.baseline.snapshot())

    def analyze_events(self, cluster: str, events: list[AuditEvent]) -> list[Alert]:
        alerts: list[Alert] = []
        for event in events:
            alerts.extend(self.analyzer.analyze(event, cluster))
        return alerts

    def store_alerts(self, alerts: list[Alert]) -> None:
        self.store.record_alerts(alerts, self.config.server.dedupe_window_seconds)
        for alert in alerts:
            self.audit_metrics.alerts.labels(severity=alert.severity).inc()

    async def _handle(self, batch: AuditBatch) -> None:
        """Analyze on the event loop in small chunks, yielding between them.

        Analysis is CPU work: on a thread it would contend for the GIL with the loop and
        delay the API server's requests; in chunks a request waits for one chunk at most.
        """
        alerts: list[Alert] = []
        events = batch.events
        for start in range(0, len(events), ANALYSIS_CHUNK):
            alerts.extend(
                self.analyze_events(batch.cluster, events[start : start + ANALYSIS_CHUNK])
            )
            await asyncio.sleep(0)
        if alerts:
            await asyncio.to_thread(self.store_alerts, alerts)

    async def _ingested_audit_events(self, cluster: str, payloads: list[bytes]) -> bool:
        """Queue ingested audit events for analysis; False when the queue is full."""
        result = DecodeResult()
        for index, payload in enumerate(payloads):
            decode_event(payload, index, result)
        return not result.events or self.queue.offer(AuditBatch(cluster, result.events))

    async def _snapshots(self) -> None:
        while True:
            await asyncio.sleep(self.config.snapshot_seconds)
            await asyncio.to_thread(self.save_baseline)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        context = server_context(self.config.tls, client_ca=self.config.client_ca)
        for name, app, port in (
            ("api", self.api.app(), self.config.api_port),
            ("audit", self.receiver.app(), self.config.audit_port),
        ):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, self.config.host, port, ssl_context=context)
            await site.start()
            self._runners.append(runner)
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.bound[name] = sockets[0].getsockname()[1] if sockets else port
        self._tasks.append(
            asyncio.create_task(run_worker(self.queue, self._handle, self.audit_metrics))
        )
        self._tasks.append(asyncio.create_task(self._snapshots()))
        # rules, closures and caches live as long as the process: keep the cyclic GC from
        # walking them on every full collection (pauses would land on webhook answers)
        settle()  # the compiled rules live as long as the process

    async def stop(self, drain_seconds: float = 10.0) -> None:
        for runner in self._runners:
            await runner.cleanup()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), drain_seconds)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self.save_baseline)


async def run_until_signalled(
    backend: Backend,
    on_ready: object = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM; ``on_stop`` runs first (children of ``garrison up``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await backend.start()
    if callable(on_ready):
        on_ready(backend)
    await stop.wait()
    if on_stop is not None:
        await on_stop()
    log.info("stopping: draining the audit queue")
    await backend.stop()
