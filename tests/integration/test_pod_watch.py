"""The sensor's pod watch against a stand-in API server (a kube-apiserver cannot run here).

The stand-in answers like kube-apiserver for ``/api/v1/pods``: a ``PodList`` for a
``spec.nodeName`` field selector, then a watch stream of ``{"type", "object"}`` lines; it
checks the bearer token, and can end a watch with 410 Gone. Pod documents follow the v1 Pod
schema as the API server returns it (owner references, pod-template-hash, containerIDs).
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from garrison.sensor.kube import KubeConfig, PodWatcher, wait_synced
from tests.integration.stand_in import JsonHandler, serve_https

pytestmark = pytest.mark.integration
NODE = "node-7"
TOKEN = "sensor-token-abc123"
WEB_ID = "a" * 64
DB_ID = "b" * 64


def pod(name: str, uid: str, container_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": uid,
            "resourceVersion": "100",
            "labels": {"app": name.split("-")[0], "pod-template-hash": "7c9f8d6b5"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{name.split('-')[0]}-7c9f8d6b5",
                    "uid": "rs-1",
                    "controller": True,
                }
            ],
            **extra,
        },
        "spec": {"nodeName": NODE, "containers": [{"name": "main", "image": "shop/web:1.4"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "main",
                    "image": "docker.io/shop/web:1.4",
                    "containerID": f"containerd://{container_id}",
                    "ready": True,
                }
            ],
        },
    }


class StandIn:
    def __init__(self) -> None:
        self.pods = [pod("web-7c9f8d6b5-x2x4q", "uid-web", WEB_ID)]
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.gone_once = False
        self.selectors: list[str] = []


def handler(stand_in: StandIn) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._json(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
                return
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            stand_in.selectors += query.get("fieldSelector", [])
            if url.path != "/api/v1/pods":
                self._json(404, {"kind": "Status", "code": 404})
                return
            if "watch" not in query:
                self._json(
                    200,
                    {
                        "kind": "PodList",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": "100"},
                        "items": stand_in.pods,
                    },
                )
                return
            if stand_in.gone_once:
                stand_in.gone_once = False
                self._json(410, {"kind": "Status", "code": 410, "reason": "Expired"})
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                event = stand_in.events.get()
                if event is None:
                    self.wfile.write(b"0\r\n\r\n")
                    return
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()

    return Handler


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[StandIn, str, Path]]:
    stand_in = StandIn()
    with serve_https(tmp_path, handler(stand_in)) as (url, ca):
        try:
            yield stand_in, url, ca
        finally:
            stand_in.events.put(None)  # ends the watches still streaming


def wait(condition: Any, seconds: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_lists_then_watches_this_nodes_pods(api: tuple[StandIn, str, Path]) -> None:
    stand_in, url, ca = api
    watcher = PodWatcher(KubeConfig(url, TOKEN, ca), NODE)
    watcher.start()
    try:
        assert wait_synced(watcher, 5)
        web = watcher.lookup(WEB_ID)
        assert web is not None
        assert (web.namespace, web.name, web.container) == ("shop", "web-7c9f8d6b5-x2x4q", "main")
        assert web.workload == "deployment/web" and web.labels["app"] == "web"
        assert web.image == "docker.io/shop/web:1.4"
        stand_in.events.put({"type": "ADDED", "object": pod("db-7c9f8d6b5-q1w2e", "uid-db", DB_ID)})
        assert wait(lambda: watcher.lookup(DB_ID) is not None)
        stand_in.events.put(
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "120"}}}
        )
        stand_in.events.put(
            {"type": "DELETED", "object": pod("web-7c9f8d6b5-x2x4q", "uid-web", WEB_ID)}
        )
        assert wait(lambda: watcher.lookup(WEB_ID) is None)
        assert all(s == f"spec.nodeName={NODE}" for s in stand_in.selectors)  # only its node
    finally:
        stand_in.events.put(None)
        watcher.stop()


def test_relists_after_410_gone(api: tuple[StandIn, str, Path]) -> None:
    stand_in, url, ca = api
    stand_in.gone_once = True
    watcher = PodWatcher(KubeConfig(url, TOKEN, ca), NODE)
    watcher.start()
    try:
        assert wait(lambda: watcher.relists >= 2, 10)
        assert watcher.lookup(WEB_ID) is not None
    finally:
        stand_in.events.put(None)
        watcher.stop()


def test_a_refused_token_is_a_clear_error_without_the_token(api: tuple[StandIn, str, Path]) -> None:
    _, url, ca = api
    watcher = PodWatcher(KubeConfig(url, "wrong-token", ca), NODE)
    watcher.start()
    try:
        assert wait(lambda: bool(watcher.last_error))
        assert "refused the token (401)" in watcher.last_error
        assert "wrong-token" not in watcher.last_error and not watcher.synced.is_set()
    finally:
        watcher.stop()
