"""Agent-token resolution with a small, bounded, short-lived cache.

The audit webhook answers on the event loop; asking SQLite for every request would wait
behind alert writes. A resolved token is remembered for ``ttl_seconds`` (so a rotated or
revoked token stops working within that time), unknown tokens too (so a client hammering
with a wrong token costs no database reads), and the cache never holds more than
``max_entries`` tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from garrison.server.store.base import ClusterRecord


@dataclass(frozen=True, slots=True)
class _Entry:
    record: ClusterRecord | None
    expires: float


class TokenCache:
    def __init__(
        self,
        lookup: Callable[[str], ClusterRecord | None],
        *,
        ttl_seconds: float = 5.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def resolve(self, token: str) -> ClusterRecord | None:
        now = self._clock()
        entry = self._entries.get(token)
        if entry is not None and entry.expires > now:
            return entry.record
        record = self._lookup(token)
        if len(self._entries) >= self.max_entries:
            self._entries = {k: e for k, e in self._entries.items() if e.expires > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[token] = _Entry(record, now + self.ttl_seconds)
        return record
