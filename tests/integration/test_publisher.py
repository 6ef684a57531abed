"""The publisher against the real backend and against a backend that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgspec
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from garrison.publisher.envelopes import envelope_record
from garrison.publisher.metrics import publisher_metrics
from garrison.publisher.outbox import Outbox, Record
from garrison.publisher.shipper import Shipper, ShipperConfig
from garrison.tls import client_context, server_context
from tests.integration.conftest import Running, make_tls

pytestmark = pytest.mark.integration


def produce(
    box: Outbox, n: int, kind: str = "runtime_event", start: int = 0, cluster: str = "prod"
) -> list[str]:
    keys = [f"{kind}-{i}" for i in range(start, start + n)]
    box.put(
        [
            envelope_record(
                kind=kind,
                key=k,
                payload=b'{"type":"exec","pid":1}',
                cluster_id=cluster,
                source="test",
            )
            for k in keys
        ]
    )
    return keys


def shipper(box: Outbox, url: str, token: str, context: object, **overrides: object) -> Shipper:
    config = ShipperConfig(
        url=url,
        token=token,
        cluster_id="prod",
        batch_size=500,
        backoff_initial=0.01,
        backoff_max=0.05,
        timeout_seconds=1.0,
        idle_seconds=0.01,
        linger_seconds=0.0,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return Shipper(box, config, publisher_metrics(CollectorRegistry()), context)  # type: ignore[arg-type]


async def drain(ship: Shipper, seconds: float = 30.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(ship.run(stop, drain=True))
    deadline = asyncio.get_running_loop().time() + seconds
    while ship.outbox.stats().records and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 10)


async def test_ships_everything_once_to_the_real_backend(running: Running, tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    produce(box, 2_500)
    ship = shipper(box, f"{running.api}/v1/ingest", running.cluster_token, running.context)
    await drain(ship)
    assert box.stats().records == 0
    assert running.store.count_events() == 2_500


async def test_wrong_then_revoked_credential_keeps_the_records(
    running: Running, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.db")
    produce(box, 10)
    ship = shipper(box, f"{running.api}/v1/ingest", "gct_wrong", running.context)
    async with aiohttp.ClientSession() as session:
        assert (await ship.ship_once(session)).outcome == "unauthorized"
        assert box.stats().records == 10
        running.store.revoke_cluster("prod")
        ship.config.token = running.cluster_token
        assert (await ship.ship_once(session)).outcome == "unauthorized"
        assert box.stats().records == 10


async def test_client_certificate_instead_of_a_token(running: Running, tmp_path: Path) -> None:
    from garrison.tls import issue_certificate

    files = issue_certificate(running.tls_dir, tmp_path, "prod", client=True)
    context = client_context(files.ca, files.cert, files.key)
    box = Outbox(tmp_path / "outbox.db")
    produce(box, 100)
    ship = shipper(box, f"{running.api}/v1/ingest", "", context)
    async with aiohttp.ClientSession() as session:
        attempt = await ship.ship_once(session)
    assert attempt.outcome == "shipped" and running.store.count_events() == 100
    running.store.revoke_cluster("prod")
    produce(box, 10, start=100)
    async with aiohttp.ClientSession() as session:
        assert (await ship.ship_once(session)).outcome == "unauthorized"


class FlakyBackend:
    """An ingest API that fails in the ways networks and servers do, then stores once per key."""

    def __init__(self, modes: list[str]) -> None:
        self.modes = modes
        self.stored: dict[str, int] = {}
        self.requests = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        mode = self.modes.pop(0) if self.modes else "ok"
        body = await request.read()
        if mode == "500":
            return web.Response(status=500, text="boom")
        if mode == "503":
            return web.Response(status=503, headers={"Retry-After": "0"})
        if mode == "slow":
            await asyncio.sleep(3)
        if mode == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        data = json.loads(body)
        accepted = duplicates = 0
        for envelope in data["envelopes"]:
            key = envelope["idempotency_key"]
            if key in self.stored:
                duplicates += 1
            else:
                accepted += 1
            self.stored[key] = self.stored.get(key, 0) + 1
        if mode == "lost_answer":  # stored, but the answer never reaches the publisher
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        return web.json_response({"accepted": accepted, "duplicates": duplicates, "rejected": []})


@pytest.fixture
async def flaky(tmp_path: Path) -> AsyncIterator[tuple[FlakyBackend, str, object]]:
    tls = make_tls(tmp_path)
    backend = FlakyBackend([])
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/ingest", backend.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context(tls))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield backend, f"https://127.0.0.1:{port}/v1/ingest", client_context(tls.ca)
    await runner.cleanup()


async def test_failures_are_retried_and_nothing_is_lost_or_duplicated(
    flaky: tuple[FlakyBackend, str, object], tmp_path: Path
) -> None:
    backend, url, context = flaky
    backend.modes = ["500", "503", "reset", "slow", "lost_answer", "ok", "500", "lost_answer"]
    box = Outbox(tmp_path / "outbox.db")
    keys = produce(box, 3_000)
    ship = shipper(box, url, "gct_x", context)
    await drain(ship)
    assert box.stats().records == 0
    assert set(backend.stored) == set(keys)  # nothing lost
    resent = [k for k, n in backend.stored.items() if n > 1]
    assert resent  # the lost answers made the publisher resend...
    samples = ship.metrics.registry.get_sample_value
    assert samples("garrison_publisher_duplicates_total") == len(
        resent
    )  # ...and the backend said so
    assert samples("garrison_publisher_shipped_total") + len(resent) == 3_000
    for reason in ("server_error", "503", "network"):
        assert samples("garrison_publisher_retries_total", {"reason": reason}), reason


async def test_outage_under_the_cap_loses_nothing(
    flaky: tuple[FlakyBackend, str, object], tmp_path: Path
) -> None:
    """200,000 events produced while the backend is down, then it comes back."""
    backend, url, context = flaky
    box = Outbox(tmp_path / "outbox.db")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{sock.getsockname()[1]}/v1/ingest"
    down = shipper(box, dead, "gct_x", context)
    keys: list[str] = []
    async with aiohttp.ClientSession() as session:
        for start in range(0, 200_000, 20_000):
            keys += produce(box, 20_000, start=start)
            assert (await down.ship_once(session)).outcome == "network"
    assert down.enforce_caps() == 0 and box.stats().records == 200_000
    up = shipper(box, url, "gct_x", context, batch_size=2_000)
    await drain(up, seconds=120)
    assert len(backend.stored) == 200_000 and set(backend.stored) == set(keys)
    assert box.stats().dropped == 0


async def test_outage_past_the_cap_drops_only_low_severity_and_reports_the_loss(
    flaky: tuple[FlakyBackend, str, object], tmp_path: Path
) -> None:
    backend, url, context = flaky
    box = Outbox(tmp_path / "outbox.db")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{sock.getsockname()[1]}/v1/ingest"  # nothing listens here
    alerts = produce(box, 1_000, "alert")
    events = produce(box, 200_000)
    record_size = len(box.peek(1)[0].body)
    down = shipper(box, dead, "gct_x", context, max_bytes=100_000 * record_size)
    async with aiohttp.ClientSession() as session:
        assert (await down.ship_once(session)).outcome == "network"
    down.enforce_caps()
    stats = box.stats()
    assert stats.dropped > 0 and stats.bytes <= 100_000 * record_size + 2_000
    up = shipper(box, url, "gct_x", context, batch_size=2_000)
    await drain(up, seconds=120)
    assert set(alerts) <= set(backend.stored)  # every alert arrived
    arrived_events = [k for k in backend.stored if k.startswith("runtime_event")]
    assert len(arrived_events) == 200_000 - stats.dropped
    assert arrived_events == events[stats.dropped :]  # the oldest went first
    loss = [k for k in backend.stored if k.startswith("data-loss:")]
    assert loss == [f"data-loss:prod:publisher:{stats.dropped}"]


async def test_a_record_the_backend_refuses_is_isolated_and_dropped(
    running: Running, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.db")
    produce(box, 20)
    box.put([Record("broken", "runtime_event", b"{not json")])
    produce(box, 20, start=20)
    ship = shipper(
        box, f"{running.api}/v1/ingest", running.cluster_token, running.context, batch_size=64
    )
    await drain(ship)
    assert box.stats().records == 0
    assert running.store.count_events() == 40
    assert ship.metrics.registry.get_sample_value("garrison_publisher_rejected_total") == 1


def test_gzip_roundtrip_of_a_batch() -> None:
    from garrison.publisher.envelopes import batch_body

    record = envelope_record(kind="alert", key="a", payload=b"{}", cluster_id="c", source="s")
    body = json.loads(gzip.decompress(gzip.compress(batch_body([record.body, record.body]))))
    assert len(body["envelopes"]) == 2 and msgspec.json.encode(body)


async def test_small_batches_linger_full_ones_go_at_once(running: Running, tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.db")
    ship = shipper(
        box, f"{running.api}/v1/ingest", running.cluster_token, running.context, linger_seconds=0.3
    )
    async with aiohttp.ClientSession() as session:
        produce(box, 500)
        assert (await ship.ship_once(session)).outcome == "shipped"  # a full batch: no waiting
        produce(box, 10, start=500)
        held = await ship.ship_once(session)
        assert held.outcome == "linger" and 0 < held.wait <= 0.3
        await asyncio.sleep(held.wait)
        assert (await ship.ship_once(session)).outcome == "shipped"
    assert running.store.count_events() == 510


async def test_a_batch_is_deleted_behind_the_next_post_and_never_sent_twice(
    running: Running, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.db")
    produce(box, 1500)  # three full batches of 500
    ship = shipper(box, f"{running.api}/v1/ingest", running.cluster_token, running.context)
    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            assert (await ship.ship_once(session)).outcome == "shipped"
        await ship.settle()
        assert (await ship.ship_once(session)).outcome == "empty"
    assert box.stats().records == 0
    assert running.store.count_events() == 1500
    assert running.store.count_events() == 1500
    duplicates = ship.metrics.registry.get_sample_value("garrison_publisher_duplicates_total")
    assert duplicates == 0  # each batch went once


async def test_the_cap_never_counts_delivered_records_as_dropped(
    running: Running, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.db")
    produce(box, 2000)
    ship = shipper(box, f"{running.api}/v1/ingest", running.cluster_token, running.context)
    size = box.stats().bytes
    ship.config.max_bytes = size  # everything fits: nothing may be dropped
    stop = asyncio.Event()
    stop.set()  # with drain: ship until the outbox is empty, then return
    await asyncio.wait_for(ship.run(stop, drain=True), 30)
    stats = box.stats()
    assert stats.records == 0 and stats.dropped == 0
    assert running.store.count_events() == 2000
