"""The native Kubernetes audit Event (``audit.k8s.io/v1``) and its EventList.

Field names follow the Kubernetes JSON exactly. ``requestObject`` and ``responseObject``
stay untyped JSON: rules read arbitrary paths inside them. Unknown fields are ignored so
newer API servers keep working; the fields the API marks required are required here.
"""

from __future__ import annotations

from typing import Any

import msgspec

AUDIT_API_VERSIONS = frozenset({"audit.k8s.io/v1", "audit.k8s.io/v1beta1"})
AUDIT_STAGES = frozenset({"RequestReceived", "ResponseStarted", "ResponseComplete", "Panic"})
AUDIT_LEVELS = frozenset({"None", "Metadata", "Request", "RequestResponse"})


class UserInfo(msgspec.Struct, omit_defaults=True):
    username: str = ""
    uid: str = ""
    groups: list[str] = msgspec.field(default_factory=list)
    extra: dict[str, list[str]] = msgspec.field(default_factory=dict)


class ObjectReference(msgspec.Struct, omit_defaults=True, rename="camel"):
    resource: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""
    api_group: str = ""
    api_version: str = ""
    resource_version: str = ""
    subresource: str = ""


class ResponseStatus(msgspec.Struct, omit_defaults=True):
    code: int = 0
    status: str = ""
    reason: str = ""
    message: str = ""


class AuditEvent(msgspec.Struct, omit_defaults=True):
    """One audit record: one stage of one API request."""

    audit_id: str = msgspec.field(name="auditID")
    stage: str = ""
    verb: str = ""
    request_uri: str = msgspec.field(name="requestURI", default="")
    level: str = ""
    kind: str = "Event"
    api_version: str = msgspec.field(name="apiVersion", default="")
    user: UserInfo = msgspec.field(default_factory=UserInfo)
    impersonated_user: UserInfo | None = msgspec.field(name="impersonatedUser", default=None)
    source_ips: list[str] = msgspec.field(name="sourceIPs", default_factory=list)
    user_agent: str = msgspec.field(name="userAgent", default="")
    object_ref: ObjectReference | None = msgspec.field(name="objectRef", default=None)
    response_status: ResponseStatus | None = msgspec.field(name="responseStatus", default=None)
    request_object: Any = msgspec.field(name="requestObject", default=None)
    response_object: Any = msgspec.field(name="responseObject", default=None)
    request_received_timestamp: str = msgspec.field(name="requestReceivedTimestamp", default="")
    stage_timestamp: str = msgspec.field(name="stageTimestamp", default="")
    timestamp: str = ""
    annotations: dict[str, str] = msgspec.field(default_factory=dict)


class EventList(msgspec.Struct):
    """The webhook backend's batch: ``{"kind": "EventList", "items": [...]}``."""

    items: list[msgspec.Raw]
    kind: str = "EventList"
    api_version: str = msgspec.field(name="apiVersion", default="")


def audit_event_to_builtins(event: AuditEvent) -> dict[str, Any]:
    """The event as plain JSON data, with the Kubernetes field names."""
    data: dict[str, Any] = msgspec.to_builtins(event)
    return data
