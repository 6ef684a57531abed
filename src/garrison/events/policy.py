"""PolicyAssignment: the admission policies the backend assigns to one cluster."""

from __future__ import annotations

from typing import Any

import msgspec

# what an initiative's constraint can be set to; ``audit`` is Gatekeeper's ``dryrun``
EFFECTS = ("deny", "warn", "audit", "disabled")


class PolicyAssignment(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a cluster's admission deployment enforces, as set centrally.

    ``initiatives`` name built-ins; ``effects`` override their effects
    (``INITIATIVE/CONSTRAINT`` → deny | warn | audit | disabled); ``objects`` are
    ConstraintTemplates, Constraints and mutators of the cluster's own; namespaces in
    ``exempt_namespaces`` are never judged. ``version`` is set by the backend.
    """

    initiatives: list[str] = msgspec.field(default_factory=list)
    effects: dict[str, str] = msgspec.field(default_factory=dict)
    objects: list[dict[str, Any]] = msgspec.field(default_factory=list)
    exempt_namespaces: list[str] = msgspec.field(default_factory=list)
    version: int = 0
    updated_at: float = 0.0
