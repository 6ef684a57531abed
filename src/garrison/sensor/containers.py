"""Container identity from the OCI runtime's state directory: image, names, pod, privilege.

runc (also under containerd, Docker and CRI-O) keeps ``<root>/<container id>/state.json``
while a container exists. Its ``config.labels`` carry the bundle's annotations as
``key=value`` — containerd and CRI-O put the image and the pod there — and its
``capabilities`` and ``mask_paths`` say whether the container is privileged. Lookups are
cached per container id (bounded); an id with no state is not looked for again for a while.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from garrison.events.runtime import NOT_A_CONTAINER

# where runc keeps state: plain runc, containerd (k8s.io and default namespaces), Docker
DEFAULT_STATE_ROOTS = (
    Path("/run/runc"),
    Path("/run/containerd/runc/k8s.io"),
    Path("/run/containerd/runc/default"),
    Path("/run/docker/runtime-runc/moby"),
)
_IMAGE = ("io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName")
_NAME = ("io.kubernetes.cri.container-name", "io.kubernetes.container.name")
_POD = ("io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name")
_NAMESPACE = ("io.kubernetes.cri.sandbox-namespace", "io.kubernetes.pod.namespace")


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    id: str
    name: str = ""
    image: str = ""
    privileged: bool = False
    pod: str = ""
    namespace: str = ""
    bundle: str = ""
    created: str = ""


def parse_state(container_id: str, state: dict[str, object]) -> ContainerInfo:
    """The identity in one runc ``state.json`` document."""
    config = state.get("config")
    config = config if isinstance(config, dict) else {}
    labels: dict[str, str] = {}
    for label in config.get("labels") or ():
        if isinstance(label, str) and "=" in label:
            key, _, value = label.partition("=")
            labels[key] = value
    caps = config.get("capabilities")
    effective = caps.get("Effective") if isinstance(caps, dict) else None
    privileged = (
        isinstance(effective, list)
        and "CAP_SYS_ADMIN" in effective
        and not config.get("mask_paths")
    )
    created = state.get("created")

    def first(keys: tuple[str, ...]) -> str:
        return next((labels[k] for k in keys if labels.get(k)), "")

    return ContainerInfo(
        id=container_id,
        name=first(_NAME) or container_id,
        image=first(_IMAGE),
        privileged=privileged,
        pod=first(_POD),
        namespace=first(_NAMESPACE),
        bundle=labels.get("bundle", ""),
        created=created if isinstance(created, str) else "",
    )


class ContainerMetadata:
    """Container id → ``ContainerInfo``, read from the runtime's state (bounded cache)."""

    def __init__(
        self,
        roots: tuple[Path, ...] = DEFAULT_STATE_ROOTS,
        *,
        max_entries: int = 4096,
        retry_seconds: float = 1.0,
    ) -> None:
        self.roots = roots
        self.max_entries = max_entries
        self.retry_seconds = retry_seconds
        self._known: OrderedDict[str, ContainerInfo] = OrderedDict()
        self._missed: dict[str, float] = {}

    def lookup(self, container_id: str) -> ContainerInfo | None:
        if container_id in NOT_A_CONTAINER or not container_id:
            return None
        found = self._known.get(container_id)
        if found is not None:
            self._known.move_to_end(container_id)
            return found
        now = time.monotonic()
        missed = self._missed.get(container_id)
        if missed is not None and now - missed < self.retry_seconds:
            return None
        found = self._read(container_id)
        if found is None:
            if len(self._missed) >= self.max_entries:
                self._missed.clear()
            self._missed[container_id] = now
            return None
        self._missed.pop(container_id, None)
        self._known[container_id] = found
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)
        return found

    def _read(self, container_id: str) -> ContainerInfo | None:
        if "/" in container_id or container_id in (".", ".."):
            return None
        for root in self.roots:
            try:
                state = json.loads((root / container_id / "state.json").read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(state, dict):
                return parse_state(container_id, state)
        return None
