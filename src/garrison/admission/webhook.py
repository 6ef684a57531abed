"""The HTTPS admission webhook: AdmissionReview v1 in, Gatekeeper-format decisions out.

``POST /v1/admit`` validates; ``POST /v1/mutate`` mutates (JSONPatch). The answer carries
the request's ``uid`` and apiVersion. Denials are Gatekeeper's: each message
``[<constraint>] <msg>``, joined with newlines, status 403 Forbidden; ``warn`` constraints
become ``warnings`` (status code 299 when allowed with warnings); ``dryrun`` only counts.

Failure mode (``ignore`` by default, like Gatekeeper's failurePolicy): when evaluation runs
past the request's deadline, the worker dies, or a template errors, ``ignore`` allows the
request with a warning saying why, ``fail`` denies it. Requests in exempt namespaces
(kube-system and garrison's own by default) and from garrison's own service account are
allowed without evaluation, so the webhook never blocks its own recovery. A malformed or
oversized review is answered 400/413 with a message and never reaches the evaluator.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from garrison.admission.mutation import MutatorSet
from garrison.admission.review import as_map
from garrison.admission.worker import (
    WorkerBusy,
    WorkerError,
    WorkerPool,
    WorkerResult,
    WorkerTimeout,
)
from garrison.metrics import render

log = logging.getLogger("garrison.admission.webhook")

VALIDATION_POINT = "validation.gatekeeper.sh"
DEFAULT_MAX_BODY = 8 * 1024 * 1024  # two objects at etcd's 1.5 MiB limit, with room
REVIEW_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
_TIMEOUT_PARAM = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")


class ReviewError(ValueError):
    """A request body that is not a usable AdmissionReview."""


@dataclass(frozen=True)
class AdmissionConfig:
    deadline_s: float = 2.5  # under the generated webhook's 3 s timeout
    failure_mode: str = "ignore"  # ignore | fail
    exempt_namespaces: tuple[str, ...] = ("kube-system", "garrison")
    exempt_users: tuple[str, ...] = ("system:serviceaccount:garrison:garrison-admission",)
    max_body: int = DEFAULT_MAX_BODY


@dataclass
class AdmissionMetrics:
    registry: CollectorRegistry
    requests: Counter
    seconds: Histogram
    failures: Counter
    violations: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry) -> AdmissionMetrics:
        return cls(
            registry=registry,
            requests=Counter(
                "garrison_admission_requests",
                "Admission reviews by endpoint and decision",
                ["endpoint", "decision", "dry_run"],
                registry=registry,
            ),
            seconds=Histogram(
                "garrison_admission_request_seconds",
                "Time to answer one review",
                ["endpoint"],
                buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                registry=registry,
            ),
            failures=Counter(
                "garrison_admission_failures",
                "Reviews answered by the failure mode, by cause",
                ["cause"],
                registry=registry,
            ),
            violations=Counter(
                "garrison_admission_violations",
                "Violations found at admission, by constraint kind and action",
                ["kind", "action"],
                registry=registry,
            ),
        )


_JSON = msgspec.json.Decoder()


def parse_review(body: bytes) -> tuple[str, dict[str, Any]]:
    """(apiVersion, request) of an AdmissionReview body; ReviewError says what is wrong."""
    if not body:
        raise ReviewError("empty body: an AdmissionReview JSON object is expected")
    try:
        review = _JSON.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8: the latter
        raise ReviewError(f"malformed JSON: {exc}") from None
    except RecursionError:  # msgspec stops near 1,000 levels: no real object nests that deep
        raise ReviewError("JSON nested too deeply (about 1,000 levels or more)") from None
    if not isinstance(review, dict):
        raise ReviewError("the body is not a JSON object")
    api_version = review.get("apiVersion")
    if review.get("kind") != "AdmissionReview" or api_version not in REVIEW_VERSIONS:
        raise ReviewError(
            f"expected kind AdmissionReview with apiVersion in {list(REVIEW_VERSIONS)}, "
            f"got kind {review.get('kind')!r} apiVersion {api_version!r}"
        )
    request = review.get("request")
    if not isinstance(request, dict):
        raise ReviewError("AdmissionReview has no request object")
    if not isinstance(request.get("uid"), str) or not request["uid"]:
        raise ReviewError("request.uid is missing")
    kind = request.get("kind")
    if not isinstance(kind, dict) or not isinstance(kind.get("kind"), str):
        raise ReviewError("request.kind must be {group, version, kind}")
    for name in ("object", "oldObject"):
        if request.get(name) is not None and not isinstance(request[name], dict):
            raise ReviewError(f"request.{name} must be an object or null")
    if request.get("operation") == "DELETE" and request.get("object") is None:
        request["object"] = request.get("oldObject")
    return str(api_version), request


def _deadline(query_timeout: str | None, configured: float) -> float:
    """The API server appends ``?timeout=3s``; answer a little before it gives up."""
    if query_timeout:
        m = _TIMEOUT_PARAM.match(query_timeout)
        if m:
            value = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(2)]
            return max(0.05, min(configured, value * 0.85))
    return configured


def _response(api_version: str, uid: str, response: dict[str, Any]) -> web.Response:
    body = {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "response": {"uid": uid, **response},
    }
    return web.Response(body=msgspec.json.encode(body), content_type="application/json")


@dataclass
class Decision:
    allowed: bool
    deny: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None

    def as_response(self) -> dict[str, Any]:
        out: dict[str, Any] = {"allowed": self.allowed}
        if not self.allowed:
            message = "\n".join(self.deny)
            code, reason = (500, "InternalError") if self.failure else (403, "Forbidden")
            out["status"] = {"code": code, "reason": reason, "message": message}
        elif self.warnings:
            out["status"] = {"code": 299}
        if self.warnings:
            out["warnings"] = self.warnings
        return out


def decide(results: Sequence[WorkerResult], failure_mode: str) -> Decision:
    decision = Decision(allowed=True)
    for r in results:
        line = f"[{r.name}] {r.msg}"
        if r.error:
            if failure_mode == "fail":
                decision.deny.append(line)
            else:
                decision.warnings.append(f"[{r.name}] policy error, allowed (failure mode ignore)")
        elif r.action == "deny":
            decision.deny.append(line)
        elif r.action == "warn":
            decision.warnings.append(line)
    decision.allowed = not decision.deny
    return decision


class AdmissionWebhook:
    def __init__(
        self,
        worker: WorkerPool,
        config: AdmissionConfig,
        metrics: AdmissionMetrics,
        mutators: MutatorSet | None = None,
        namespaces: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.worker = worker
        self.config = config
        self.metrics = metrics
        self.mutators = mutators or MutatorSet()
        self.namespaces = namespaces if namespaces is not None else {}
        self.assigned_exempt: tuple[str, ...] = ()  # the part of the exemptions set centrally

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body)
        app.router.add_post("/v1/admit", self.validate)
        app.router.add_post("/v1/mutate", self.mutate)
        app.router.add_get("/healthz", self.health)
        app.router.add_get("/readyz", self.health)
        app.router.add_get("/metrics", self.render_metrics)
        return app

    async def health(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def render_metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=render(self.metrics.registry), content_type="text/plain")

    async def _read(self, request: web.Request, endpoint: str) -> tuple[str, dict[str, Any]]:
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/json\n")
        if request.content_length is not None and request.content_length > self.config.max_body:
            raise web.HTTPRequestEntityTooLarge(
                max_size=self.config.max_body, actual_size=request.content_length
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.metrics.requests.labels(endpoint, "too_large", "false").inc()
            raise
        try:
            return parse_review(body)
        except ReviewError as exc:
            self.metrics.requests.labels(endpoint, "malformed", "false").inc()
            raise web.HTTPBadRequest(text=f"invalid AdmissionReview: {exc}\n") from None

    def _exempt(self, review: Mapping[str, Any]) -> bool:
        namespace = review.get("namespace") or ""
        kind = as_map(review.get("kind"))
        if kind.get("kind") == "Namespace" and kind.get("group", "") == "":
            namespace = review.get("name") or namespace
        if namespace in self.config.exempt_namespaces or namespace in self.assigned_exempt:
            return True
        user = as_map(review.get("userInfo")).get("username")
        return user in self.config.exempt_users

    async def validate(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        api_version, review = await self._read(request, "validate")
        dry_run = "true" if review.get("dryRun") else "false"
        if self._exempt(review):
            self.metrics.requests.labels("validate", "exempt", dry_run).inc()
            return _response(api_version, review["uid"], {"allowed": True})
        namespace = review.get("namespace")
        if namespace and "namespaceObject" not in review:
            review["namespaceObject"] = self.namespaces.get(str(namespace))
        deadline = _deadline(request.query.get("timeout"), self.config.deadline_s)
        try:
            results = await self.worker.review(review, VALIDATION_POINT, deadline)
            decision = decide(results, self.config.failure_mode)
            counted = collections.Counter(
                (r.kind, "error" if r.error else r.action) for r in results
            )
            for (kind, action), count in counted.items():
                self.metrics.violations.labels(kind, action).inc(count)
        except WorkerError as exc:
            if isinstance(exc, WorkerBusy):
                cause = "overloaded"
            elif isinstance(exc, WorkerTimeout):
                cause = "timeout"
            else:
                cause = "worker"
            self.metrics.failures.labels(cause).inc()
            log.warning("review %s answered by failure mode: %s", review["uid"], exc)
            decision = self._failed(str(exc))
        label = "allowed" if decision.allowed else "denied"
        self.metrics.requests.labels("validate", label, dry_run).inc()
        self.metrics.seconds.labels("validate").observe(time.perf_counter() - started)
        return _response(api_version, review["uid"], decision.as_response())

    def _failed(self, why: str) -> Decision:
        if self.config.failure_mode == "fail":
            return Decision(
                allowed=False,
                deny=[f"garrison admission could not evaluate policies: {why}"],
                failure=why,
            )
        return Decision(
            allowed=True,
            warnings=[f"garrison admission could not evaluate policies, allowed: {why}"],
            failure=why,
        )

    async def mutate(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        api_version, review = await self._read(request, "mutate")
        dry_run = "true" if review.get("dryRun") else "false"
        if self._exempt(review) or review.get("operation") in ("DELETE", "CONNECT"):
            self.metrics.requests.labels("mutate", "exempt", dry_run).inc()
            return _response(api_version, review["uid"], {"allowed": True})
        patch = self.mutators.patch(review, self.namespaces.get(str(review.get("namespace"))))
        response: dict[str, Any] = {"allowed": True}
        if patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        self.metrics.requests.labels("mutate", "patched" if patch else "unchanged", dry_run).inc()
        self.metrics.seconds.labels("mutate").observe(time.perf_counter() - started)
        return _response(api_version, review["uid"], response)


class ReloadingCertificate:
    """A server TLS context whose certificate follows its files (a rotated Secret).

    New handshakes use the new certificate; a half-written pair is ignored until it loads.
    """

    def __init__(self, cert: Path, key: Path, interval_s: float = 5.0) -> None:
        self.cert, self.key, self.interval_s = cert, key, interval_s
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(str(cert), str(key))
        self._stamp = self._mtimes()
        self.reloads = 0

    def _mtimes(self) -> tuple[float, float]:
        try:
            return (self.cert.stat().st_mtime, self.key.stat().st_mtime)
        except OSError:
            return (0.0, 0.0)

    def check(self) -> bool:
        stamp = self._mtimes()
        if stamp == self._stamp:
            return False
        try:
            self.context.load_cert_chain(str(self.cert), str(self.key))
        except (ssl.SSLError, OSError) as exc:
            log.warning("new TLS certificate not loaded yet (%s); keeping the old one", exc)
            return False
        self._stamp = stamp
        self.reloads += 1
        log.info("TLS certificate reloaded from %s", self.cert)
        return True

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.check()
