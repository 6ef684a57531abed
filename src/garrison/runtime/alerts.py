"""Turns rule matches on sensor events into ``Alert`` records with their entities and evidence."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from garrison.events.alert import Alert, Entities, Mitre, Severity, new_alert
from garrison.events.runtime import RuntimeEvent
from garrison.rules.engine import priority_title

SOURCE = "syscall"
# pod names of controllers: <deployment>-<replicaset hash>-<5>, <statefulset>-<ordinal>,
# <daemonset or job>-<5>
_DEPLOYMENT_POD = re.compile(r"^(.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$")
_STATEFUL_POD = re.compile(r"^(.+)-\d+$")
_OTHER_POD = re.compile(r"^(.+)-[a-z0-9]{5}$")


def workload_of(pod: str) -> str:
    """The controller a pod name implies (``deployment/web``), or "" when it says nothing."""
    if not pod:
        return ""
    for pattern, kind in (
        (_DEPLOYMENT_POD, "deployment"),
        (_STATEFUL_POD, "statefulset"),
        (_OTHER_POD, "daemonset-or-job"),
    ):
        match = pattern.match(pod)
        if match:
            return f"{kind}/{match.group(1)}"
    return ""


def entities_of(event: RuntimeEvent, cluster: str, node: str) -> Entities:
    return Entities(
        cluster=cluster,
        namespace=event.namespace,
        workload=event.workload or workload_of(event.pod),
        pod=event.pod,
        container=event.container_id,
        node=node,
        process=event.exe or event.comm,
        image=event.image,
    )


def evidence_of(event: RuntimeEvent) -> dict[str, Any]:
    evidence: dict[str, Any] = {
        "event": event.type,
        "syscall": event.syscall,
        "pid": event.pid,
        "ppid": event.ppid,
        "uid": event.uid,
        "comm": event.comm,
        "exe": event.exe,
        "args": list(event.args),
        "ancestry": list(event.ancestry),
    }
    if event.path:
        evidence["path"] = event.path
    if event.dest_ip:
        evidence["peer"] = f"{event.dest_ip}:{event.dest_port}"
    if event.container_name:
        evidence["container_name"] = event.container_name
    return evidence


def alert_id(event: RuntimeEvent, rule_id: str, cluster: str, node: str) -> str:
    """Deterministic for one event on one node, so a replayed event is stored once."""
    key = f"{cluster}\x1f{node}\x1f{event.time:.9f}\x1f{event.pid}\x1f{event.seq}\x1f{rule_id}"
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def make_alert(
    *,
    event: RuntimeEvent,
    cluster: str,
    node: str,
    rule_id: str,
    title: str,
    severity: Severity,
    priority: str,
    output: str,
    mitre: Mitre,
    remediation: str,
    extra_evidence: dict[str, Any] | None = None,
) -> Alert:
    entities = entities_of(event, cluster, node)
    evidence = evidence_of(event)
    if extra_evidence:
        evidence.update(extra_evidence)
    return new_alert(
        alert_id=alert_id(event, rule_id, cluster, node),
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
        when=event.time,
    )
