"""Audit webhook latency under the API server's load shape.

20 EventList POSTs per second, 400 events each (the webhook backend's batch maximum), sent
open-loop at a constant rate over HTTPS so slow answers cannot slow the sender down;
latency counts from each request's scheduled time. Baseline: the same requests to a bare
HTTPS server that only reads the body. Target (issue 2): p99 <= 50 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.open_loop import at_rate, free_port, percentile
from bench.servers import baseline_server, garrison_up
from bench.workload import audit_stream
from garrison.tls import client_context

RATE = 20.0
SECONDS = 15
BATCH = 400


def batches(count: int) -> list[bytes]:
    lines = audit_stream(count * BATCH, seed=11)
    out = []
    for i in range(count):
        items = b",".join(lines[i * BATCH : (i + 1) * BATCH])
        out.append(b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + items + b"]}")
    return out


async def drive(url: str, token: str, ca: Path, bodies: list[bytes]) -> list[float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(ssl=client_context(ca), limit=100)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: bytes, scheduled: float) -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")
            latencies.append(time.perf_counter() - scheduled)

        await at_rate(bodies, RATE, one)
    return latencies


def main() -> dict[str, float]:
    bodies = batches(int(RATE * SECONDS))
    print(f"audit receiver: {len(bodies)} EventLists of {BATCH} events at {RATE:.0f}/s over HTTPS")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with garrison_up(home) as server:
            ca = home / "tls" / "ca.crt"
            garrison = asyncio.run(drive(server.audit, server.cluster_token, ca, bodies))
            with baseline_server(
                home / "tls" / "server.crt", home / "tls" / "server.key", free_port()
            ) as url:
                bare = asyncio.run(drive(url, "none", ca, bodies))
    figures = {}
    for name, values in (("bare HTTPS (baseline)", bare), ("garrison receiver", garrison)):
        p50, p99 = percentile(values, 50) * 1000, percentile(values, 99) * 1000
        print(
            f"  {name:<22} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   max {max(values) * 1000:7.1f} ms"
        )
        figures[name] = p99
    ratio = figures["garrison receiver"] / figures["bare HTTPS (baseline)"]
    print(f"  p99 ratio to baseline  {ratio:.2f}x   (target: garrison p99 <= 50 ms)")
    print(f"  mean garrison latency  {statistics.mean(garrison) * 1000:.1f} ms")
    return {"receiver_p99_ms": figures["garrison receiver"], "receiver_p99_ratio": ratio}


if __name__ == "__main__":
    main()
