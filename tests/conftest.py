"""Shared test helpers: corpus location and audit-event builders."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec
import pytest

from garrison.events.audit import AuditEvent

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPORA = SHARED / "corpora"
_ids = itertools.count()


def corpus(name: str) -> Path:
    path = CORPORA / name
    if not path.exists():
        pytest.fail(f"corpus {path} is missing: the checkout needs ../shared beside it")
    return path


def audit_event(
    verb: str = "create",
    resource: str = "pods",
    *,
    namespace: str = "default",
    name: str = "web",
    subresource: str = "",
    user: str = "alice",
    groups: list[str] | None = None,
    stage: str = "ResponseComplete",
    code: int = 201,
    request_object: Any = None,
    response_object: Any = None,
    uri: str | None = None,
    user_agent: str = "kubectl/v1.31.0",
    source_ips: list[str] | None = None,
    annotations: dict[str, str] | None = None,
    impersonated: str | None = None,
    api_group: str = "",
    time: str = "2026-12-01T10:00:00.000000Z",
) -> AuditEvent:
    """A realistic audit Event, shaped as kube-apiserver writes it."""
    ref: dict[str, Any] = {"resource": resource, "apiVersion": "v1"}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if subresource:
        ref["subresource"] = subresource
    if api_group:
        ref["apiGroup"] = api_group
    path = f"/api/v1/namespaces/{namespace}/{resource}" if namespace else f"/api/v1/{resource}"
    data: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": f"test-{next(_ids)}",
        "stage": stage,
        "requestURI": uri or path,
        "verb": verb,
        "user": {"username": user, "groups": groups or ["system:authenticated"]},
        "sourceIPs": source_ips or ["10.0.0.5"],
        "userAgent": user_agent,
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": time,
        "stageTimestamp": time,
        "annotations": annotations or {"authorization.k8s.io/decision": "allow"},
    }
    if request_object is not None:
        data["requestObject"] = request_object
    if response_object is not None:
        data["responseObject"] = response_object
    if impersonated:
        data["impersonatedUser"] = {"username": impersonated}
    return msgspec.convert(data, AuditEvent)


def pod(
    *,
    name: str = "web",
    image: str = "nginx:1.27",
    privileged: bool = False,
    host_paths: list[str] | None = None,
    host_network: bool = False,
    owner: str | None = None,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image}
    if privileged:
        container["securityContext"] = {"privileged": True}
    spec: dict[str, Any] = {"containers": [container]}
    if host_paths:
        spec["volumes"] = [
            {"name": f"v{i}", "hostPath": {"path": p}} for i, p in enumerate(host_paths)
        ]
    if host_network:
        spec["hostNetwork"] = True
    meta: dict[str, Any] = {"name": name}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": owner, "uid": "x"}]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec}


def deployment(name: str = "web", **pod_args: Any) -> dict[str, Any]:
    template = pod(name=name, **pod_args)
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": name},
        "spec": {"template": {"metadata": {}, "spec": template["spec"]}},
    }
