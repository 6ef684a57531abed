"""The backend's HTTP API: envelope ingest for agents, alert queries for people and tools.

Agents authenticate with their cluster token; the query API with an API token. Handlers do
store work in a thread so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from garrison.events.alert import Alert, AlertStatus, Severity
from garrison.events.envelope import RECORD_KINDS, SCHEMA_VERSION, Envelope, EnvelopeBatch
from garrison.events.finding import Finding
from garrison.events.policy import EFFECTS, PolicyAssignment
from garrison.json_members import TOO_DEEP, split_members
from garrison.metrics import IngestMetrics, render
from garrison.server.openapi import openapi_document
from garrison.server.store.base import AlertQuery, ClusterRecord, Store, StoredEvent, StoreError
from garrison.tls import peer_common_name

log = logging.getLogger("garrison.server")

DEFAULT_MAX_BODY = 16 * 1024 * 1024
MAX_ENVELOPES = 10_000
_batch_decoder = msgspec.json.Decoder(EnvelopeBatch)
_envelope_decoder = msgspec.json.Decoder(Envelope)


class _TypedBatch(msgspec.Struct):
    envelopes: list[Envelope]


_typed_batch_decoder = msgspec.json.Decoder(_TypedBatch)
_alert_decoder = msgspec.json.Decoder(Alert)

AuditEventHandler = Callable[[str, list[bytes]], Awaitable[bool]]

CLUSTER_KEY = web.AppKey("cluster", ClusterRecord)


class StatusChange(msgspec.Struct):
    status: str


class NewCluster(msgspec.Struct):
    name: str


@dataclass
class ServerConfig:
    dedupe_window_seconds: float = 3600.0
    max_body: int = DEFAULT_MAX_BODY


_finding_decoder = msgspec.json.Decoder(Finding)
_assignment_decoder = msgspec.json.Decoder(PolicyAssignment)


def _envelopes(body: bytes) -> list[Envelope | msgspec.Raw]:
    """A batch's envelopes, each still to be decoded on its own (DecodeError: not a batch).

    One envelope nested too deeply for msgspec is split off by a scan that does not recurse,
    so it is refused alone (``_accept``) and never costs the batch."""
    try:
        return list(_batch_decoder.decode(body).envelopes)
    except RecursionError:
        members = dict(split_members(body) or [])
        envelopes = split_members(members.get("envelopes", b""))
        if envelopes is None:
            raise msgspec.DecodeError(f"{TOO_DEEP}, and not a well-formed batch") from None
        return [msgspec.Raw(value) for _, value in envelopes]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class ServerAPI:
    def __init__(
        self,
        store: Store,
        metrics: IngestMetrics,
        config: ServerConfig | None = None,
        on_audit_events: AuditEventHandler | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.config = config or ServerConfig()
        self.on_audit_events = on_audit_events

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body)
        app.router.add_post("/v1/ingest", self.ingest)
        app.router.add_get("/v1/alerts", self.list_alerts)
        app.router.add_get("/v1/alerts/{id}", self.get_alert)
        app.router.add_patch("/v1/alerts/{id}", self.change_alert)
        app.router.add_get("/v1/clusters", self.list_clusters)
        app.router.add_post("/v1/clusters", self.add_cluster)
        app.router.add_put("/v1/clusters/{name}/policy", self.put_policy)
        app.router.add_get("/v1/clusters/{name}/policy", self.get_cluster_policy)
        app.router.add_get("/v1/policy", self.get_own_policy)
        app.router.add_get("/openapi.json", self.openapi)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/metrics", self.metrics_page)
        return app

    # -- auth -----------------------------------------------------------------------------
    async def _admin(self, request: web.Request) -> web.Response | None:
        token = _bearer(request)
        if token is None or not await asyncio.to_thread(self.store.api_token_valid, token):
            return _error(401, "missing or unknown API token")
        return None

    # -- plain pages ----------------------------------------------------------------------
    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(body=render(self.metrics.registry), content_type="text/plain")

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    # -- ingest ---------------------------------------------------------------------------
    def _count(self, code: int) -> None:
        self.metrics.requests.labels(code=str(code)).inc()

    async def _agent(self, request: web.Request) -> ClusterRecord | None:
        """The cluster an agent credential names: its token, or a client certificate."""
        token = _bearer(request)
        if token:
            return await asyncio.to_thread(self.store.cluster_for_token, token)
        name = peer_common_name(request.transport)  # mTLS: a certificate from the client CA
        return await asyncio.to_thread(self.store.cluster_by_name, name) if name else None

    async def ingest(self, request: web.Request) -> web.Response:
        cluster = await self._agent(request)
        if cluster is None:
            self._count(401)
            self.metrics.rejected.labels(reason="unauthorized").inc()
            return _error(401, "missing, unknown or revoked cluster credential")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self._count(413)
            self.metrics.rejected.labels(reason="too_large").inc()
            return _error(413, f"body exceeds the {self.config.max_body} byte limit")
        typed: list[Envelope | msgspec.Raw]
        try:  # one typed pass when every envelope is well formed, item by item otherwise
            typed = list(_typed_batch_decoder.decode(body).envelopes)
        except (msgspec.DecodeError, RecursionError):
            try:
                typed = _envelopes(body)
            except msgspec.DecodeError as exc:
                self._count(400)
                self.metrics.rejected.labels(reason="malformed").inc()
                return _error(400, f"not an envelope batch: {exc}")
        if len(typed) > MAX_ENVELOPES:
            self._count(413)
            self.metrics.rejected.labels(reason="too_many").inc()
            return _error(413, f"at most {MAX_ENVELOPES} envelopes per request")
        rejected: list[dict[str, Any]] = []
        events: list[StoredEvent] = []
        alerts: list[Alert] = []
        audit_payloads: list[bytes] = []
        for index, item in enumerate(typed):
            problem = self._accept(item, cluster, events, alerts, audit_payloads)
            if problem is not None:
                reason, message = problem
                self.metrics.rejected.labels(reason=reason).inc()
                rejected.append({"index": index, "error": message})
        handler = self.on_audit_events
        if (
            audit_payloads
            and handler is not None
            and not await handler(cluster.name, audit_payloads)
        ):
            self._count(503)
            self.metrics.rejected.labels(reason="overloaded").inc(len(events))
            return web.json_response(
                {"error": "analysis queue full, retry later"},
                status=503,
                headers={"Retry-After": "1"},
            )
        new = await asyncio.to_thread(self.store.ingest_events, events) if events else 0
        duplicates = len(events) - new
        if alerts:
            await asyncio.to_thread(
                self.store.record_alerts, alerts, self.config.dedupe_window_seconds
            )
        self.metrics.duplicates.inc(duplicates)
        for kind, count in collections.Counter(event.kind for event in events).items():
            self.metrics.envelopes.labels(kind=kind).inc(count)
        self._count(200)
        return web.json_response(
            {"accepted": len(events), "duplicates": duplicates, "rejected": rejected}
        )

    def _accept(
        self,
        item: Envelope | msgspec.Raw,
        cluster: ClusterRecord,
        events: list[StoredEvent],
        alerts: list[Alert],
        audit_payloads: list[bytes],
    ) -> tuple[str, str] | None:
        if isinstance(item, Envelope):
            envelope = item
        else:
            try:
                envelope = _envelope_decoder.decode(item)
            except msgspec.DecodeError as exc:
                return "malformed", f"not an envelope: {exc}"
            except RecursionError:
                return "malformed", f"not an envelope: {TOO_DEEP}"
        if envelope.schema_version != SCHEMA_VERSION:
            return "schema_version", f"schema_version {envelope.schema_version} is not supported"
        if envelope.cluster_id not in (cluster.id, cluster.name):
            return "wrong_cluster", "envelope names another cluster than its token"
        if envelope.kind not in RECORD_KINDS:
            return "unknown_kind", f"unknown record kind {envelope.kind!r}"
        if not envelope.idempotency_key or len(envelope.idempotency_key) > 200:
            return "malformed", "idempotency_key must be 1 to 200 characters"
        payload = bytes(envelope.payload)
        if envelope.kind == "alert":
            try:
                alert = _alert_decoder.decode(payload)
                Severity.parse(alert.severity)
            except (msgspec.DecodeError, ValueError) as exc:
                return "malformed", f"bad alert payload: {exc}"
            except RecursionError:
                return "malformed", f"bad alert payload: {TOO_DEEP}"
            alert.entities = msgspec.structs.replace(alert.entities, cluster=cluster.name)
            alerts.append(alert)
        elif envelope.kind == "audit_event":
            audit_payloads.append(payload)
        elif envelope.kind == "finding":
            try:
                _finding_decoder.decode(payload)
            except msgspec.DecodeError as exc:
                return "malformed", f"bad finding payload: {exc}"
            except RecursionError:
                return "malformed", f"bad finding payload: {TOO_DEEP}"
        events.append(
            StoredEvent(
                idempotency_key=envelope.idempotency_key,
                cluster_id=cluster.id,
                kind=envelope.kind,
                source=envelope.source,
                produced_at=envelope.produced_at,
                payload=payload,
            )
        )
        return None

    # -- queries --------------------------------------------------------------------------
    async def list_alerts(self, request: web.Request) -> web.Response:
        denied = await self._admin(request)
        if denied is not None:
            return denied
        try:
            query = parse_alert_query(request.query)
        except ValueError as exc:
            return _error(400, str(exc))
        alerts = await asyncio.to_thread(self.store.query_alerts, query)
        return web.Response(
            body=msgspec.json.encode({"alerts": alerts, "count": len(alerts)}),
            content_type="application/json",
        )

    async def get_alert(self, request: web.Request) -> web.Response:
        denied = await self._admin(request)
        if denied is not None:
            return denied
        alert = await asyncio.to_thread(self.store.get_alert, request.match_info["id"])
        if alert is None:
            return _error(404, "no such alert")
        return web.Response(body=msgspec.json.encode(alert), content_type="application/json")

    async def change_alert(self, request: web.Request) -> web.Response:
        denied = await self._admin(request)
        if denied is not None:
            return denied
        try:
            change = msgspec.json.decode(await request.read(), type=StatusChange)
            status = AlertStatus(change.status).value
        except (msgspec.DecodeError, ValueError):
            allowed = ", ".join(s.value for s in AlertStatus)
            return _error(400, f'body must be {{"status": one of {allowed}}}')
        alert = await asyncio.to_thread(
            self.store.set_alert_status, request.match_info["id"], status
        )
        if alert is None:
            return _error(404, "no such alert")
        return web.Response(body=msgspec.json.encode(alert), content_type="application/json")

    async def list_clusters(self, request: web.Request) -> web.Response:
        denied = await self._admin(request)
        if denied is not None:
            return denied
        clusters = await asyncio.to_thread(self.store.list_clusters)
        return web.json_response(
            {"clusters": [{"id": c.id, "name": c.name, "revoked": c.revoked} for c in clusters]}
        )

    async def add_cluster(self, request: web.Request) -> web.Response:
        denied = await self._admin(request)
        if denied is not None:
            return denied
        try:
            new = msgspec.json.decode(await request.read(), type=NewCluster)
        except msgspec.DecodeError:
            return _error(400, 'body must be {"name": "<cluster name>"}')
        if not new.name or len(new.name) > 100:
            return _error(400, "cluster name must be 1 to 100 characters")
        try:
            record, token = await asyncio.to_thread(self.store.add_cluster, new.name)
        except StoreError as exc:
            return _error(409, str(exc))
        return web.json_response({"id": record.id, "name": record.name, "token": token}, status=201)

    # -- central policy assignment ----------------------------------------------------------
    async def _admin_cluster(self, request: web.Request) -> ClusterRecord | web.Response:
        """The cluster named in the path, for an admin caller; else the error answer."""
        denied = await self._admin(request)
        if denied is not None:
            return denied
        cluster = await asyncio.to_thread(self.store.cluster_by_name, request.match_info["name"])
        return cluster if cluster is not None else _error(404, "no such cluster")

    async def put_policy(self, request: web.Request) -> web.Response:
        cluster = await self._admin_cluster(request)
        if isinstance(cluster, web.Response):
            return cluster
        try:
            assignment = _assignment_decoder.decode(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body exceeds the {self.config.max_body} byte limit")
        except msgspec.DecodeError as exc:
            return _error(400, f"not a policy assignment: {exc}")
        problem = _check_assignment(assignment)
        if problem:
            return _error(400, problem)
        assignment.version = 0
        assignment.updated_at = time.time()
        body = msgspec.json.encode(assignment)
        version = await asyncio.to_thread(self.store.put_policy_assignment, cluster.id, body)
        return web.json_response({"cluster": cluster.name, "version": version})

    async def get_cluster_policy(self, request: web.Request) -> web.Response:
        cluster = await self._admin_cluster(request)
        if isinstance(cluster, web.Response):
            return cluster
        return await self._policy_answer(request, cluster)

    async def get_own_policy(self, request: web.Request) -> web.Response:
        """What the admission deployment of the calling cluster pulls (agent credential)."""
        cluster = await self._agent(request)
        if cluster is None:
            return _error(401, "missing, unknown or revoked cluster credential")
        return await self._policy_answer(request, cluster)

    async def _policy_answer(self, request: web.Request, cluster: ClusterRecord) -> web.Response:
        stored = await asyncio.to_thread(self.store.get_policy_assignment, cluster.id)
        if stored is None:
            return _error(404, f"no policy assigned to cluster {cluster.name}")
        body, version = stored
        etag = f'"{version}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        assignment = _assignment_decoder.decode(body)
        assignment.version = version
        return web.Response(
            body=msgspec.json.encode(assignment),
            content_type="application/json",
            headers={"ETag": etag},
        )


def _check_assignment(assignment: PolicyAssignment) -> str | None:
    for key, effect in assignment.effects.items():
        if "/" not in key or effect not in EFFECTS:
            return f"effects: {key!r}: {effect!r} must be INITIATIVE/CONSTRAINT: {list(EFFECTS)}"
    for i, obj in enumerate(assignment.objects):
        if not isinstance(obj.get("kind"), str) or not isinstance(obj.get("apiVersion"), str):
            return f"objects[{i}] needs apiVersion and kind"
    return None


def _float(params: Any, name: str) -> float | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"'{name}' must be a number of seconds since the epoch") from None


def parse_alert_query(params: Any) -> AlertQuery:
    """Query-string parameters → ``AlertQuery``; a bad value raises ``ValueError``."""
    severity = params.get("severity")
    min_severity = params.get("min_severity")
    status = params.get("status")
    if status is not None:
        status = AlertStatus(status).value
    try:
        limit = int(params.get("limit", "100"))
        offset = int(params.get("offset", "0"))
    except ValueError:
        raise ValueError("'limit' and 'offset' must be integers") from None
    return AlertQuery(
        cluster=params.get("cluster") or None,
        namespace=params.get("namespace") or None,
        rule_id=params.get("rule") or None,
        status=status,
        severity=int(Severity.parse(severity)) if severity else None,
        min_severity=int(Severity.parse(min_severity)) if min_severity else None,
        since=_float(params, "since"),
        until=_float(params, "until"),
        limit=limit,
        offset=offset,
    )
