"""The pods of this node, from the Kubernetes API: container id → pod, namespace, labels, workload.

The sensor lists ``/api/v1/pods?fieldSelector=spec.nodeName=<node>`` and then watches from the
list's resourceVersion (a 410 Gone, a closed stream or an error means list again, after a
pause that doubles up to 30 s). Only the pods of its own node are asked for, so the RBAC it
needs is ``get``/``list``/``watch`` on pods, and the memory is bounded by what one node runs.
The token is sent in a header and never logged.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from garrison.kube import KubeConfig, KubeError, check_status

__all__ = ["KubeConfig", "KubeError", "PodInfo", "PodWatcher", "wait_synced"]

log = logging.getLogger("garrison.sensor.kube")
MAX_PODS = 4096  # far above what a node runs (kubelet's default is 110)
WATCH_READ_TIMEOUT = 330.0  # the server ends a watch after 300 s; silence beyond is a fault
_RUNTIMES = ("containerd://", "cri-o://", "docker://")


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    container: str
    image: str
    labels: Mapping[str, str] = field(default_factory=dict)
    workload: str = ""  # kind/name of the controller: deployment/web, daemonset/agent, ...


def workload_of(pod: dict[str, Any]) -> str:
    """The owning controller; a ReplicaSet made by a Deployment names the Deployment."""
    owners = pod.get("metadata", {}).get("ownerReferences") or []
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    if not isinstance(owner, dict):
        return ""
    kind, name = str(owner.get("kind", "")), str(owner.get("name", ""))
    template_hash = pod.get("metadata", {}).get("labels", {}).get("pod-template-hash")
    if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
        return f"deployment/{name[: -len(template_hash) - 1]}"
    return f"{kind.lower()}/{name}" if kind and name else ""


def containers_of(pod: dict[str, Any]) -> dict[str, PodInfo]:
    """Container id → identity, for every container the pod's status names."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    workload = workload_of(pod)
    out: dict[str, PodInfo] = {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for container in status.get(key) or ():
            raw_id = str(container.get("containerID") or "")
            for prefix in _RUNTIMES:
                if raw_id.startswith(prefix):
                    out[raw_id[len(prefix) :]] = PodInfo(
                        namespace=str(meta.get("namespace", "")),
                        name=str(meta.get("name", "")),
                        container=str(container.get("name", "")),
                        image=str(container.get("image", "")),
                        labels=labels,
                        workload=workload,
                    )
    return out


class PodWatcher:
    """Keeps ``lookup(container_id)`` current for this node's pods, from a background thread."""

    def __init__(self, config: KubeConfig, node: str, *, timeout: float = 30.0) -> None:
        self.config = config
        self.node = node
        self.timeout = timeout
        self._pods: dict[str, dict[str, PodInfo]] = {}  # pod uid → its containers
        self._by_container: dict[str, PodInfo] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)
        self.synced = threading.Event()
        self.last_error = ""
        self.relists = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def lookup(self, container_id: str) -> PodInfo | None:
        return self._by_container.get(container_id)

    def __len__(self) -> int:
        return len(self._pods)

    # -- the loop ---------------------------------------------------------------------
    def _run(self) -> None:
        pause = 1.0
        while not self._stop.is_set():
            try:
                version = self._list()
                pause = 1.0
                self._watch(version)
            except (KubeError, OSError, http.client.HTTPException, ValueError) as exc:
                self.last_error = str(exc)
                log.warning("pod watch: %s; listing again in %.0f s", exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)

    def _list(self) -> str:
        selector = quote(f"spec.nodeName={self.node}", safe="=")
        with self._get(f"/api/v1/pods?fieldSelector={selector}") as response:
            document = json.loads(response.read())
        pods: dict[str, dict[str, PodInfo]] = {}
        for item in (document.get("items") or [])[:MAX_PODS]:
            uid = str((item.get("metadata") or {}).get("uid", ""))
            pods[uid] = containers_of(item)
        self._replace(pods)
        self.relists += 1
        self.synced.set()
        return str((document.get("metadata") or {}).get("resourceVersion", ""))

    def _watch(self, version: str) -> None:
        selector = quote(f"spec.nodeName={self.node}", safe="=")
        path = (
            f"/api/v1/pods?watch=1&allowWatchBookmarks=true&fieldSelector={selector}"
            f"&resourceVersion={quote(version)}&timeoutSeconds=300"
        )
        with self._get(path, stream=True) as response:
            for event in _lines(response):
                if self._stop.is_set():
                    return
                self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        """One watch event: a pod added, changed or deleted."""
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            raise KubeError(f"watch ended: {obj.get('code', '')} {obj.get('reason', '')}")
        if kind == "BOOKMARK":
            return
        uid = str((obj.get("metadata") or {}).get("uid", ""))
        with self._lock:
            pods = dict(self._pods)
        if kind == "DELETED":
            pods.pop(uid, None)
        elif len(pods) < MAX_PODS or uid in pods:
            pods[uid] = containers_of(obj)
        self._replace(pods)

    def _replace(self, pods: dict[str, dict[str, PodInfo]]) -> None:
        by_container = {cid: info for pod in pods.values() for cid, info in pod.items()}
        with self._lock:
            self._pods = pods
            self._by_container = by_container  # readers see one whole map or the other

    @contextmanager
    def _get(self, path: str, *, stream: bool = False) -> Iterator[http.client.HTTPResponse]:
        connection = self.config.connection(WATCH_READ_TIMEOUT if stream else self.timeout)
        connection.request("GET", path, headers=self.config.headers())
        try:
            response = connection.getresponse()
            _check(response)
            yield response
        finally:
            connection.close()


def _check(response: http.client.HTTPResponse) -> None:
    check_status(response, "pods")


def _lines(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    while True:
        line = response.readline()
        if not line:
            return
        if line.strip():
            yield json.loads(line)


def wait_synced(watcher: PodWatcher, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if watcher.synced.wait(0.05):
            return True
    return False
