"""Drains the outbox to the backend's ingest API over HTTPS, losing and duplicating nothing.

One batch at a time, oldest first: gzip, POST with the cluster's token (client certificate
optional), and delete the records only after a 200. The backend stores each envelope's
idempotency key once, so a batch resent after a crash or a lost answer is stored once.
Failures back off exponentially with jitter; 429 and 503 wait as long as Retry-After says.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import random
import ssl
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import msgspec

from garrison.publisher.envelopes import batch_body, envelope_record
from garrison.publisher.metrics import PublisherMetrics
from garrison.publisher.outbox import Outbox, Stored

log = logging.getLogger("garrison.publisher")


@dataclass
class ShipperConfig:
    url: str
    token: str
    cluster_id: str
    source: str = "publisher"
    batch_size: int = 4000  # ~1.2 MB before gzip; larger batches halve per-request cost
    max_bytes: int = 256 * 1024 * 1024
    max_age_seconds: float = 24 * 3600
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    timeout_seconds: float = 30.0
    idle_seconds: float = 0.2
    # a batch smaller than batch_size waits this long after the last send to fill up:
    # fewer, fuller POSTs at low rates (CPU) for at most this much added delay
    linger_seconds: float = 0.5
    compress_level: int = 1
    extra_headers: dict[str, str] = field(default_factory=dict)


class IngestAnswer(msgspec.Struct):
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = msgspec.field(default_factory=list)


@dataclass
class Prepared:
    batch: list[Stored]
    body: bytes
    batch_size: int


@dataclass
class Attempt:
    """What one shipping attempt did and how long to wait before the next."""

    shipped: int = 0
    wait: float = 0.0
    outcome: str = "shipped"


def retry_after(value: str | None, default: float) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), bounded."""
    if not value:
        return default
    try:
        return max(0.0, min(float(value), 3600.0))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return default
    return max(0.0, min(when - time.time(), 3600.0))


