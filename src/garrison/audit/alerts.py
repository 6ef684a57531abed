"""Turns rule matches on audit events into ``Alert`` records with their entities and evidence."""

from __future__ import annotations

import hashlib
from typing import Any

from garrison.events.alert import Alert, Entities, Mitre, Severity, new_alert
from garrison.events.audit import AuditEvent
from garrison.rules.engine import Match, priority_title
from garrison.rules.k8s_audit_ext import WORKLOAD_RESOURCES, written_object
from garrison.rules.k8s_audit_fields import RAWTIME_KEY
from garrison.rules.k8s_audit_values import parse_timestamp_ns

SOURCE = "k8s_audit"


def event_time(event: AuditEvent) -> float:
    stamp = event.stage_timestamp or event.request_received_timestamp or event.timestamp
    ns = parse_timestamp_ns(stamp) if stamp else 0
    return ns / 1e9


def _owner(obj: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    meta = obj.get("metadata")
    owners = meta.get("ownerReferences") if isinstance(meta, dict) else None
    if isinstance(owners, list) and owners and isinstance(owners[0], dict):
        return f"{owners[0].get('kind', '')}/{owners[0].get('name', '')}"
    return ""


def _object_name(event: AuditEvent) -> str:
    ref = event.object_ref
    if ref is not None and ref.name:
        return ref.name
    for obj in (event.response_object, event.request_object):
        if isinstance(obj, dict):
            meta = obj.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                return str(meta["name"])
    return ""


def entities_of(event: AuditEvent, cluster: str) -> Entities:
    ref = event.object_ref
    resource = ref.resource if ref is not None else ""
    name = _object_name(event)
    pod = name if resource == "pods" else ""
    workload = ""
    if resource in WORKLOAD_RESOURCES and resource != "pods":
        kind = resource[:-1] if resource.endswith("s") else resource
        workload = f"{kind}/{name}" if name else ""
    elif resource == "pods":
        workload = _owner(written_object(event)) or _owner(event.response_object)
    ips = event.source_ips
    return Entities(
        cluster=cluster,
        namespace=ref.namespace if ref is not None else "",
        workload=workload,
        pod=pod,
        node=name if resource == "nodes" else "",
        user=event.user.username,
        source_ip=ips[-1] if ips else "",
    )


def evidence_of(event: AuditEvent) -> dict[str, Any]:
    ref = event.object_ref
    evidence: dict[str, Any] = {
        "audit_id": event.audit_id,
        "stage": event.stage,
        "verb": event.verb,
        "uri": event.request_uri,
        "user_agent": event.user_agent,
        "source_ips": list(event.source_ips),
    }
    if ref is not None:
        evidence["object"] = {
            k: v
            for k, v in (
                ("resource", ref.resource),
                ("subresource", ref.subresource),
                ("namespace", ref.namespace),
                ("name", ref.name),
                ("api_group", ref.api_group),
            )
            if v
        }
    if event.response_status is not None and event.response_status.code:
        evidence["response_code"] = event.response_status.code
    if event.user.groups:
        evidence["user_groups"] = list(event.user.groups)
    if event.impersonated_user is not None:
        evidence["impersonated_user"] = event.impersonated_user.username
    decision = event.annotations.get("authorization.k8s.io/reason")
    if decision:
        evidence["authorization_reason"] = decision
    return evidence


def alert_id(audit_id: str, rule_id: str, cluster: str) -> str:
    """Deterministic, so a replayed event gives the same alert id (idempotent ingest)."""
    key = f"{cluster}\x1f{audit_id}\x1f{rule_id}".encode()
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def make_alert(
    *,
    event: AuditEvent,
    cluster: str,
    rule_id: str,
    title: str,
    severity: Severity,
    priority: str,
    output: str,
    mitre: Mitre,
    remediation: str,
    extra_evidence: dict[str, Any] | None = None,
    when: float | None = None,
) -> Alert:
    entities = entities_of(event, cluster)
    if when is None:
        when = event_time(event)
    evidence = evidence_of(event)
    if extra_evidence:
        evidence.update(extra_evidence)
    return new_alert(
        alert_id=alert_id(event.audit_id, rule_id, cluster),
        rule_id=rule_id,
        title=title,
        severity=severity,
        priority=priority_title(priority),
        output=output,
        source=SOURCE,
        mitre=mitre,
        remediation=remediation,
        entities=entities,
        evidence=evidence,
        when=when,
    )


def alert_from_match(match: Match, event: AuditEvent, cluster: str) -> Alert:
    rule = match.rule
    return make_alert(
        event=event,
        cluster=cluster,
        rule_id=rule.id,
        title=rule.name,
        severity=rule.severity,
        priority=rule.priority,
        output=match.output,
        mitre=rule.mitre,
        remediation=rule.remediation,
        when=_known_time(match),
    )


def _known_time(match: Match) -> float | None:
    """The event time if a rule already parsed it for this event."""
    nanos = match.context.cache.get(RAWTIME_KEY)
    return nanos / 1e9 if isinstance(nanos, int) else None
