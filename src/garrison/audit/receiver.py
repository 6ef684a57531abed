"""The audit webhook backend that kube-apiserver's ``--audit-webhook-config-file`` points at.

POST ``/k8s-audit`` with an EventList (or a single Event). Authentication by bearer token
or client certificate, resolved to a cluster. The body is capped; decoded events go to a
bounded queue, and when it is full the answer is 429 with Retry-After at once, so the API
server (which retries with backoff) is never stalled. Valid events of a batch are kept even
when others in it are refused; every refusal is counted by reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from garrison.audit.decode import NOT_AUDIT, AuditDecodeError, decode_event_list
from garrison.events.audit import AuditEvent
from garrison.metrics import AuditMetrics, render
from garrison.tls import peer_common_name

log = logging.getLogger("garrison.audit.receiver")

DEFAULT_MAX_BODY = 12 * 1024 * 1024  # Falco's cap; the API server's batches are at most ~10 MiB
TokenResolver = Callable[[str], str | None]
CertResolver = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class AuditBatch:
    cluster: str
    events: list[AuditEvent]


class BoundedBatchQueue:
    """A queue bounded by the number of events it holds, not batches."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.pending = 0
        self._queue: asyncio.Queue[AuditBatch] = asyncio.Queue()

    def offer(self, batch: AuditBatch) -> bool:
        if self.pending + len(batch.events) > self.max_events:
            return False
        self.pending += len(batch.events)
        self._queue.put_nowait(batch)
        return True

    async def take(self) -> AuditBatch:
        return await self._queue.get()

    def done(self, batch: AuditBatch) -> None:
        self.pending -= len(batch.events)
        self._queue.task_done()

    async def join(self) -> None:
        await self._queue.join()


def _reason(text: str) -> str:
    if text.startswith("malformed JSON"):
        return "malformed_json"
    if text.startswith("unsupported apiVersion"):
        return "wrong_api_version"
    if text.startswith(NOT_AUDIT):
        return "not_audit_event"
    return "invalid"


class AuditReceiver:
    def __init__(
        self,
        *,
        queue: BoundedBatchQueue,
        metrics: AuditMetrics,
        resolve_token: TokenResolver,
        resolve_cert: CertResolver | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        path: str = "/k8s-audit",
    ) -> None:
        self.queue = queue
        self.metrics = metrics
        self.resolve_token = resolve_token
        self.resolve_cert = resolve_cert
        self.max_body = max_body
        self.path = path

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post(self.path, self.handle)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/metrics", self.metrics_page)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "queued_events": self.queue.pending})

    async def metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(body=render(self.metrics.registry), content_type="text/plain")

    def _refuse(self, status: int, reason: str, message: str, **headers: str) -> web.Response:
        self.metrics.requests.labels(code=str(status)).inc()
        self.metrics.events_rejected.labels(reason=reason).inc()
        return web.json_response({"error": message}, status=status, headers=headers or None)

    def _cluster(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self.resolve_token(token.strip())
        if self.resolve_cert is not None:
            common_name = peer_common_name(request.transport)
            if common_name:
                return self.resolve_cert(common_name)
        return None

    async def handle(self, request: web.Request) -> web.Response:
        cluster = self._cluster(request)
        if cluster is None:
            return self._refuse(401, "unauthorized", "missing or unknown credential")
        if request.content_type != "application/json":
            return self._refuse(
                415, "bad_content_type", f"want application/json, got {request.content_type}"
            )
        length = request.content_length
        if length is not None and length > self.max_body:
            return self._refuse(
                413, "too_large", f"body of {length} bytes exceeds the {self.max_body} byte limit"
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, "too_large", f"body exceeds the {self.max_body} byte limit")
        try:
            result = decode_event_list(body)
        except AuditDecodeError as exc:
            return self._refuse(400, "invalid", str(exc))
        for issue in result.issues:
            self.metrics.events_rejected.labels(reason=_reason(issue.reason)).inc()
        if result.issues and not result.events:
            status_reason = _reason(result.issues[0].reason)
            self.metrics.requests.labels(code="400").inc()
            log.warning("audit batch from %s refused: %s", cluster, result.issues[0].reason)
            return web.json_response(
                {
                    "error": result.issues[0].reason,
                    "reason": status_reason,
                    "rejected": [{"index": i.index, "error": i.reason} for i in result.issues],
                },
                status=400,
            )
        if result.events and not self.queue.offer(AuditBatch(cluster, result.events)):
            self.metrics.requests.labels(code="429").inc()
            self.metrics.events_rejected.labels(reason="overloaded").inc(len(result.events))
            return web.json_response(
                {"error": "analysis queue full, retry later"},
                status=429,
                headers={"Retry-After": "1"},
            )
        self.metrics.events_received.inc(len(result.events))
        self.metrics.queue_depth.set(self.queue.pending)
        self.metrics.requests.labels(code="200").inc()
        if result.issues:
            log.warning(
                "audit batch from %s: %d events kept, %d refused (first: %s)",
                cluster,
                len(result.events),
                len(result.issues),
                result.issues[0].reason,
            )
        return web.json_response(
            {
                "accepted": len(result.events),
                "rejected": [{"index": i.index, "error": i.reason} for i in result.issues],
            }
        )


AlertSink = Callable[[AuditBatch], Awaitable[None]]


async def run_worker(queue: BoundedBatchQueue, handle: AlertSink, metrics: AuditMetrics) -> None:
    """Drain the queue forever, one batch at a time; a failing batch is logged, not fatal."""
    while True:
        batch = await queue.take()
        try:
            with metrics.batch_seconds.time():
                await handle(batch)
        except Exception:
            log.exception(
                "audit batch of %d events from %s failed", len(batch.events), batch.cluster
            )
        finally:
            queue.done(batch)
            metrics.queue_depth.set(queue.pending)