class Shipper:
    def __init__(
        self,
        outbox: Outbox,
        config: ShipperConfig,
        metrics: PublisherMetrics,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.outbox = outbox
        self.config = config
        self.metrics = metrics
        self.ssl_context = ssl_context
        self.failures = 0
        self.batch_size = config.batch_size
        self._last_problem = ""
        self._next: Prepared | None = None
        self._last_send = 0.0
        # the delete of the last acknowledged batch, running while the next one is on the wire
        self._acking: asyncio.Future[None] | None = None

    # -- bounds and loss reporting ----------------------------------------------------------
    def enforce_caps(self) -> int:
        dropped = self.outbox.enforce(
            max_bytes=self.config.max_bytes, max_age_seconds=self.config.max_age_seconds
        )
        if dropped:
            self.metrics.dropped.inc(dropped)
            log.warning("outbox over its cap: dropped %d low-severity records", dropped)
        stats = self.outbox.stats()
        if stats.dropped > stats.dropped_reported:
            self._queue_loss_record(stats.dropped, stats.dropped - stats.dropped_reported)
        self.metrics.depth.set(stats.records)
        self.metrics.depth_bytes.set(stats.bytes)
        return dropped

    def _queue_loss_record(self, total: int, new: int) -> None:
        payload = msgspec.json.encode(
            {"dropped": new, "dropped_total": total, "reason": "outbox cap", "at": time.time()}
        )
        record = envelope_record(
            kind="data_loss",
            key=f"data-loss:{self.config.cluster_id}:{self.config.source}:{total}",
            payload=payload,
            cluster_id=self.config.cluster_id,
            source=self.config.source,
        )
        self.outbox.put([record])
        self.outbox.mark_loss_reported(total)

    # -- shipping -----------------------------------------------------------------------------
    def _backoff(self) -> float:
        self.failures += 1
        growth: float = self.config.backoff_initial * 2.0 ** min(self.failures - 1, 30)
        ceiling = min(self.config.backoff_max, growth)
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security

    def _problem(self, text: str) -> None:
        if text != self._last_problem:
            log.error("%s", text)
            self._last_problem = text

    def _prepare(self, after_id: int) -> Prepared:
        """Read the oldest batch past ``after_id`` and build its gzip'd body (runs in a thread)."""
        batch = self.outbox.peek(self.batch_size, after_id=after_id)
        body = (
            gzip.compress(batch_body([r.body for r in batch]), self.config.compress_level)
            if batch
            else b""
        )
        return Prepared(batch, body, self.batch_size)

    async def settle(self) -> None:
        """Wait for the delete of the last acknowledged batch (it runs behind the next POST)."""
        acking, self._acking = self._acking, None
        if acking is not None:
            await acking

    async def ship_once(self, session: aiohttp.ClientSession) -> Attempt:
        """Ship the oldest batch; while it is on the wire, prepare the one after it and delete
        the one before it.

        Only a full batch prepared behind an acknowledged one goes out before that one's delete
        has finished: it was read past it, so nothing is sent twice; every other path (linger,
        a fresh read from the oldest record, caps) waits for the delete first.
        """
        if self._next is not None and len(self._next.batch) < self._next.batch_size:
            self._next = None  # prepared too early to be full: let it fill up instead
        if self._next is None or self._next.batch_size != self.batch_size:
            await self.settle()
        waited = time.monotonic() - self._last_send
        if self._next is None and waited < self.config.linger_seconds:
            waiting = await asyncio.to_thread(self.outbox.count_up_to, self.batch_size)
            if 0 < waiting < self.batch_size:
                return Attempt(outcome="linger", wait=self.config.linger_seconds - waited)
        prepared, self._next = self._next, None
        if prepared is None or prepared.batch_size != self.batch_size:
            prepared = await asyncio.to_thread(self._prepare, 0)
        batch = prepared.batch
        if not batch:
            return Attempt(outcome="empty", wait=self.config.idle_seconds)
        self._last_send = time.monotonic()
        # only a backlog (a full batch) is worth preparing ahead; at low rates it would be
        # prepared half-empty and thrown away
        upcoming = (
            asyncio.ensure_future(asyncio.to_thread(self._prepare, batch[-1].id))
            if len(batch) == self.batch_size
            else None
        )
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            **self.config.extra_headers,
        }
        if self.config.token:  # without one, the client certificate is the credential
            headers["Authorization"] = f"Bearer {self.config.token}"
        started = time.perf_counter()
        try:
            async with session.post(
                self.config.url,
                data=prepared.body,
                headers=headers,
                ssl=self.ssl_context if self.ssl_context is not None else True,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout_seconds),
            ) as response:
                status = response.status
                text = await response.read()
                after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            await self.settle()
            if upcoming is not None:
                await upcoming  # discarded: after a failure the oldest batch goes again
            self.metrics.retries.labels(reason="network").inc()
            self._problem(f"backend unreachable ({type(exc).__name__}: {exc}); records kept")
            return Attempt(outcome="network", wait=self._backoff())
        self.metrics.latency.observe(time.perf_counter() - started)
        await self.settle()  # the previous batch's delete: at most one runs at a time
        attempt = await self._answer(status, text, after, batch)
        if attempt.outcome != "shipped":
            self._last_send = 0.0  # a retry is not held back by the linger
        following = await upcoming if upcoming is not None else None
        if attempt.outcome == "shipped":
            self._next = following
        return attempt

    async def _answer(
        self, status: int, text: bytes, after: str | None, batch: list[Stored]
    ) -> Attempt:
        if status == 200:
            try:
                answer = msgspec.json.decode(text, type=IngestAnswer)
            except msgspec.DecodeError:
                self.metrics.retries.labels(reason="bad_answer").inc()
                return Attempt(outcome="bad_answer", wait=self._backoff())
            refused = [
                (self.outbox.key_of(batch[i].id), problem.get("error"))
                for problem in answer.rejected
                if isinstance(i := problem.get("index"), int) and 0 <= i < len(batch)
            ]
            # deleted behind the next POST; settle() waits for it
            self._acking = asyncio.ensure_future(
                asyncio.to_thread(self.outbox.ack_through, batch[-1].id)
            )
            for key, error in refused:
                log.error("backend refused record %s: %s", key, error)
            self.metrics.shipped.inc(answer.accepted)
            self.metrics.duplicates.inc(answer.duplicates)
            self.metrics.rejected.inc(len(answer.rejected))
            self.metrics.batch_size.observe(len(batch))
            self.failures = 0
            self._last_problem = ""
            if len(batch) == self.batch_size and self.batch_size < self.config.batch_size:
                self.batch_size = min(self.config.batch_size, self.batch_size * 2)
            return Attempt(shipped=len(batch), wait=0.0)
        if status in (401, 403):
            self.metrics.retries.labels(reason="unauthorized").inc()
            self._problem(
                f"backend refused the cluster credential ({status}); keeping {len(batch)}+ records "
                "until it is replaced"
            )
            return Attempt(outcome="unauthorized", wait=self.config.backoff_max)
        if status in (429, 503):
            self.metrics.retries.labels(reason=str(status)).inc()
            return Attempt(outcome="throttled", wait=retry_after(after, self._backoff()))
        if status in (400, 413):
            return await self._split_or_drop(status, text, batch)
        self.metrics.retries.labels(reason="server_error").inc()
        self._problem(f"backend answered {status}; retrying with backoff")
        return Attempt(outcome="server_error", wait=self._backoff())

    async def _split_or_drop(self, status: int, text: bytes, batch: list[Stored]) -> Attempt:
        """A batch the backend cannot take: halve it until the bad record stands alone."""
        if len(batch) > 1:
            self.batch_size = max(1, len(batch) // 2)
            return Attempt(outcome="split", wait=0.0)
        record = batch[0]
        log.error(
            "backend refuses record %s (%d %s); dropping it",
            self.outbox.key_of(record.id),
            status,
            text[:200].decode("utf-8", "replace"),
        )
        await asyncio.to_thread(self.outbox.ack, [record.id])
        self.metrics.rejected.inc()
        return Attempt(outcome="dropped_bad_record", wait=0.0)

    async def run(self, stop: asyncio.Event, *, drain: bool = False) -> None:
        """Ship until ``stop`` is set (with ``drain``, also until the outbox is empty)."""
        connector = aiohttp.TCPConnector(limit=2)
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                await self._run(session, stop, drain)
            finally:
                await self.settle()

    async def _run(self, session: aiohttp.ClientSession, stop: asyncio.Event, drain: bool) -> None:
        next_caps = 0.0
        while True:
            if time.monotonic() >= next_caps:
                await self.settle()  # acknowledged records are not the cap's to drop
                await asyncio.to_thread(self.enforce_caps)
                next_caps = time.monotonic() + 1.0
            attempt = await self.ship_once(session)
            if stop.is_set() and (not drain or attempt.outcome == "empty"):
                return
            if attempt.wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), attempt.wait)
                if stop.is_set() and not drain:
                    return
