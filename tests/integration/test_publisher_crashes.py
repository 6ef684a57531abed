"""kill -9 the publisher and the producer (the sensor's stand-in) at random points: every
event of the stream ends up in the backend's store exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from tests.integration.conftest import Running

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENTS = int(os.environ.get("GARRISON_CRASH_EVENTS", "1000000"))


async def start(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    running: Running, tmp_path: Path
) -> None:
    seed = int(time.time())
    rng = random.Random(seed)
    outbox, checkpoint = tmp_path / "outbox.db", tmp_path / "producer.checkpoint"
    env = {"GARRISON_CLUSTER_TOKEN": running.cluster_token, "GARRISON_HOME": str(tmp_path / "home")}
    producer_args = (
        "-m",
        "tests.integration.outbox_producer",
        str(outbox),
        str(checkpoint),
        str(EVENTS),
        "prod",
    )
    publisher_args = (
        "-m",
        "garrison.cli",
        "publisher",
        "--url",
        running.api,
        "--cluster",
        "prod",
        "--ca",
        str(running.tls_dir / "ca.crt"),
        "--outbox",
        str(outbox),
        "--metrics-port",
        "0",
    )
    producer = await start(*producer_args, env=env)
    publisher = await start(*publisher_args, env=env)
    kills = 0
    for _ in range(8):
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        victim = rng.choice(["producer", "publisher", "both"])
        if victim in ("producer", "both") and producer.returncode is None:
            producer.send_signal(signal.SIGKILL)
            await producer.wait()
            kills += 1
            producer = await start(*producer_args, env=env)
        if victim in ("publisher", "both"):
            publisher.send_signal(signal.SIGKILL)
            await publisher.wait()
            kills += 1
            publisher = await start(*publisher_args, env=env)
    assert await asyncio.wait_for(producer.wait(), 300) == 0
    deadline = time.monotonic() + 600
    while running.store.count_events() < EVENTS and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    publisher.send_signal(signal.SIGTERM)
    await asyncio.wait_for(publisher.wait(), 30)
    with sqlite3.connect(running.store.path) as db:
        keys = {row[0] for row in db.execute("SELECT idempotency_key FROM events")}
    assert kills >= 4, f"seed {seed}"
    assert len(keys) == EVENTS and keys == {f"ev-{i}" for i in range(EVENTS)}, f"seed {seed}"
