"""Ingest into the SQLite store, and through the HTTPS ingest API.

Store: 200,000 runtime-event envelopes in batches of 1,000 through ``SQLiteStore``
(idempotency key as primary key, one transaction per batch). Baseline: the same rows into a
plain table with no key or index, same pragmas, same batches. Target (issue 2): >= 50,000
events/s. API: the same events POSTed to ``garrison up`` as envelope batches.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp
import msgspec

from bench.servers import garrison_up
from garrison.server.store import SQLiteStore, StoredEvent
from garrison.tls import client_context

EVENTS = 200_000
BATCH = 1_000
PAYLOAD = msgspec.json.encode(
    {
        "type": "exec",
        "pid": 4242,
        "ppid": 1,
        "comm": "sh",
        "exe": "/bin/sh",
        "args": ["sh", "-c", "id"],
        "uid": 0,
        "container_id": "3f2a9c0e1b7d",
        "ancestry": ["runc", "containerd-shim"],
    }
)


def rows(prefix: str) -> list[StoredEvent]:
    return [
        StoredEvent(
            f"{prefix}-{i:09d}", "cluster-1", "runtime_event", "sensor/node-1", 1.0e9 + i, PAYLOAD
        )
        for i in range(EVENTS)
    ]


def store_rate(path: Path) -> float:
    store = SQLiteStore(path)
    events = rows("s")
    start = time.perf_counter()
    for i in range(0, EVENTS, BATCH):
        store.ingest_events(events[i : i + BATCH])
    elapsed = time.perf_counter() - start
    assert store.count_events() == EVENTS
    store.close()
    return EVENTS / elapsed


def baseline_rate(path: Path) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE raw (k TEXT, c TEXT, kind TEXT, s TEXT, t REAL, r REAL, p BLOB)")
    events = rows("b")
    start = time.perf_counter()
    for i in range(0, EVENTS, BATCH):
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO raw VALUES (?,?,?,?,?,?,?)",
            [
                (e.idempotency_key, e.cluster_id, e.kind, e.source, e.produced_at, 0.0, e.payload)
                for e in events[i : i + BATCH]
            ],
        )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return EVENTS / elapsed


async def api_rate(url: str, token: str, ca: Path, count: int) -> float:
    payload = msgspec.json.decode(PAYLOAD)
    bodies = []
    for i in range(0, count, BATCH):
        envelopes = [
            {
                "schema_version": 1,
                "cluster_id": "local",
                "source": "bench",
                "kind": "runtime_event",
                "idempotency_key": f"api-{j:09d}",
                "produced_at": 1.0e9,
                "payload": payload,
            }
            for j in range(i, i + BATCH)
        ]
        bodies.append(msgspec.json.encode({"envelopes": envelopes}))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(ssl=client_context(ca), limit=4)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        semaphore = asyncio.Semaphore(4)

        async def send(body: bytes) -> None:
            async with semaphore, session.post(url, data=body, headers=headers) as response:
                result = await response.json()
                assert response.status == 200 and result["accepted"] == BATCH, result

        await asyncio.gather(*(send(b) for b in bodies))
        return count / (time.perf_counter() - start)


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = baseline_rate(root / "baseline.db")
        ours = store_rate(root / "store.db")
        with garrison_up(root / "home") as server:
            api = asyncio.run(
                api_rate(
                    f"{server.api}/v1/ingest",
                    server.cluster_token,
                    root / "home" / "tls" / "ca.crt",
                    100_000,
                )
            )
    print(f"ingest: {EVENTS:,} runtime-event envelopes, batches of {BATCH:,}")
    print(f"  plain SQLite table (baseline)  {base:>10,.0f} events/s")
    print(
        f"  garrison store (idempotent)    {ours:>10,.0f} events/s   ratio {ours / base:.2f} of baseline (target >= 50,000/s)"
    )
    print(
        f"  HTTPS ingest API, end to end   {api:>10,.0f} events/s   (100,000 events, 4 connections)"
    )
    return {"store_events_per_s": ours, "store_ratio": ours / base, "api_events_per_s": api}


if __name__ == "__main__":
    main()
