"""The evaluation worker: a child process that holds the compiled policies and evaluates reviews.

Rego and CEL evaluation runs in native code that holds the GIL and cannot be interrupted,
so the webhook never evaluates in its own process: it sends each review to this worker
over a pipe and, when the per-request deadline passes, kills the worker, answers by the
configured failure mode and starts a fresh one. A policy that loops cannot stall the
webhook or the cluster.

Frames on stdin/stdout: a 4-byte big-endian length, then a msgpack map. Requests:
``{"op": "load", "objects": [...], "inventory": [...], "engine": "auto", "cache_entries": N}`` and
``{"op": "review", "request": {...}, "point": "..."}``; answers carry ``results`` (a list of
``[kind, name, msg, action, error]``) or ``error``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec

from garrison.admission.evaluate import PolicySet, load_policy_set
from garrison.admission.inventory import Inventory
from garrison.admission.result_cache import DEFAULT_ENTRIES
from garrison.events.errors import GarrisonError

log = logging.getLogger("garrison.admission.worker")
_HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024


class WorkerError(GarrisonError):
    """The worker died, timed out or answered something unusable."""


class WorkerTimeout(WorkerError):
    """The evaluation ran past its deadline; the worker was killed."""


class WorkerBusy(WorkerError):
    """The deadline passed while the review waited for the worker (overload); nothing died."""


@dataclass(frozen=True)
class WorkerResult:
    kind: str
    name: str
    msg: str
    action: str
    error: bool


def _read_frame(stream: BinaryIO) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise WorkerError(f"frame of {size} bytes is over the limit")
    return msgspec.msgpack.decode(stream.read(size))


def _write_frame(stream: BinaryIO, message: Any) -> None:
    body = msgspec.msgpack.encode(message)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def _handle(policy: PolicySet | None, message: Mapping[str, Any]) -> tuple[PolicySet | None, Any]:
    op = message.get("op")
    if op == "load":
        try:
            inventory = Inventory(message.get("inventory") or [])
            loaded = load_policy_set(
                message.get("objects") or [],
                message["engine"],
                inventory,
                int(message.get("cache_entries", DEFAULT_ENTRIES)),
            )
        except GarrisonError as exc:
            return policy, {"error": str(exc)}
        return loaded, {"templates": len(loaded.templates), "constraints": len(loaded.constraints)}
    if op == "review":
        if policy is None:
            return policy, {"error": "no policies loaded"}
        try:
            results = policy.review(message["request"], str(message.get("point")))
        except GarrisonError as exc:
            return policy, {"error": str(exc)}
        return policy, {
            "results": [
                [r.constraint_kind, r.constraint_name, r.msg, r.action, r.error] for r in results
            ]
        }
    if op == "inventory":
        if policy is None:
            return policy, {"error": "no policies loaded"}
        policy.replace_inventory(Inventory(message.get("objects") or []))
        return policy, {"objects": len(policy.inventory)}
    if op == "ping":
        return policy, {"pong": True}
    return policy, {"error": f"unknown op {op!r}"}


def main() -> int:
    """Serve frames until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the parent's pipe
    policy: PolicySet | None = None
    while True:
        message = _read_frame(stdin)
        if message is None:
            return 0
        policy, answer = _handle(policy, message)
        _write_frame(stdout, answer)


