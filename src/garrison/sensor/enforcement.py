"""Keeps the kernel's drift-blocking map in step with the drift policy, container by container.

A container's cgroup is decided on its first event (its entrypoint's exec comes before any
file it could write and run) and again whenever the policy file changes. Decisions are
bounded; the oldest container is forgotten first (its map entry stays until then).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from garrison.events.runtime import NOT_A_CONTAINER, RuntimeEvent
from garrison.runtime.drift import DriftPolicy, Scope


class DriftBlocker(Protocol):
    def block_drift(self, cgroup_id: int, block: bool) -> None: ...

    def allow_drift(self, paths: set[str]) -> None: ...


class DriftEnforcer:
    def __init__(
        self,
        probe: DriftBlocker,
        policy: DriftPolicy,
        scope_of: Callable[[RuntimeEvent], Scope],
        *,
        max_containers: int = 16384,
    ) -> None:
        self.probe = probe
        self.policy = policy
        self.scope_of = scope_of
        self.max_containers = max_containers
        self._decided: OrderedDict[int, tuple[Scope, bool]] = OrderedDict()
        self._reloads = policy.reloads
        self.blocked_containers = 0
        probe.allow_drift(policy.allowed_executables())

    def observe(self, event: RuntimeEvent) -> None:
        if event.container_id in NOT_A_CONTAINER or not event.cgroup_id:
            return
        if self.policy.reloads != self._reloads:
            self._reloads = self.policy.reloads
            self._refresh()
        found = self._decided.get(event.cgroup_id)
        if found is not None and (found[0].image or not event.image):
            return  # decided (a decision made before the runtime's state was read is redone)
        scope = self.scope_of(event)
        self._decide(event.cgroup_id, scope)

    def _decide(self, cgroup_id: int, scope: Scope) -> None:
        block = self.policy.blocks(scope)
        previous = self._decided.get(cgroup_id)
        if previous is None or previous[1] != block:
            self.probe.block_drift(cgroup_id, block)
        self._decided[cgroup_id] = (scope, block)
        self._decided.move_to_end(cgroup_id)
        while len(self._decided) > self.max_containers:
            self._decided.popitem(last=False)
        self.blocked_containers = sum(1 for _, b in self._decided.values() if b)

    def _refresh(self) -> None:
        self.probe.allow_drift(self.policy.allowed_executables())
        for cgroup_id, (scope, _) in list(self._decided.items()):
            self._decide(cgroup_id, scope)
