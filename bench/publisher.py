"""Publisher: end-to-end throughput and its footprint at Defender's publisher load.

1. 200,000 envelopes waiting in an outbox, shipped by ``garrison publisher`` to ``garrison
   up`` until all are stored: events/s, as a ratio to POSTing the same gzip'd batches straight
   to the same backend with no outbox (no durability) — the baseline of the same run.
2. A producer appending 5,000 events/s to the outbox for 20 s while the publisher ships them:
   the publisher's CPU (cores) and peak RSS. Targets (issue 4): >= 50,000 events/s end to end;
   RSS <= 200 MiB and CPU <= 0.06 core at 5,000 events/s.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.servers import Garrison, garrison_up
from garrison.publisher.envelopes import batch_body, envelope_record
from garrison.publisher.outbox import Outbox
from garrison.tls import client_context

EVENTS = 200_000
BATCH = 4_000  # the publisher's default batch size
PAYLOAD = b'{"type":"exec","pid":4242,"ppid":1,"comm":"sh","exe":"/bin/sh","args":["sh","-c","id"],"uid":0,"container_id":"3f2a9c0e1b7d"}'
RATE = 5_000
LOAD_SECONDS = 20
EXTRA: list[str] = []  # more publisher flags, for experiments


def records(prefix: str, count: int) -> list:  # type: ignore[type-arg]
    return [
        envelope_record(
            kind="runtime_event",
            key=f"{prefix}-{i}",
            payload=PAYLOAD,
            cluster_id="local",
            source="bench",
        )
        for i in range(count)
    ]


def stored(server: Garrison) -> int:
    with sqlite3.connect(server.home / "garrison.db") as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


async def raw_posts(server: Garrison) -> float:
    rows = records("raw", EVENTS)
    bodies = [
        gzip.compress(batch_body([r.body for r in rows[i : i + BATCH]]), 1)
        for i in range(0, EVENTS, BATCH)
    ]
    headers = {
        "Authorization": f"Bearer {server.cluster_token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    connector = aiohttp.TCPConnector(ssl=client_context(server.home / "tls" / "ca.crt"), limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        for body in bodies:
            async with session.post(
                f"{server.api}/v1/ingest", data=body, headers=headers
            ) as response:
                await response.read()
                assert response.status == 200
        return EVENTS / (time.perf_counter() - start)


def publisher(server: Garrison, outbox: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GARRISON_CLUSTER_TOKEN": server.cluster_token,
        "GARRISON_HOME": str(outbox.parent),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "garrison.cli",
            "publisher",
            "--url",
            server.api,
            "--cluster",
            "local",
            "--ca",
            str(server.home / "tls" / "ca.crt"),
            "--outbox",
            str(outbox),
            "--metrics-port",
            "0",
            *EXTRA,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def end_to_end(server: Garrison, root: Path) -> float:
    outbox = root / "outbox.db"
    box = Outbox(outbox)
    rows = records("e2e", EVENTS)
    for i in range(0, EVENTS, 10_000):
        box.put(rows[i : i + 10_000])
    box.close()
    process = publisher(server, outbox)
    watch = sqlite3.connect(outbox)

    def waiting() -> int:
        return int(watch.execute("SELECT count(*) FROM records").fetchone()[0])

    while (left := waiting()) == EVENTS:
        time.sleep(0.01)  # the clock starts at the first acknowledged batch, not at start-up
    start = time.perf_counter()
    while watch.execute("SELECT 1 FROM records LIMIT 1").fetchone() is not None:
        time.sleep(0.02)  # a record leaves the outbox only once the backend stored it
    rate = left / (time.perf_counter() - start)
    watch.close()
    process.terminate()
    process.wait(timeout=30)
    return rate


def footprint(server: Garrison, root: Path) -> tuple[float, float, int]:
    outbox = root / "load.db"
    box = Outbox(outbox)
    process = publisher(server, outbox)
    time.sleep(2.0)  # start-up (imports) is not the steady state being measured
    cpu_start, wall_start = cpu_seconds(process.pid), time.perf_counter()
    produced = 0
    tick = 0.1
    next_at = time.perf_counter()
    while time.perf_counter() - wall_start < LOAD_SECONDS:
        batch = records(f"load-{produced}", int(RATE * tick))
        box.put(batch)
        produced += len(batch)
        next_at += tick
        time.sleep(max(0.0, next_at - time.perf_counter()))
    cores = (cpu_seconds(process.pid) - cpu_start) / (time.perf_counter() - wall_start)
    rss = peak_rss_mib(process.pid)
    process.terminate()
    process.wait(timeout=30)
    box.close()
    return cores, rss, produced


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with garrison_up(root / "home") as server:
            raw = asyncio.run(raw_posts(server))
            before = stored(server)
            e2e = end_to_end(server, root)
            assert stored(server) >= before + EVENTS
            cores, rss, produced = footprint(server, root)
    print(f"publisher: {EVENTS:,} envelopes in batches of {BATCH:,}, HTTPS to garrison up")
    print(f"  raw POSTs of the same batches, no outbox (baseline)  {raw:>9,.0f} events/s")
    print(
        f"  outbox -> publisher -> backend store                 {e2e:>9,.0f} events/s   ratio {e2e / raw:.2f}  (target >= 50,000/s)"
    )
    print(
        f"  at {RATE:,} events/s for {LOAD_SECONDS} s ({produced:,} events): publisher CPU {cores:.3f} core (target <= 0.06), peak RSS {rss:.0f} MiB (target <= 200)"
    )
    return {
        "publisher_events_per_s": e2e,
        "publisher_ratio": e2e / raw,
        "publisher_cores": cores,
        "publisher_rss_mib": rss,
    }


if __name__ == "__main__":
    main()
