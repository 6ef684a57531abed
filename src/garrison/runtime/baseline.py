"""Process baselines, as StackRox keeps them: learn what a container runs, then lock.

Key: (namespace, workload, container name) on Kubernetes; (image, container name)
elsewhere. For ``learning_seconds`` after the first exec every executable is added; after
that the baseline is locked and an exec outside it is reported. Bounded: at most
``max_baselines`` keys (least recently used dropped) and ``max_processes`` executables per
baseline (a full baseline locks early). Saved to and restored from a JSON file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from garrison.events.runtime import NOT_A_CONTAINER, RuntimeEvent
from garrison.runtime.alerts import workload_of

Key = tuple[str, str, str]


@dataclass
class Baseline:
    started: float
    processes: set[str] = field(default_factory=set)
    locked: bool = False


class ProcessBaselines:
    def __init__(
        self,
        *,
        learning_seconds: float = 3600.0,
        max_baselines: int = 10_000,
        max_processes: int = 512,
    ) -> None:
        self.learning = learning_seconds
        self.max_baselines = max_baselines
        self.max_processes = max_processes
        self._baselines: OrderedDict[Key, Baseline] = OrderedDict()

    def __len__(self) -> int:
        return len(self._baselines)

    @staticmethod
    def key_of(event: RuntimeEvent) -> Key | None:
        if event.container_id in NOT_A_CONTAINER:
            return None
        name = event.container_name or event.container_id
        if event.namespace:
            return (event.namespace, workload_of(event.pod) or event.pod, name)
        return ("", event.image or event.container_id, name)

    def observe(self, event: RuntimeEvent) -> Key | None:
        """The baseline's key when this exec falls outside a locked baseline, else None."""
        if event.type != "exec":
            return None
        key = self.key_of(event)
        if key is None:
            return None
        process = event.exe or event.comm
        baseline = self._baselines.get(key)
        if baseline is None:
            baseline = self._baselines[key] = Baseline(event.time)
            while len(self._baselines) > self.max_baselines:
                self._baselines.popitem(last=False)
        self._baselines.move_to_end(key)
        if not baseline.locked and (
            event.time - baseline.started >= self.learning
            or len(baseline.processes) >= self.max_processes
        ):
            baseline.locked = True
        if not baseline.locked:
            baseline.processes.add(process)
            return None
        return None if process in baseline.processes else key

    def save(self, path: Path) -> None:
        document = [
            {
                "key": list(key),
                "started": b.started,
                "locked": b.locked,
                "processes": sorted(b.processes),
            }
            for key, b in self._baselines.items()
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".baselines-")
        with os.fdopen(fd, "w") as out:
            json.dump(document, out)
        os.replace(temp, path)

    def restore(self, path: Path) -> int:
        """Baselines saved earlier; returns how many. A missing file restores nothing."""
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            raise ValueError(f"baseline state {path} is not readable: {exc}") from None
        for item in document[-self.max_baselines :]:
            key = tuple(str(part) for part in item["key"])
            if len(key) != 3:
                continue
            processes = set(list(item.get("processes", []))[: self.max_processes])
            self._baselines[(key[0], key[1], key[2])] = Baseline(
                float(item.get("started", 0.0)), processes, bool(item.get("locked", False))
            )
        return len(self._baselines)
