"""The evaluation worker processes: a cancelled review never leaves its answer to the next one;
reviews queue on the pipe, and one past its deadline is not evaluated."""

from __future__ import annotations

import asyncio
import gc
import io
import struct
from typing import Any

import msgspec
import pytest

from garrison.admission.review import as_request
from garrison.admission.worker import WorkerClient, WorkerPool, serve
from tests.integration.test_admission_webhook import LABELS, constraint, template

pytestmark = pytest.mark.integration

# about a second of work: long enough to cancel the review while the worker is busy with it
BUSY = 'package busy\nviolation[{"msg": "busy"}] { count([x | x := numbers.range(1, 2000000)[_]]) > 0 }\n'


def load_message() -> dict[str, Any]:
    objects = [
        template("k8slabels", "K8sLabels", LABELS),
        constraint("K8sLabels", "owner", ["ConfigMap"], key="owner"),
        template("busy", "Busy", BUSY),
        constraint("Busy", "busy", ["Secret"]),
    ]
    return {"op": "load", "objects": objects, "inventory": [], "engine": "auto"}


def review(kind: str) -> dict[str, Any]:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": "shop"}}
    return dict(as_request(obj))


@pytest.mark.parametrize("pool", [False, True])
async def test_a_cancelled_review_does_not_answer_the_next(pool: bool) -> None:
    worker: WorkerClient | WorkerPool = (
        WorkerPool(load_message(), 1) if pool else WorkerClient(load_message())
    )
    await worker.start()
    try:
        busy = asyncio.create_task(worker.review(review("Secret"), "validation", 10.0))
        await asyncio.sleep(0.2)  # the worker is evaluating it now
        busy.cancel()
        with pytest.raises(asyncio.CancelledError):
            await busy
        results = await worker.review(review("ConfigMap"), "validation", 30.0)
        assert [r.msg for r in results] == ["label owner is required"]
        assert worker.restarts == 0  # its answer was dropped: the worker stayed
    finally:
        await worker.close()


async def test_a_review_past_its_deadline_behind_another_is_skipped_not_killed() -> None:
    """The second review waits on the pipe behind a busy one; its deadline passes there:
    answered as overloaded, not evaluated later, and the worker is not replaced."""
    from garrison.admission.worker import WorkerBusy

    worker = WorkerClient(load_message())
    await worker.start()
    try:
        busy = asyncio.create_task(worker.review(review("Secret"), "validation", 30.0))
        await asyncio.sleep(0.2)
        with pytest.raises(WorkerBusy):
            await worker.review(review("ConfigMap"), "validation", 0.3)
        assert [r.msg for r in await busy] == ["busy"]
        results = await worker.review(review("ConfigMap"), "validation", 30.0)
        assert [r.msg for r in results] == ["label owner is required"]
        assert worker.restarts == 0 and worker.waiting_timeouts == 1
    finally:
        await worker.close()


async def test_a_runaway_review_is_killed_even_when_its_caller_is_gone() -> None:
    from garrison.admission.worker import WorkerTimeout

    worker = WorkerClient(load_message())
    await worker.start()
    try:
        with pytest.raises(WorkerTimeout):
            await worker.review(review("Secret"), "validation", 0.2)
        await worker.ready()
        assert worker.restarts == 1
        orphan = asyncio.create_task(worker.review(review("Secret"), "validation", 0.3))
        await asyncio.sleep(0.05)
        orphan.cancel()  # nobody waits for it now, but its deadline still holds
        await asyncio.sleep(0.6)
        await worker.ready()
        assert worker.restarts == 2
        results = await worker.review(review("ConfigMap"), "validation", 30.0)
        assert [r.msg for r in results] == ["label owner is required"]
    finally:
        await worker.close()


def frames(*messages: Any) -> io.BytesIO:
    """A worker's stdin: each message msgpack-encoded behind its length (bytes as they are)."""
    out = b""
    for message in messages:
        body = message if isinstance(message, bytes) else msgspec.msgpack.encode(message)
        out += struct.pack(">I", len(body)) + body
    return io.BytesIO(out)


def answers(stream: io.BytesIO) -> list[Any]:
    data, out = stream.getvalue(), []
    while data:
        (size,) = struct.unpack(">I", data[:4])
        out.append(msgspec.msgpack.decode(data[4 : 4 + size]))
        data = data[4 + size :]
    return out


def test_loaded_policies_are_kept_out_of_the_cyclic_gc() -> None:
    """After a load the worker freezes its heap (a full collection would pause a review);
    a failed load leaves things as they were, and frames still answer in order."""
    gc.unfreeze()
    try:
        stdout = io.BytesIO()
        bad = {"op": "load", "objects": [{"kind": "ConstraintTemplate"}], "engine": "auto"}
        assert serve(frames(bad), stdout) == 0
        assert "error" in answers(stdout)[0] and gc.get_freeze_count() == 0
        stdout = io.BytesIO()
        request = {"op": "review", "request": review("ConfigMap"), "point": "validation"}
        assert serve(frames(load_message(), request), stdout) == 0
        loaded, reviewed = answers(stdout)
        assert loaded == {"templates": 2, "constraints": 2}
        assert reviewed["results"][0][2] == "label owner is required"
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_bad_frames_are_answered_with_errors_and_the_worker_goes_on() -> None:
    request = {"op": "review", "request": review("ConfigMap"), "point": "validation"}
    stdout = io.BytesIO()
    bad = [
        b"\xc1 not msgpack",
        [1, 2],
        {"op": "review", "point": "validation"},  # no request
        {"op": "review", "request": "x", "point": "validation"},
        {"op": "load", "objects": "x"},
        {"op": "load", "objects": [], "engine": "opa"},
        {"op": "load", "objects": [], "cache_entries": -1},
        {"op": "inventory", "objects": [1]},
        {"op": "drop"},
    ]
    try:
        assert serve(frames(load_message(), *bad, request), stdout) == 0
    finally:
        gc.unfreeze()
    loaded, *errors, reviewed = answers(stdout)
    assert "templates" in loaded
    said = [e["error"] for e in errors]
    assert said == [
        said[0],
        "frame is not a message map",
        "a review needs a request object",
        "a review needs a request object",
        "objects must be a list of objects",
        "unknown engine 'opa'",
        "cache_entries must be a count",
        "objects must be a list of objects",
        "unknown op 'drop'",
    ]
    assert said[0].startswith("frame is not msgpack")
    assert reviewed["results"][0][2] == "label owner is required"  # the set loaded first


@pytest.mark.parametrize(
    ("stdin", "why"),
    [
        (b"\x00\x00", "inside a frame header"),
        (struct.pack(">I", 10) + b"abc", "3 bytes into a 10-byte frame"),
        (struct.pack(">I", 2**31), "over the"),
    ],
)
def test_a_stream_that_cannot_go_on_ends_the_worker_with_a_reason(
    stdin: bytes, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stdout = io.BytesIO()
    assert serve(io.BytesIO(stdin), stdout) == 2
    assert why in capsys.readouterr().err
    assert stdout.getvalue() == b""
