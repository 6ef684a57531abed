"""The backend API over HTTPS: ingest with cluster tokens, queries with API tokens."""

from __future__ import annotations

import io
import json
import time

import aiohttp
import msgspec
import pytest

from garrison.events.alert import Alert, Entities, dedupe_key
from garrison.events.audit import audit_event_to_builtins
from tests.conftest import audit_event, pod
from tests.integration.conftest import Running

pytestmark = pytest.mark.integration


def envelope(
    kind: str, key: str, payload: object, cluster: str = "prod", version: int = 1
) -> dict[str, object]:
    return {
        "schema_version": version,
        "cluster_id": cluster,
        "source": "tests",
        "kind": kind,
        "idempotency_key": key,
        "produced_at": time.time(),
        "payload": payload,
    }


def runtime_alert(id: str) -> dict[str, object]:
    entities = Entities(namespace="shop", pod="cart-1", container="c1", process="sh")
    alert = Alert(
        id=id,
        rule_id="drift",
        title="Drift binary executed",
        severity="high",
        priority="Critical",
        output="o",
        source="syscall",
        entities=entities,
        first_seen=time.time(),
        last_seen=time.time(),
        dedupe_key=dedupe_key("drift", entities),
    )
    return msgspec.to_builtins(alert)  # type: ignore[no-any-return]


async def ingest(
    session: aiohttp.ClientSession,
    running: Running,
    envelopes: list[object],
    token: str | None = None,
) -> tuple[int, dict[str, object]]:
    headers = running.auth(token or running.cluster_token)
    async with session.post(
        f"{running.api}/v1/ingest", json={"envelopes": envelopes}, headers=headers
    ) as response:
        return response.status, await response.json()


async def test_ingest_is_idempotent(running: Running, session: aiohttp.ClientSession) -> None:
    batch = [envelope("runtime_event", f"e{i}", {"type": "exec", "pid": i}) for i in range(50)]
    assert await ingest(session, running, batch) == (
        200,
        {"accepted": 50, "duplicates": 0, "rejected": []},
    )
    assert await ingest(session, running, batch) == (
        200,
        {"accepted": 50, "duplicates": 50, "rejected": []},
    )
    assert running.store.count_events() == 50


async def test_bad_envelopes_are_refused_one_by_one(
    running: Running, session: aiohttp.ClientSession
) -> None:
    batch = [
        envelope("runtime_event", "ok", {}),
        envelope("runtime_event", "other", {}, cluster="someone-else"),
        envelope("runtime_event", "v9", {}, version=9),
        envelope("mystery", "m", {}),
        {"kind": "runtime_event"},
        envelope("alert", "bad-alert", {"id": 1}),
    ]
    status, body = await ingest(session, running, batch)
    assert status == 200 and body["accepted"] == 1
    errors = {r["index"]: r["error"] for r in body["rejected"]}  # type: ignore[union-attr]
    assert "another cluster" in errors[1] and "schema_version 9" in errors[2]
    assert "unknown record kind" in errors[3] and "not an envelope" in errors[4]
    assert "bad alert payload" in errors[5]


async def test_an_envelope_nested_past_the_decoder_is_refused_alone(
    running: Running, session: aiohttp.ClientSession
) -> None:
    headers = {**running.auth(running.cluster_token), "Content-Type": "application/json"}
    good = json.dumps(envelope("runtime_event", "fine", {})).encode()
    deep = json.dumps(envelope("runtime_event", "deep", {"x": []})).encode()
    deep = deep.replace(b'"x": []', b'"x": ' + b"[" * 5000 + b"]" * 5000)
    body = b'{"envelopes": [' + deep + b", " + good + b"]}"
    async with session.post(f"{running.api}/v1/ingest", data=body, headers=headers) as response:
        answer = await response.json()
        assert response.status == 200 and answer["accepted"] == 1, answer
    assert answer["rejected"][0]["index"] == 0
    assert "nested too deeply" in answer["rejected"][0]["error"]
    cut = b'{"envelopes": [' + deep[:-5]
    async with session.post(f"{running.api}/v1/ingest", data=cut, headers=headers) as response:
        assert response.status == 400 and "nested too deeply" in (await response.json())["error"]


async def test_tokens(running: Running, session: aiohttp.ClientSession) -> None:
    assert (await ingest(session, running, [], token="gct_nope"))[0] == 401
    new = running.store.rotate_cluster_token("prod")
    assert (await ingest(session, running, []))[0] == 401  # the old token no longer works
    assert (await ingest(session, running, [], token=new))[0] == 200
    async with session.get(f"{running.api}/v1/alerts") as response:
        assert response.status == 401
    async with session.get(
        f"{running.api}/v1/alerts", headers=running.auth(running.cluster_token)
    ) as response:
        assert response.status == 401  # an agent token cannot read alerts


