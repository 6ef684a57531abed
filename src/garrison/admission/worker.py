"""The evaluation worker: a child process that holds the compiled policies and evaluates reviews.

Rego and CEL evaluation runs in native code that holds the GIL and cannot be interrupted,
so the webhook never evaluates in its own process: it sends each review to this worker
over a pipe and, when the per-request deadline passes, kills the worker, answers by the
configured failure mode and starts a fresh one. A policy that loops cannot stall the
webhook or the cluster.

Frames on stdin/stdout: a 4-byte big-endian length, then a msgpack map. Requests:
``{"op": "load", "objects": [...], "inventory": [...], "engine": "auto", "cache_entries": N}`` and
``{"op": "review", "request": {...}, "point": "...", "deadline": T}`` (``time.monotonic()``,
the same clock in both processes); answers carry ``results`` (a list of ``[kind, name, msg,
action, error]``), ``error``, or ``late`` for a review that reached the worker past its
deadline and was not evaluated.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import sys
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec

from garrison.admission.evaluate import PolicySet, load_policy_set
from garrison.admission.inventory import Inventory
from garrison.admission.result_cache import DEFAULT_ENTRIES
from garrison.events.errors import GarrisonError
from garrison.heap import settle

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


def _read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's body, None at the end of the stream; WorkerError where the stream
    cannot go on (cut inside a frame, or a frame over the limit)."""
    header = stream.read(_HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise WorkerError("the stream ended inside a frame header")
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise WorkerError(f"frame of {size} bytes is over the {MAX_FRAME}-byte limit")
    body = stream.read(size)
    if len(body) < size:
        raise WorkerError(f"the stream ended {len(body)} bytes into a {size}-byte frame")
    return body


def _write_frame(stream: BinaryIO, message: Any) -> None:
    body = msgspec.msgpack.encode(message)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def _objects(message: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    objects = message.get(name) or []
    if not isinstance(objects, list) or not all(isinstance(o, Mapping) for o in objects):
        raise WorkerError(f"{name} must be a list of objects")
    return objects


def _handle(policy: PolicySet | None, message: Mapping[str, Any]) -> tuple[PolicySet | None, Any]:
    op = message.get("op")
    if op == "load":
        engine = message.get("engine", "auto")
        entries = message.get("cache_entries", DEFAULT_ENTRIES)
        try:
            if engine not in ("auto", "rego", "cel"):
                raise WorkerError(f"unknown engine {engine!r}")
            if not isinstance(entries, int) or entries < 0:
                raise WorkerError("cache_entries must be a count")
            inventory = Inventory(_objects(message, "inventory"))
            loaded = load_policy_set(_objects(message, "objects"), engine, inventory, entries)
        except GarrisonError as exc:
            return policy, {"error": str(exc)}
        return loaded, {"templates": len(loaded.templates), "constraints": len(loaded.constraints)}
    if op == "review":
        if policy is None:
            return policy, {"error": "no policies loaded"}
        deadline = message.get("deadline")
        if isinstance(deadline, (int, float)) and time.monotonic() > deadline:
            return policy, {"late": True}  # its caller has been answered: not evaluated
        request = message.get("request")
        if not isinstance(request, Mapping):
            return policy, {"error": "a review needs a request object"}
        try:
            results = policy.review(request, str(message.get("point")))
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
        try:
            policy.replace_inventory(Inventory(_objects(message, "objects")))
        except GarrisonError as exc:
            return policy, {"error": str(exc)}
        return policy, {"objects": len(policy.inventory)}
    if op == "ping":
        return policy, {"pong": True}
    return policy, {"error": f"unknown op {op!r}"}


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer frames until ``stdin`` closes (0), or until it cannot be read on (2: said on
    stderr). A frame that is not a message map is answered with an error, and the next one
    is read."""
    policy: PolicySet | None = None
    while True:
        try:
            body = _read_frame(stdin)
        except WorkerError as exc:
            print(f"garrison admission worker: {exc}", file=sys.stderr)
            return 2
        if body is None:
            return 0
        try:
            message = msgspec.msgpack.decode(body)
        except msgspec.DecodeError as exc:
            _write_frame(stdout, {"error": f"frame is not msgpack: {exc}"})
            continue
        if not isinstance(message, Mapping):
            _write_frame(stdout, {"error": "frame is not a message map"})
            continue
        policy, answer = _handle(policy, message)
        if message.get("op") in ("load", "inventory") and "error" not in answer:
            settle()  # the policies live until the next load
        _write_frame(stdout, answer)


def main() -> int:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but frames may reach the parent's pipe
    return serve(stdin, stdout)


PIPELINE = 2  # reviews on a worker's pipe at once: the next is there when one is answered
GRACE = 0.05  # seconds past a review's deadline before the worker evaluating it is killed


@dataclass
class _Waiting:
    future: asyncio.Future[Mapping[str, Any]]
    deadline: float  # the loop's clock (time.monotonic)


class WorkerClient:
    """The webhook's side of one worker: reviews pipelined, a deadline on each.

    Up to ``depth`` messages are on the pipe at once, answered in order: a reader task hands
    each answer to the oldest message waiting, so the worker starts the next review as soon
    as it has answered one, without waiting for the webhook's event loop to come back to it.
    Each review carries its deadline: the worker skips one already past it, and the reader
    kills a worker still evaluating the oldest message past its deadline (a fresh worker
    starts behind it; what else was on the pipe fails and is answered by the failure mode),
    whether or not its caller is still waiting. A caller whose deadline passes while its
    review waits behind another is answered by the failure mode; nothing dies then.
    """

    def __init__(self, load_message: Mapping[str, Any], depth: int = PIPELINE) -> None:
        self._load_message = dict(load_message)
        self._process: asyncio.subprocess.Process | None = None
        self._slots = asyncio.Semaphore(depth)
        self._waiting: deque[_Waiting] = deque()
        self._sent = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._up = asyncio.Event()  # set while a worker is running with policies loaded
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
        self._reader = asyncio.create_task(self._read_answers(self._process))
        answer = await self._exchange(self._load_message, timeout=120.0)
        if "error" in answer:
            raise WorkerError(f"policies did not load: {answer['error']}")
        self._up.set()
        return answer

    async def reload(self, load_message: Mapping[str, Any]) -> Mapping[str, Any]:
        """Load a new policy set; the old one stays when the new one fails to load."""
        answer = await self._exchange(load_message, timeout=120.0)
        if "error" in answer:
            raise WorkerError(f"policies did not load: {answer['error']}")
        self._load_message = dict(load_message)
        return answer

    async def replace_inventory(self, objects: list[Any]) -> None:
        """A new ``data.inventory`` for the loaded policies (and for later restarts)."""
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
                await self._up.wait()
                await self._slots.acquire()
        except TimeoutError:
            self.waiting_timeouts += 1
            raise WorkerBusy(f"waited {timeout:.3f} s for the evaluator (overloaded)") from None
        try:
            message = {"op": "review", "request": request, "point": point, "deadline": end}
            waiting = self._send(message, end)
            try:
                async with asyncio.timeout_at(end):
                    answer = await asyncio.shield(waiting.future)
            except TimeoutError:
                evaluating = bool(self._waiting) and self._waiting[0] is waiting
                waiting.future.cancel()
                if evaluating:  # the reader kills it a moment later; no need to wait
                    self._replace()
                    raise WorkerTimeout(f"policy evaluation ran past {timeout:.3f} s") from None
                self.waiting_timeouts += 1
                raise WorkerBusy(
                    f"waited {timeout:.3f} s behind another review (overloaded)"
                ) from None
            except BaseException:
                waiting.future.cancel()  # its caller went away: the answer will be dropped
                raise
        finally:
            self._slots.release()
        if answer.get("late"):
            raise WorkerBusy("the review reached the evaluator past its deadline")
        if "error" in answer:
            raise WorkerError(str(answer["error"]))
        return [WorkerResult(*row) for row in answer["results"]]

    def _send(self, message: Mapping[str, Any], deadline: float) -> _Waiting:
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            raise WorkerError("worker is not running")
        body = msgspec.msgpack.encode(message)
        loop = asyncio.get_running_loop()
        waiting = _Waiting(loop.create_future(), deadline)
        try:
            process.stdin.write(_HEADER.pack(len(body)) + body)
        except (ConnectionError, RuntimeError):
            raise WorkerError("the evaluation worker exited") from None
        self._waiting.append(waiting)
        self._sent.set()
        return waiting

    async def _exchange(self, message: Mapping[str, Any], timeout: float) -> Mapping[str, Any]:
        """One message and its answer (loads, inventory), within ``timeout``."""
        end = asyncio.get_running_loop().time() + timeout
        waiting = self._send(message, end)
        try:
            async with asyncio.timeout_at(end + GRACE):
                return await asyncio.shield(waiting.future)
        except TimeoutError:
            raise WorkerTimeout(f"the worker did not answer within {timeout:.3f} s") from None

    async def _read_answers(self, process: asyncio.subprocess.Process) -> None:
        """Answers in order, each to the oldest message waiting; a worker still busy with
        the oldest past its deadline is replaced; when the worker ends, all waiting fail."""
        assert process.stdout is not None
        overdue = False
        try:
            while True:
                if not self._waiting:
                    self._sent.clear()
                    await self._sent.wait()
                    continue
                try:
                    async with asyncio.timeout_at(self._waiting[0].deadline + GRACE):
                        header = await process.stdout.readexactly(_HEADER.size)
                        (size,) = _HEADER.unpack(header)
                        if size > MAX_FRAME:
                            raise WorkerError(f"worker answered a frame of {size} bytes")
                        payload = await process.stdout.readexactly(size)
                except TimeoutError:
                    overdue = True
                    return
                waiting = self._waiting.popleft()
                answer = msgspec.msgpack.decode(payload)
                if waiting.future.done():
                    continue  # its caller went away or gave up: the answer is dropped
                if isinstance(answer, Mapping):
                    waiting.future.set_result(answer)
                else:
                    error = WorkerError("worker answered something that is not a map")
                    waiting.future.set_exception(error)
        except (asyncio.IncompleteReadError, ConnectionError, WorkerError, msgspec.DecodeError):
            pass
        finally:
            while self._waiting:
                waiting = self._waiting.popleft()
                if not waiting.future.done():
                    waiting.future.set_exception(WorkerError("the evaluation worker exited"))
            if self._process is process:  # not replaced on purpose: it ran over, or died
                if overdue:
                    log.warning("an evaluation ran past its deadline: replacing the worker")
                self._replace()

    def _replace(self) -> None:
        """Kill the worker (what waits on its pipe fails) and start a fresh one behind it."""
        process, self._process = self._process, None
        self._up.clear()
        if process is not None and process.returncode is None:
            process.kill()
        if process is not None and (self._restarting is None or self._restarting.done()):
            self._restarting = asyncio.create_task(self._restart())

    async def ready(self) -> None:
        """Return once a restart behind a failed review (if any) has finished."""
        if self._restarting is not None:
            await asyncio.gather(self._restarting, return_exceptions=True)

    async def _restart(self) -> None:
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            await asyncio.gather(reader, return_exceptions=True)
        try:
            self.restarts += 1
            await self.start()
        except WorkerError as exc:
            log.error("the evaluation worker did not restart: %s", exc)

    async def close(self) -> None:
        if self._restarting is not None:
            await asyncio.gather(self._restarting, return_exceptions=True)
        process, self._process = self._process, None
        self._up.clear()
        if process is not None and process.stdin is not None and process.returncode is None:
            process.stdin.close()
            try:
                async with asyncio.timeout(5):
                    await process.wait()
            except TimeoutError:
                pass
        if process is not None:
            if process.returncode is None:
                process.kill()
            await process.wait()
        if self._reader is not None:
            self._sent.set()
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


class WorkerPool:
    """Several evaluation workers behind the interface of one (``--workers``).

    Each worker takes up to ``PIPELINE`` reviews at once (a token each in the idle queue); a
    review goes to the first free token and waits (within its deadline) when there is none; a
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
        for _ in range(PIPELINE):  # a token per review a worker's pipe holds
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
