"""Finding: a configuration problem of an object (a policy violation), not an attack."""

from __future__ import annotations

import msgspec


class ObjectRef(msgspec.Struct, frozen=True, omit_defaults=True):
    group: str = ""
    version: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


class Finding(msgspec.Struct, kw_only=True, omit_defaults=True):
    source: str  # admission-audit | posture | ...
    policy_kind: str
    policy_name: str
    message: str
    object: ObjectRef
    time: float
    action: str = ""  # what the policy does at admission: deny | warn | dryrun
    cluster: str = ""
    audit_id: str = ""
    error: bool = False  # the policy failed to evaluate on this object
    schema_version: int = 1