async def test_malformed_and_oversized(running: Running, session: aiohttp.ClientSession) -> None:
    headers = running.auth(running.cluster_token)
    async with session.post(f"{running.api}/v1/ingest", data=b"{nope", headers=headers) as response:
        assert (
            response.status == 400 and "not an envelope batch" in (await response.json())["error"]
        )
    big = b'{"envelopes": [' + b" " * (17 * 1024 * 1024) + b"]}"
    try:
        async with session.post(
            f"{running.api}/v1/ingest", data=io.BytesIO(big), headers=headers
        ) as response:
            assert response.status == 413
    except aiohttp.ClientOSError:
        pass


async def test_alerts_are_deduplicated_queried_and_triaged(
    running: Running, session: aiohttp.ClientSession
) -> None:
    status, body = await ingest(
        session,
        running,
        [
            envelope("alert", "a1", runtime_alert("a1")),
            envelope("alert", "a2", runtime_alert("a2")),
        ],
    )
    assert status == 200 and body["accepted"] == 2
    admin = running.auth(running.api_token)
    async with session.get(
        f"{running.api}/v1/alerts",
        params={"cluster": "prod", "min_severity": "high"},
        headers=admin,
    ) as response:
        listed = await response.json()
    assert listed["count"] == 1 and listed["alerts"][0]["count"] == 2
    alert_id = listed["alerts"][0]["id"]
    async with session.patch(
        f"{running.api}/v1/alerts/{alert_id}", json={"status": "resolved"}, headers=admin
    ) as response:
        assert (await response.json())["status"] == "resolved"
    async with session.get(
        f"{running.api}/v1/alerts", params={"status": "active"}, headers=admin
    ) as response:
        assert (await response.json())["count"] == 0
    async with session.patch(
        f"{running.api}/v1/alerts/{alert_id}", json={"status": "gone"}, headers=admin
    ) as response:
        assert response.status == 400
    async with session.get(f"{running.api}/v1/alerts/nope", headers=admin) as response:
        assert response.status == 404
    async with session.get(
        f"{running.api}/v1/alerts", params={"since": "yesterday"}, headers=admin
    ) as response:
        assert response.status == 400


async def test_ingested_audit_events_are_analyzed(
    running: Running, session: aiohttp.ClientSession
) -> None:
    event = audit_event_to_builtins(audit_event(request_object=pod(privileged=True)))
    status, _ = await ingest(session, running, [envelope("audit_event", "ae1", event)])
    assert status == 200
    await running.backend.queue.join()
    admin = running.auth(running.api_token)
    async with session.get(
        f"{running.api}/v1/alerts", params={"rule": "k8s_privileged_container"}, headers=admin
    ) as response:
        assert (await response.json())["count"] == 1


async def test_clusters_and_openapi(running: Running, session: aiohttp.ClientSession) -> None:
    admin = running.auth(running.api_token)
    async with session.post(
        f"{running.api}/v1/clusters", json={"name": "staging"}, headers=admin
    ) as response:
        created = await response.json()
    assert response.status == 201 and created["token"].startswith("gct_")
    async with session.post(
        f"{running.api}/v1/clusters", json={"name": "staging"}, headers=admin
    ) as response:
        assert response.status == 409
    async with session.get(f"{running.api}/openapi.json") as response:
        document = await response.json()
    assert document["openapi"] == "3.1.0" and "/v1/alerts" in document["paths"]
    assert "Alert" in document["components"]["schemas"]
    json.dumps(document)


async def test_gzip_bodies_and_decompression_bombs(
    running: Running, session: aiohttp.ClientSession
) -> None:
    import gzip

    headers = {**running.auth(running.cluster_token), "Content-Encoding": "gzip"}
    body = json.dumps({"envelopes": [envelope("runtime_event", "gz1", {"type": "exec"})]}).encode()
    async with session.post(
        f"{running.api}/v1/ingest", data=gzip.compress(body), headers=headers
    ) as response:
        assert response.status == 200 and (await response.json())["accepted"] == 1
    bomb = gzip.compress(b'{"envelopes": [' + b" " * (64 * 1024 * 1024) + b"]}")
    assert len(bomb) < 200_000
    async with session.post(f"{running.api}/v1/ingest", data=bomb, headers=headers) as response:
        assert response.status == 413


async def test_refusals_are_counted(running: Running, session: aiohttp.ClientSession) -> None:
    await ingest(session, running, [], token="gct_nope")
    await ingest(session, running, [envelope("mystery", "m", {})])
    async with session.get(f"{running.api}/metrics") as response:
        text = await response.text()
    assert 'garrison_ingest_rejected_total{reason="unauthorized"} 1.0' in text
    assert 'garrison_ingest_rejected_total{reason="unknown_kind"} 1.0' in text
