"""Prometheus metrics: one registry per process, passed explicitly (no global registry)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest


@dataclass
class AuditMetrics:
    registry: CollectorRegistry
    requests: Counter
    events_received: Counter
    events_rejected: Counter
    queue_depth: Gauge
    batch_seconds: Histogram
    alerts: Counter


@dataclass
class IngestMetrics:
    registry: CollectorRegistry
    requests: Counter
    envelopes: Counter
    rejected: Counter
    duplicates: Counter


def audit_metrics(registry: CollectorRegistry) -> AuditMetrics:
    return AuditMetrics(
        registry=registry,
        requests=Counter(
            "garrison_audit_requests",
            "Audit webhook requests by answer code",
            ["code"],
            registry=registry,
        ),
        events_received=Counter(
            "garrison_audit_events_received",
            "Audit events accepted into the pipeline",
            registry=registry,
        ),
        events_rejected=Counter(
            "garrison_audit_events_rejected",
            "Audit events or payloads refused, by reason",
            ["reason"],
            registry=registry,
        ),
        queue_depth=Gauge(
            "garrison_audit_queue_depth",
            "Audit events waiting for analysis",
            registry=registry,
        ),
        batch_seconds=Histogram(
            "garrison_audit_batch_seconds",
            "Time to analyze and store one batch",
            registry=registry,
        ),
        alerts=Counter(
            "garrison_audit_alerts",
            "Alerts raised from audit events, by severity",
            ["severity"],
            registry=registry,
        ),
    )


def ingest_metrics(registry: CollectorRegistry) -> IngestMetrics:
    return IngestMetrics(
        registry=registry,
        requests=Counter(
            "garrison_ingest_requests",
            "Ingest API requests by answer code",
            ["code"],
            registry=registry,
        ),
        envelopes=Counter(
            "garrison_ingest_envelopes", "Envelopes stored, by kind", ["kind"], registry=registry
        ),
        rejected=Counter(
            "garrison_ingest_rejected",
            "Envelopes refused, by reason",
            ["reason"],
            registry=registry,
        ),
        duplicates=Counter(
            "garrison_ingest_duplicates", "Envelopes already stored (retries)", registry=registry
        ),
    )


def loopback_only(host: str) -> str | None:
    """An error for a plain-HTTP metrics listener off loopback (TLS on every other hop)."""
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return f"metrics are served over plain HTTP: bind them to loopback, not {host}"


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
