"""Alerts: what a detection produces, deduplicated and stored by the backend."""

from __future__ import annotations

import enum
import hashlib
from typing import Any

import msgspec


class Severity(enum.IntEnum):
    """Defender's four levels; the integer orders them for filters."""

    INFORMATIONAL = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        key = text.strip().upper()
        if key in ("INFO", "INFORMATIONAL"):
            return cls.INFORMATIONAL
        try:
            return cls[key]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}") from None


class AlertStatus(enum.StrEnum):
    ACTIVE = "active"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


class Entities(msgspec.Struct, omit_defaults=True, frozen=True):
    """What an alert concerns. Empty strings mean 'not known for this alert'."""

    cluster: str = ""
    namespace: str = ""
    workload: str = ""
    pod: str = ""
    container: str = ""
    node: str = ""
    user: str = ""
    source_ip: str = ""
    process: str = ""
    image: str = ""


class Mitre(msgspec.Struct, omit_defaults=True, frozen=True):
    tactics: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    threat_matrix: tuple[str, ...] = ()


class Alert(msgspec.Struct, kw_only=True):
    """One alert. ``count`` grows when the same rule fires on the same entity again."""

    id: str
    rule_id: str
    title: str
    severity: str
    priority: str
    output: str
    source: str
    mitre: Mitre = msgspec.field(default_factory=Mitre)
    entities: Entities = msgspec.field(default_factory=Entities)
    evidence: dict[str, Any] = msgspec.field(default_factory=dict)
    remediation: str = ""
    first_seen: float
    last_seen: float
    count: int = 1
    dedupe_key: str
    status: str = AlertStatus.ACTIVE.value


def dedupe_key(rule_id: str, entities: Entities) -> str:
    """A stable key: same rule on the same entity gives the same key."""
    parts = [
        rule_id,
        entities.cluster,
        entities.namespace,
        entities.workload or entities.pod,
        entities.container,
        entities.user,
        entities.node,
        entities.process,
    ]
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def new_alert(
    *,
    alert_id: str,
    rule_id: str,
    title: str,
    severity: Severity,
    priority: str,
    output: str,
    source: str,
    mitre: Mitre,
    remediation: str,
    entities: Entities,
    evidence: dict[str, Any],
    when: float,
) -> Alert:
    """A first sighting: seen once at ``when``, keyed for deduplication by rule and entity."""
    return Alert(
        id=alert_id,
        rule_id=rule_id,
        title=title,
        severity=severity.label,
        priority=priority,
        output=output,
        source=source,
        mitre=mitre,
        entities=entities,
        evidence=evidence,
        remediation=remediation,
        first_seen=when,
        last_seen=when,
        dedupe_key=dedupe_key(rule_id, entities),
    )
