"""What a policy reads as ``input.review``: an AdmissionRequest, from a webhook call or an object.

An object on its own (audit, ``policy eval``, gator suites) becomes the request Gatekeeper
builds for it: operation ``""``, no user, the object under ``object``. An AdmissionReview's
``request`` is used as it is, with ``object`` replaced by ``oldObject`` on DELETE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from garrison.admission.model import PolicyError

ADMISSION_API = "admission.k8s.io/"


def as_map(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty one (absent optional fields)."""
    return value if isinstance(value, Mapping) else {}


def group_version(api_version: str) -> tuple[str, str]:
    """``apps/v1`` → (``apps``, ``v1``); ``v1`` (the core group) → (``""``, ``v1``)."""
    group, _, version = api_version.rpartition("/")
    return group, version


def is_admission_review(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and obj.get("kind") == "AdmissionReview"
        and str(obj.get("apiVersion", "")).startswith(ADMISSION_API)
    )


def request_of(review: Mapping[str, Any], require_kind: bool = True) -> dict[str, Any]:
    """The AdmissionRequest of an AdmissionReview, checked, with DELETE's object filled in.

    The API server always sends ``kind``; gator accepts a review without one (a zero value).
    """
    request = review.get("request")
    if not isinstance(request, Mapping):
        raise PolicyError("AdmissionReview has no request object")
    kind = request.get("kind")
    if kind is None and not require_kind:
        kind = {"group": "", "version": "", "kind": ""}
    if not isinstance(kind, Mapping) or not isinstance(kind.get("kind"), str):
        raise PolicyError("AdmissionReview request.kind must be {group, version, kind}")
    out = dict(request)
    out["kind"] = kind
    if out.get("operation") == "DELETE" and out.get("object") is None:
        out["object"] = out.get("oldObject")
    if out.get("object") is None and out.get("oldObject") is None:
        raise PolicyError("AdmissionReview request has neither object nor oldObject")
    return out


def request_for_object(obj: Any) -> dict[str, Any]:
    """The request Gatekeeper makes for an object outside admission (audit, gator)."""
    if not isinstance(obj, Mapping):
        raise PolicyError("a Kubernetes object must be a mapping")
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        raise PolicyError("a Kubernetes object needs apiVersion and kind")
    group, version = group_version(api_version)
    metadata = as_map(obj.get("metadata"))
    request: dict[str, Any] = {
        "uid": "",
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": "", "version": "", "resource": ""},
        "operation": "",
        "userInfo": {},
        "object": obj,
    }
    if metadata.get("name"):
        request["name"] = metadata["name"]
    if metadata.get("namespace"):
        request["namespace"] = metadata["namespace"]
    return request


def as_request(obj: Any, require_kind: bool = True) -> dict[str, Any]:
    """An AdmissionReview's request, or the request built for a plain object."""
    if is_admission_review(obj):
        return request_of(obj, require_kind)
    return request_for_object(obj)


def object_kind(request: Mapping[str, Any], obj: Mapping[str, Any]) -> tuple[str, str]:
    """(group, kind) of the object itself, as Gatekeeper's match reads it; else the request's."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if isinstance(api_version, str) and isinstance(kind, str) and kind:
        return group_version(api_version)[0], kind
    ref = as_map(request.get("kind"))
    return str(ref.get("group", "")), str(ref.get("kind", ""))


def reviewed_object(request: Mapping[str, Any]) -> Mapping[str, Any]:
    obj = request.get("object")
    if not isinstance(obj, Mapping):
        obj = request.get("oldObject")
    return obj if isinstance(obj, Mapping) else {}
