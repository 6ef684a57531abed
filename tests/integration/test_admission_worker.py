"""The evaluation worker processes: a cancelled review never leaves its answer to the next one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from garrison.admission.review import as_request
from garrison.admission.worker import WorkerClient, WorkerPool
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
        assert worker.restarts == 1
    finally:
        await worker.close()
