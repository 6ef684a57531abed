"""Bursts of reconnaissance commands: many distinct discovery commands in one container, fast.

One ``whoami`` is nothing; ``whoami; id; uname -a; hostname; ps; env; mount`` within a
minute in one container is someone looking around (Defender's
K8S.NODE_ReconnaissanceArtifactsBurst). Per container, the distinct recon commands of the
last ``window_seconds`` are kept (bounded); reaching ``threshold`` fires once per window.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from garrison.events.runtime import RuntimeEvent

RECON_COMMANDS = frozenset(
    {
        "whoami",
        "id",
        "uname",
        "hostname",
        "ifconfig",
        "ip",
        "netstat",
        "ss",
        "ps",
        "env",
        "printenv",
        "mount",
        "df",
        "lsblk",
        "route",
        "arp",
        "w",
        "who",
        "last",
        "getent",
        "nproc",
        "lscpu",
        "lsmod",
        "groups",
        "capsh",
        "cat",
    }
)


@dataclass
class _Window:
    seen: dict[str, float] = field(default_factory=dict)
    fired_at: float = float("-inf")


class ReconBurst:
    def __init__(
        self, *, threshold: int = 5, window_seconds: float = 60.0, max_containers: int = 4096
    ) -> None:
        self.threshold = threshold
        self.window = window_seconds
        self.max_containers = max_containers
        self._containers: OrderedDict[str, _Window] = OrderedDict()

    def observe(self, event: RuntimeEvent) -> list[str] | None:
        """The commands of a burst this exec completes, or None."""
        if event.type != "exec" or event.comm not in RECON_COMMANDS:
            return None
        if event.comm == "cat" and not any(
            a.startswith(("/etc/passwd", "/etc/os-release", "/proc/")) for a in event.args[1:]
        ):
            return None  # cat counts only on the files people read to look around
        key = event.container_id
        window = self._containers.get(key)
        if window is None:
            window = self._containers[key] = _Window()
            while len(self._containers) > self.max_containers:
                self._containers.popitem(last=False)
        self._containers.move_to_end(key)
        now = event.time
        window.seen = {c: t for c, t in window.seen.items() if now - t <= self.window}
        window.seen[event.comm] = now
        if len(window.seen) >= self.threshold and now - window.fired_at > self.window:
            window.fired_at = now
            return sorted(window.seen, key=window.seen.__getitem__)
        return None