class WorkerClient:
    """The webhook's side: one worker, one request at a time, a deadline on each."""

    def __init__(self, load_message: Mapping[str, Any]) -> None:
        self._load_message = dict(load_message)
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self.restarts = 0
        self.waiting_timeouts = 0
        self._restarting: asyncio.Task[None] | None = None

    async def start(self) -> Mapping[str, Any]:
        """Start the worker and load the policies; raises WorkerError when they do not load."""
        env = dict(os.environ, RUST_BACKTRACE="0")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "garrison.admission.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        answer = await self._exchange(self._load_message, timeout=120.0)
        if "error" in answer:
            raise WorkerError(f"policies did not load: {answer['error']}")
        return answer

    async def reload(self, load_message: Mapping[str, Any]) -> Mapping[str, Any]:
        """Load a new policy set; the old one stays when the new one fails to load."""
        async with self._lock:
            answer = await self._exchange(load_message, timeout=120.0)
            if "error" in answer:
                raise WorkerError(f"policies did not load: {answer['error']}")
            self._load_message = dict(load_message)
            return answer

    async def replace_inventory(self, objects: list[Any]) -> None:
        """A new ``data.inventory`` for the loaded policies (and for later restarts)."""
        async with self._lock:
            self._load_message["inventory"] = objects
            answer = await self._exchange({"op": "inventory", "objects": objects}, timeout=60.0)
        if "error" in answer:
            raise WorkerError(str(answer["error"]))

    async def review(
        self, request: Mapping[str, Any], point: str, timeout: float
    ) -> list[WorkerResult]:
        """Evaluate within ``timeout`` seconds, waiting for the worker included."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        try:
            async with asyncio.timeout(timeout):
                await self._lock.acquire()
        except TimeoutError:
            self.waiting_timeouts += 1
            raise WorkerBusy(f"waited {timeout:.3f} s for the evaluator (overloaded)") from None
        try:
            remaining = max(0.001, end - loop.time())
            answer = await self._exchange(
                {"op": "review", "request": request, "point": point}, remaining
            )
        except WorkerError:
            # timed out mid-evaluation or died: answer now, start a fresh worker behind it;
            # the lock passes to the restart, so later reviews wait for it (or time out)
            await self._kill()
            self._restarting = asyncio.create_task(self._restart_and_release())
            raise
        except BaseException:
            # cancelled mid-exchange (a caller's own timeout, shutdown; aiohttp does not cancel
            # handlers when a client goes away): the answer may still arrive and would be read
            # as the next review's, so this worker is replaced too
            self._abandon()
            raise
        self._lock.release()
        if "error" in answer:
            raise WorkerError(str(answer["error"]))
        return [WorkerResult(*row) for row in answer["results"]]

    async def _exchange(self, message: Mapping[str, Any], timeout: float) -> Mapping[str, Any]:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise WorkerError("worker is not running")
        body = msgspec.msgpack.encode(message)
        try:
            process.stdin.write(_HEADER.pack(len(body)) + body)
            async with asyncio.timeout(timeout):
                await process.stdin.drain()
                header = await process.stdout.readexactly(_HEADER.size)
                (size,) = _HEADER.unpack(header)
                if size > MAX_FRAME:
                    raise WorkerError(f"worker answered a frame of {size} bytes")
                payload = await process.stdout.readexactly(size)
        except TimeoutError:
            raise WorkerTimeout(f"policy evaluation ran past {timeout:.3f} s") from None
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
            raise WorkerError("the evaluation worker exited") from None
        answer = msgspec.msgpack.decode(payload)
        if not isinstance(answer, Mapping):
            raise WorkerError("worker answered something that is not a map")
        return answer

    def _abandon(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
        self._restarting = asyncio.create_task(self._restart_and_release())

    async def ready(self) -> None:
        """Return once a restart behind a failed review (if any) has finished."""
        if self._restarting is not None:
            await asyncio.gather(self._restarting, return_exceptions=True)

    async def _restart_and_release(self) -> None:
        try:
            self.restarts += 1
            await self.start()
        except WorkerError as exc:
            log.error("the evaluation worker did not restart: %s", exc)
        finally:
            self._lock.release()

    async def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.returncode is None:
            process.kill()
        await process.wait()

    async def close(self) -> None:
        if self._restarting is not None:
            await asyncio.gather(self._restarting, return_exceptions=True)
        process = self._process
        if process is not None and process.stdin is not None and process.returncode is None:
            process.stdin.close()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                pass
        await self._kill()


class WorkerPool:
    """Several evaluation workers behind the interface of one (``--workers``).

    A review goes to the first idle worker and waits (within its deadline) when none is; a
    worker that timed out or died rejoins once its replacement has loaded. Each worker holds
    the whole compiled policy set, so memory grows with the count. Loads go to one worker
    first: a set that does not load is refused before any worker changes.
    """

    def __init__(self, load_message: Mapping[str, Any], size: int) -> None:
        if size < 1:
            raise WorkerError("at least one evaluation worker is needed")
        self.workers = [WorkerClient(load_message) for _ in range(size)]
        self._idle: asyncio.Queue[WorkerClient] = asyncio.Queue()
        self._waiting_timeouts = 0
        self._rejoining: set[asyncio.Task[None]] = set()

    @property
    def restarts(self) -> int:
        return sum(w.restarts for w in self.workers)

    @property
    def waiting_timeouts(self) -> int:
        return self._waiting_timeouts + sum(w.waiting_timeouts for w in self.workers)

    async def start(self) -> Mapping[str, Any]:
        answers = await asyncio.gather(*(w.start() for w in self.workers))
        for worker in self.workers:
            self._idle.put_nowait(worker)
        return answers[0]

    async def reload(self, load_message: Mapping[str, Any]) -> Mapping[str, Any]:
        first, rest = self.workers[0], self.workers[1:]
        answer = await first.reload(load_message)  # refused here: nothing changed anywhere
        await asyncio.gather(*(w.reload(load_message) for w in rest))
        return answer

    async def replace_inventory(self, objects: list[Any]) -> None:
        await asyncio.gather(*(w.replace_inventory(objects) for w in self.workers))

    async def review(
        self, request: Mapping[str, Any], point: str, timeout: float
    ) -> list[WorkerResult]:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        try:
            async with asyncio.timeout(timeout):
                worker = await self._idle.get()
        except TimeoutError:
            self._waiting_timeouts += 1
            raise WorkerBusy(f"waited {timeout:.3f} s for an evaluator (overloaded)") from None
        healthy = False
        try:
            results = await worker.review(request, point, max(0.001, end - loop.time()))
            healthy = True
            return results
        except WorkerBusy:
            healthy = True  # it only waited
            raise
        finally:
            if not healthy:  # it may be restarting: back in the pool once it is up
                task = asyncio.create_task(self._rejoin(worker))
                self._rejoining.add(task)
                task.add_done_callback(self._rejoining.discard)
            else:
                self._idle.put_nowait(worker)

    async def _rejoin(self, worker: WorkerClient) -> None:
        await worker.ready()
        self._idle.put_nowait(worker)

    async def close(self) -> None:
        for task in list(self._rejoining):
            task.cancel()
        await asyncio.gather(*(w.close() for w in self.workers))


if __name__ == "__main__":
    raise SystemExit(main())
