"""The registry of event sources the engine evaluates, built explicitly (no import side effects)."""

from __future__ import annotations

from garrison.rules.fields import EventSource
from garrison.rules.k8s_audit_fields import K8sAuditSource
from garrison.rules.syscall_fields import SyscallSource


def default_sources() -> dict[str, EventSource]:
    return {"k8s_audit": K8sAuditSource(), "syscall": SyscallSource()}
