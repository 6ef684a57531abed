"""Alert hygiene: one alert per (rule, container, process lineage) per window, with a count.

A ``kubectl exec`` session runs many commands under one shell; each may match the same
rule. The first match is sent at once; repeats within the window only raise its count and
are sent again, once, as an update when the window closes (or at shutdown). New alerts of
one rule are also rate-limited (a token bucket); what the limit holds back is counted.
Memory is bounded: at most ``max_open`` aggregates are kept, the oldest closed first.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import msgspec

from garrison.events.alert import Alert

MAX_COMMANDS = 10  # distinct command lines kept in an aggregated alert's evidence


@dataclass
class _Open:
    alert: Alert
    opened: float
    updated: bool = False
    commands: list[str] = field(default_factory=list)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class AlertAggregator:
    def __init__(
        self,
        *,
        window_seconds: float = 600.0,
        max_open: int = 10_000,
        rate_per_minute: float = 60.0,
        burst: int = 20,
    ) -> None:
        self.window = window_seconds
        self.max_open = max_open
        self.rate = rate_per_minute / 60.0
        self.burst = burst
        self._open: OrderedDict[tuple[str, ...], _Open] = OrderedDict()
        self._buckets: dict[str, _Bucket] = {}
        self.suppressed: dict[str, int] = {}
        self.merged = 0

    def merge(
        self, rule_id: str, container: str, lineage: tuple[str, ...], when: float, command: str
    ) -> bool:
        """Count a repeat into its open aggregate, if there is one (no alert is built then)."""
        found = self._open.get((rule_id, container, *lineage))
        if found is None or when - found.opened >= self.window:
            return False
        found.alert.count += 1
        found.alert.last_seen = max(found.alert.last_seen, when)
        found.updated = True
        if command and command not in found.commands and len(found.commands) < MAX_COMMANDS:
            found.commands.append(command)
        self.merged += 1
        return True

    def offer(self, alert: Alert, lineage: tuple[str, ...], now: float) -> list[Alert]:
        """What to send now for a new match: the alert, or nothing when it joins an open one.

        The list may also hold updates of aggregates this call had to close.
        """
        key = (alert.rule_id, alert.entities.container, *lineage)
        out = self.expire(now)
        found = self._open.get(key)
        if found is not None:
            found.alert.count += 1
            found.alert.last_seen = max(found.alert.last_seen, alert.last_seen)
            found.updated = True
            command = " ".join(alert.evidence.get("args", ()))
            if command and command not in found.commands and len(found.commands) < MAX_COMMANDS:
                found.commands.append(command)
            self.merged += 1
            return out
        if not self._take(alert.rule_id, now):
            self.suppressed[alert.rule_id] = self.suppressed.get(alert.rule_id, 0) + 1
            return out
        command = " ".join(alert.evidence.get("args", ()))
        kept = msgspec.structs.replace(alert, evidence=dict(alert.evidence))  # sent as it is now
        self._open[key] = _Open(kept, now, commands=[command] if command else [])
        while len(self._open) > self.max_open:
            _, oldest = self._open.popitem(last=False)
            out.extend(self._closed(oldest))
        out.append(alert)
        return out

    def expire(self, now: float) -> list[Alert]:
        """Close the aggregates whose window ended; returns the updates to send."""
        out: list[Alert] = []
        while self._open:
            key, oldest = next(iter(self._open.items()))
            if now - oldest.opened < self.window:
                break
            del self._open[key]
            out.extend(self._closed(oldest))
        return out

    def flush(self) -> list[Alert]:
        """Close everything (at shutdown); returns the updates to send."""
        out: list[Alert] = []
        for entry in self._open.values():
            out.extend(self._closed(entry))
        self._open.clear()
        return out

    def _closed(self, entry: _Open) -> list[Alert]:
        """The update of an aggregate: a record of its own, naming the alert it updates.

        ``count`` is the total; a store that already counted the first alert adds
        ``count - 1`` (see ``repeats_of``).
        """
        if not entry.updated:
            return []
        alert = entry.alert
        evidence = dict(alert.evidence, update_of=alert.id)
        if len(entry.commands) > 1:
            evidence["commands"] = list(entry.commands)
        update_id = hashlib.blake2b(f"{alert.id}+{alert.count}".encode(), digest_size=16)
        return [msgspec.structs.replace(alert, id=update_id.hexdigest(), evidence=evidence)]

    @staticmethod
    def repeats_of(alert: Alert) -> Alert:
        """What a store that counted the first alert must add for an update: the repeats."""
        if "update_of" not in alert.evidence:
            return alert
        return msgspec.structs.replace(alert, count=alert.count - 1)

    def _take(self, rule_id: str, now: float) -> bool:
        bucket = self._buckets.get(rule_id)
        if bucket is None:
            bucket = self._buckets[rule_id] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True
