"""Open-loop load: requests leave at their scheduled times whatever the answers do.

Latency counts from each request's scheduled time, so queueing anywhere — in the server or
in the client's connection pool — shows in the figures instead of slowing the sender down.
The sender's own cyclic GC is off while it sends: a full collection in the load generator
(18.8 ms measured in the admission benchmark's client) would otherwise stall every request
due meanwhile and be counted as the server's latency.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections.abc import Awaitable, Callable, Sequence


async def at_rate(
    bodies: Sequence[bytes], rate: float, send: Callable[[bytes, float], Awaitable[None]]
) -> None:
    """Call ``send(body, scheduled)`` for each body, ``1 / rate`` seconds apart."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter() + 0.2
        tasks = []
        for i, body in enumerate(bodies):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(body, scheduled)))
        await asyncio.gather(*tasks)
    finally:
        gc.enable()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
