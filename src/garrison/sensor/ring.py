"""Reading a BPF ring buffer by mapping it, without a callback per record.

libbpf's ``ring_buffer__poll`` calls back into Python once per record (through ctypes);
here the ring's pages are mapped into the process and records are sliced out of them in a
Python loop, then the consumer position is published once per batch. The layout is the
kernel's (``kernel/bpf/ringbuf.c``): a consumer page (read-write), then a producer page and
the data area mapped twice in a row so a record that wraps reads as one slice. Each record
has an 8-byte header: its length with a BUSY bit (still being written) and a DISCARD bit.
The positions and headers are read and written as whole machine words (memoryview casts):
``struct`` packs byte by byte, and a consumer position written so passes through smaller
values that the kernel, reading it meanwhile, took for a full ring (a few events dropped a
run, at 16 MiB boundaries).
Measured against the callback (bench/sensor.py) it was no faster, so the sensor reads by
callback unless ``--ring mapped`` is given.
"""

from __future__ import annotations

import mmap
import select
from collections.abc import Callable

BUSY = 1 << 31
DISCARD = 1 << 30
HEADER = 8
RELEASE_EVERY = 64  # records between publications of the consumer position


class MappedRing:
    def __init__(self, fd: int, size: int) -> None:
        if size <= 0 or size & (size - 1):
            raise ValueError(f"ring size {size} is not a power of two")
        page = mmap.PAGESIZE
        self.size = size
        self.mask = size - 1
        self._consumer = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._producer = mmap.mmap(
            fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page
        )
        self._view = memoryview(self._producer)
        self._data = self._view[page:]
        # one aligned 8-byte (4-byte) load or store each: the kernel never sees half of one
        self._consumer_pos = memoryview(self._consumer).cast("Q")
        self._producer_pos = self._view[:8].cast("Q")
        self._headers = self._data.cast("I")
        self._epoll = select.epoll()
        self._epoll.register(fd, select.EPOLLIN)

    def drain(self, handle: Callable[[bytes], None]) -> int:
        """Hand every committed record to ``handle``; returns how many."""
        positions, produced, headers = self._consumer_pos, self._producer_pos, self._headers
        consumer = positions[0]
        producer = produced[0]
        data, mask, count = self._data, self.mask, 0
        while consumer < producer:
            offset = consumer & mask
            length = headers[offset >> 2]
            if length & BUSY:
                break  # reserved, not yet submitted: the rest waits for the next drain
            size = length & ~(BUSY | DISCARD)
            if not length & DISCARD:
                handle(bytes(data[offset + HEADER : offset + HEADER + size]))
                count += 1
            consumer += (size + HEADER + 7) & ~7
            if count % RELEASE_EVERY == 0:  # give the kernel its space back as we go
                positions[0] = consumer
            if consumer >= producer:
                producer = produced[0]
        positions[0] = consumer
        return count

    def poll(self, handle: Callable[[bytes], None], timeout_ms: int) -> int:
        """Wait up to ``timeout_ms`` for records, then drain them."""
        drained = self.drain(handle)
        if drained:
            return drained
        try:
            self._epoll.poll(timeout_ms / 1000)
        except InterruptedError:
            return 0
        return self.drain(handle)

    def close(self) -> None:
        self._epoll.close()
        self._headers.release()
        self._producer_pos.release()
        self._consumer_pos.release()
        self._data.release()
        self._view.release()
        self._producer.close()
        self._consumer.close()
