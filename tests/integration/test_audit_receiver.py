"""The audit webhook over real HTTPS, as kube-apiserver's webhook backend calls it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import aiohttp
import msgspec
import pytest

from garrison.events.audit import audit_event_to_builtins
from garrison.server.store import AlertQuery
from garrison.tls import client_context, issue_certificate
from tests.conftest import audit_event, pod
from tests.integration.conftest import Running, start_backend

pytestmark = pytest.mark.integration


def event_list(*events: object) -> bytes:
    return json.dumps(
        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": list(events)}
    ).encode()


def privileged() -> dict[str, object]:
    return audit_event_to_builtins(audit_event(request_object=pod(privileged=True)))


async def post(
    session: aiohttp.ClientSession,
    running: Running,
    body: bytes,
    token: str | None = None,
    **headers: str,
) -> tuple[int, dict[str, object]]:
    all_headers = {"Content-Type": "application/json", **headers}
    all_headers.update(running.auth(token if token is not None else running.cluster_token))
    async with session.post(running.audit, data=body, headers=all_headers) as response:
        return response.status, await response.json()


async def test_batch_is_analyzed_and_alerts_stored(
    running: Running, session: aiohttp.ClientSession
) -> None:
    status, body = await post(session, running, event_list(privileged(), privileged()))
    assert (status, body) == (200, {"accepted": 2, "rejected": []})
    await running.backend.queue.join()
    alerts = running.store.query_alerts(AlertQuery(rule_id="k8s_privileged_container"))
    assert len(alerts) == 1 and alerts[0].count == 2  # deduplicated
    assert alerts[0].entities.cluster == "prod" and alerts[0].entities.pod == "web"


async def test_mixed_batch_keeps_the_valid_events(
    running: Running, session: aiohttp.ClientSession
) -> None:
    bad = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "stage": "ResponseComplete"}
    status, body = await post(session, running, event_list(bad, privileged()))
    assert status == 200 and body["accepted"] == 1
    assert body["rejected"][0]["index"] == 0  # type: ignore[index]
    await running.backend.queue.join()
    assert running.store.query_alerts(AlertQuery(rule_id="k8s_privileged_container"))


async def test_an_event_nested_past_the_decoder_costs_only_itself(
    running: Running, session: aiohttp.ClientSession
) -> None:
    """A custom resource nested thousands of levels deep must not hide the batch beside it."""
    deep = json.dumps(privileged()).replace(
        '"requestObject": {', '"requestObject": {"x": ' + "[" * 5000 + "]" * 5000 + ", ", 1
    )
    body = event_list(privileged()).replace(b'"items": [', b'"items": [' + deep.encode() + b", ")
    status, answer = await post(session, running, body)
    assert status == 200 and answer["accepted"] == 1
    assert answer["rejected"][0]["index"] == 0  # type: ignore[index]
    assert "nested too deeply" in answer["rejected"][0]["error"]  # type: ignore[index]
    await running.backend.queue.join()
    assert running.store.query_alerts(AlertQuery(rule_id="k8s_privileged_container"))


@pytest.mark.parametrize(("token", "status"), [("", 401), ("gct_wrong", 401)])
async def test_wrong_or_missing_token(
    running: Running, session: aiohttp.ClientSession, token: str, status: int
) -> None:
    got, body = await post(session, running, event_list(privileged()), token=token)
    assert got == status and "credential" in str(body["error"])


async def test_malformed_and_wrong_shapes(running: Running, session: aiohttp.ClientSession) -> None:
    status, body = await post(session, running, b"{not json")
    assert status == 400 and "malformed JSON" in str(body["error"])
    status, body = await post(
        session,
        running,
        json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v9", "items": []}).encode(),
    )
    assert status == 400 and "apiVersion" in str(body["error"])
    async with session.post(
        running.audit,
        data=b"x",
        headers={**running.auth(running.cluster_token), "Content-Type": "text/plain"},
    ) as response:
        assert response.status == 415


async def test_oversized_body_is_refused(running: Running, session: aiohttp.ClientSession) -> None:
    body = b"[" + b" " * (100 * 1024 * 1024) + b"]"
    headers = {**running.auth(running.cluster_token), "Content-Type": "application/json"}
    try:
        async with session.post(running.audit, data=io.BytesIO(body), headers=headers) as response:
            assert response.status == 413
    except aiohttp.ClientOSError:
        pass  # the server may close the connection while the client still sends
    metrics = await (await session.get(running.audit.replace("/k8s-audit", "/metrics"))).text()
    assert 'garrison_audit_events_rejected_total{reason="too_large"} 1.0' in metrics


async def test_full_queue_answers_429_at_once(tmp_path: Path) -> None:
    server = await start_backend(tmp_path, audit_queue_events=2)
    try:
        connector = aiohttp.TCPConnector(ssl=server.context)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.post(
                server.audit,
                data=event_list(privileged(), privileged(), privileged()),
                headers={**server.auth(server.cluster_token), "Content-Type": "application/json"},
            ) as response,
        ):
            assert response.status == 429 and response.headers["Retry-After"] == "1"
    finally:
        await server.backend.stop(drain_seconds=1)
        server.store.close()


async def test_client_certificate_authentication(running: Running) -> None:
    good = issue_certificate(running.tls_dir, running.tls_dir, "prod", client=True)
    stranger = issue_certificate(running.tls_dir, running.tls_dir, "unknown-cluster", client=True)
    for files, expected in ((good, 200), (stranger, 401)):
        context = client_context(files.ca, files.cert, files.key)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
            async with session.post(
                running.audit,
                data=event_list(privileged()),
                headers={"Content-Type": "application/json"},
            ) as response:
                assert response.status == expected


async def test_metrics_count_refusals_by_reason(
    running: Running, session: aiohttp.ClientSession
) -> None:
    await post(session, running, event_list({"kind": 0}), token="gct_wrong")
    await post(session, running, event_list({"kind": "Event"}))
    metrics = await (await session.get(running.audit.replace("/k8s-audit", "/metrics"))).text()
    assert 'garrison_audit_events_rejected_total{reason="unauthorized"} 1.0' in metrics
    assert 'garrison_audit_events_rejected_total{reason="not_audit_event"} 1.0' in metrics


async def test_plain_http_is_not_served(running: Running) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.post(running.audit.replace("https", "http"), data=b"{}")


def test_event_round_trip_is_lossless() -> None:
    event = audit_event(request_object=pod(privileged=True))
    again = msgspec.json.decode(msgspec.json.encode(event), type=type(event))
    assert again == event
