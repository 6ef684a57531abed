"""The contract: every record that crosses a process boundary. Imports nothing else of garrison."""

from garrison.events.alert import Alert, AlertStatus, Entities, Mitre, Severity, dedupe_key
from garrison.events.audit import (
    AUDIT_API_VERSIONS,
    AUDIT_LEVELS,
    AUDIT_STAGES,
    AuditEvent,
    EventList,
    ObjectReference,
    ResponseStatus,
    UserInfo,
    audit_event_to_builtins,
)
from garrison.events.envelope import RECORD_KINDS, SCHEMA_VERSION, Envelope, EnvelopeBatch
from garrison.events.errors import GarrisonError

__all__ = [
    "AUDIT_API_VERSIONS",
    "AUDIT_LEVELS",
    "AUDIT_STAGES",
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "Alert",
    "AlertStatus",
    "AuditEvent",
    "Entities",
    "Envelope",
    "EnvelopeBatch",
    "EventList",
    "GarrisonError",
    "Mitre",
    "ObjectReference",
    "ResponseStatus",
    "Severity",
    "UserInfo",
    "audit_event_to_builtins",
    "dedupe_key",
]
