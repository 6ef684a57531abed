"""The publisher's Prometheus metrics, on a registry of its own."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "garrison_publisher_"


@dataclass
class PublisherMetrics:
    registry: CollectorRegistry
    shipped: Counter
    duplicates: Counter
    rejected: Counter
    dropped: Counter
    retries: Counter
    depth: Gauge
    depth_bytes: Gauge
    batch_size: Histogram
    latency: Histogram


def publisher_metrics(registry: CollectorRegistry) -> PublisherMetrics:
    def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return Counter(PREFIX + name, doc, labels, registry=registry)

    def gauge(name: str, doc: str) -> Gauge:
        return Gauge(PREFIX + name, doc, registry=registry)

    return PublisherMetrics(
        registry=registry,
        shipped=counter("shipped", "Records the backend stored"),
        duplicates=counter("duplicates", "Records the backend already had (resends)"),
        rejected=counter("rejected", "Records the backend refused as invalid"),
        dropped=counter("dropped", "Low-severity records dropped at the outbox cap"),
        retries=counter("retries", "Failed attempts, by reason", ("reason",)),
        depth=gauge("outbox_records", "Records waiting in the outbox"),
        depth_bytes=gauge("outbox_bytes", "Bytes waiting in the outbox"),
        batch_size=Histogram(
            PREFIX + "batch_records",
            "Records per shipped batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
            registry=registry,
        ),
        latency=Histogram(PREFIX + "post_seconds", "Time of one POST", registry=registry),
    )
