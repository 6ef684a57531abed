"""The audit sweep: existing objects judged by the same constraints, as Gatekeeper's audit does.

Only the kinds some constraint matches are listed (Gatekeeper's ``--audit-match-kind-only``),
in pages of 500 (``limit``/``continue``), so memory holds a page, not the cluster.
Namespaces are listed first: they answer namespaceSelectors. Each constraint active at the
audit enforcement point keeps its violations up to a cap (Gatekeeper's
``constraintViolationsLimit``, 20 by default) and counts every one beyond it; every
violation also leaves as a :class:`Finding`, through a callback, so the caller can ship
them all (the outbox) while the report stays bounded. Reviews carry no operation or user,
as in Gatekeeper; templates that read request metadata cannot be audited.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from garrison.admission.evaluate import PolicySet
from garrison.admission.review import as_map, request_for_object
from garrison.events.errors import GarrisonError
from garrison.events.finding import Finding, ObjectRef
from garrison.kube import KubeConfig, get_json

AUDIT_POINT = "audit.gatekeeper.sh"
DEFAULT_CHUNK = 500
DEFAULT_VIOLATIONS_LIMIT = 20
MAX_DISCOVERED_KINDS = 512  # a constraint with no kinds audits every kind, within reason


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{base}/{self.plural}"


class ObjectSource(Protocol):
    def resources(self, wanted: set[tuple[str, str]]) -> list[Resource]: ...

    def list(self, resource: Resource, chunk: int) -> Iterator[Mapping[str, Any]]: ...


@dataclass
class ConstraintReport:
    kind: str
    name: str
    action: str
    total: int = 0
    violations: list[Finding] = field(default_factory=list)  # at most the limit


@dataclass
class AuditReport:
    audit_id: str
    started: float
    finished: float = 0.0
    objects: int = 0
    errors: list[str] = field(default_factory=list)
    constraints: dict[tuple[str, str], ConstraintReport] = field(default_factory=dict)


class KubeSource:
    """Objects from a Kubernetes API server: discovery, then paged lists."""

    def __init__(self, config: KubeConfig, timeout: float = 60.0) -> None:
        self.config = config
        self.timeout = timeout

    def resources(self, wanted: set[tuple[str, str]]) -> list[Resource]:
        everything = ("*", "*") in wanted
        groups = get_json(self.config, "/apis", self.timeout).get("groups") or []
        found: list[Resource] = []
        paths = [("", "v1", "/api/v1")]
        for g in groups:
            preferred = as_map(g.get("preferredVersion")).get("version")
            name = g.get("name")
            if not isinstance(name, str) or not isinstance(preferred, str):
                continue
            if everything or any(w[0] in (name, "*") for w in wanted):
                paths.append((name, preferred, f"/apis/{name}/{preferred}"))
        for group, version, path in paths:
            if not everything and not any(w[0] in (group, "*") for w in wanted):
                continue
            doc = get_json(self.config, path, self.timeout)
            for r in doc.get("resources") or []:
                name, kind = r.get("name", ""), r.get("kind", "")
                if "/" in name or "list" not in (r.get("verbs") or []):
                    continue  # subresources, and what cannot be listed
                if everything or {(group, kind), ("*", kind), (group, "*")} & wanted:
                    found.append(Resource(group, version, kind, name, bool(r.get("namespaced"))))
        return found[:MAX_DISCOVERED_KINDS]

    def list(self, resource: Resource, chunk: int) -> Iterator[Mapping[str, Any]]:
        token = ""
        while True:
            path = f"{resource.path()}?limit={chunk}"
            if token:
                path += f"&continue={quote(token)}"
            doc = get_json(self.config, path, self.timeout)
            for item in doc.get("items") or []:
                if isinstance(item, dict):
                    # list items carry no apiVersion/kind of their own
                    item.setdefault("apiVersion", resource.api_version)
                    item.setdefault("kind", resource.kind)
                    yield item
            token = str(as_map(doc.get("metadata")).get("continue") or "")
            if not token:
                return


class MemorySource:
    """Objects already in memory (files, benchmarks, tests)."""

    def __init__(self, objects: Iterable[Mapping[str, Any]]) -> None:
        self.objects = list(objects)

    def resources(self, wanted: set[tuple[str, str]]) -> list[Resource]:
        seen: dict[tuple[str, str], Resource] = {}
        for obj in self.objects:
            group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
            kind = str(obj.get("kind", ""))
            if ("*", "*") in wanted or (group, kind) in wanted or ("*", kind) in wanted:
                namespaced = bool(as_map(obj.get("metadata")).get("namespace"))
                seen.setdefault((group, kind), Resource(group, version, kind, kind, namespaced))
        return list(seen.values())

    def list(self, resource: Resource, chunk: int) -> Iterator[Mapping[str, Any]]:
        for obj in self.objects:
            group = str(obj.get("apiVersion", "")).rpartition("/")[0]
            if (group, obj.get("kind")) == (resource.group, resource.kind):
                yield obj


FindingSink = Callable[[Finding], None]


class AuditSweep:
    def __init__(
        self,
        policy: PolicySet,
        source: ObjectSource,
        *,
        cluster: str = "",
        chunk: int = DEFAULT_CHUNK,
        violations_limit: int = DEFAULT_VIOLATIONS_LIMIT,
        sink: FindingSink | None = None,
    ) -> None:
        self.policy = policy
        self.source = source
        self.cluster = cluster
        self.chunk = chunk
        self.violations_limit = violations_limit
        self.sink = sink

    def run(self) -> AuditReport:
        report = AuditReport(audit_id=str(uuid.uuid4()), started=time.time())
        for lc in self.policy.constraints:
            action = lc.constraint.action_at(AUDIT_POINT)
            if action is not None:
                key = (lc.constraint.kind, lc.constraint.name)
                report.constraints[key] = ConstraintReport(key[0], key[1], action)
        wanted = self.policy.kinds() | {("", "Namespace")}
        try:
            resources = self.source.resources(wanted)
        except GarrisonError as exc:
            report.errors.append(f"discovery: {exc}")
            report.finished = time.time()
            return report
        resources.sort(key=lambda r: (r.kind != "Namespace", r.group, r.kind))
        for resource in resources:
            try:
                for obj in self.source.list(resource, self.chunk):
                    if resource.kind == "Namespace" and resource.group == "":
                        self.policy.inventory.put(obj)
                    self._judge(obj, report)
            except GarrisonError as exc:
                report.errors.append(f"{resource.api_version} {resource.kind}: {exc}")
        report.finished = time.time()
        return report

    def _judge(self, obj: Mapping[str, Any], report: AuditReport) -> None:
        report.objects += 1
        try:
            request = request_for_object(obj)
            results = self.policy.review(request, AUDIT_POINT)
        except GarrisonError as exc:
            report.errors.append(f"{_ref(obj).describe()}: {exc}")
            return
        for r in results:
            entry = report.constraints.get((r.constraint_kind, r.constraint_name))
            if entry is None:
                continue
            entry.total += 1
            finding = Finding(
                source="admission-audit",
                audit_id=report.audit_id,
                cluster=self.cluster,
                policy_kind=r.constraint_kind,
                policy_name=r.constraint_name,
                action=r.action,
                message=r.msg,
                error=r.error,
                object=_ref(obj),
                time=time.time(),
            )
            if len(entry.violations) < self.violations_limit:
                entry.violations.append(finding)
            if self.sink is not None:
                self.sink(finding)


def _ref(obj: Mapping[str, Any]) -> ObjectRef:
    metadata = as_map(obj.get("metadata"))
    group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
    return ObjectRef(
        group=group,
        version=version,
        kind=str(obj.get("kind", "")),
        namespace=str(metadata.get("namespace", "")),
        name=str(metadata.get("name", "")),
    )
