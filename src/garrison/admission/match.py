"""Whether a Constraint's ``spec.match`` selects a request, with Gatekeeper's semantics.

Every criterion must hold: kinds (``*`` and empty lists match all), scope, namespaces and
excludedNamespaces (globs with a leading or trailing ``*``; they apply to namespaced objects
and to Namespaces themselves, by their own name), labelSelector, namespaceSelector (a
Namespace's own labels, else the labels of the object's namespace), name, and source.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from garrison.admission.model import LabelSelector, Match, PolicyError
from garrison.admission.review import as_map, object_kind, reviewed_object

NamespaceLookup = Callable[[str], Mapping[str, Any] | None]


def glob_match(pattern: str, value: str) -> bool:
    if pattern.startswith("*") and len(pattern) > 1:
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        return {}
    metadata = obj.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def selector_matches(selector: LabelSelector, labels: Mapping[str, Any]) -> bool:
    for key, value in selector.match_labels.items():
        if labels.get(key) != value:
            return False
    for key, operator, values in selector.expressions:
        present = key in labels
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
    return True


def _kinds_match(match: Match, group: str, kind: str) -> bool:
    if not match.kinds:
        return True
    for entry in match.kinds:
        groups_ok = not entry.api_groups or "*" in entry.api_groups or group in entry.api_groups
        kinds_ok = not entry.kinds or "*" in entry.kinds or kind in entry.kinds
        if groups_ok and kinds_ok:
            return True
    return False


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What matching reads of a request, worked out once for all the constraints."""

    obj: Mapping[str, Any]
    group: str
    kind: str
    name: str
    namespace: str
    is_namespace: bool

    @classmethod
    def of(cls, request: Mapping[str, Any]) -> RequestFacts:
        obj = reviewed_object(request)
        group, kind = object_kind(request, obj)
        metadata = as_map(obj.get("metadata"))
        return cls(
            obj=obj,
            group=group,
            kind=kind,
            name=str(request.get("name") or metadata.get("name") or ""),
            namespace=str(request.get("namespace") or metadata.get("namespace") or ""),
            is_namespace=group == "" and kind == "Namespace",
        )


def _namespace_labels(
    request: Mapping[str, Any], facts: RequestFacts, namespaces: NamespaceLookup | None
) -> Mapping[str, Any]:
    """A Namespace's own labels, else those of the object's namespace."""
    if facts.is_namespace:
        return _labels(facts.obj)
    ns_obj = request.get("namespaceObject")
    if not isinstance(ns_obj, Mapping) and namespaces is not None:
        ns_obj = namespaces(facts.namespace)
    if not isinstance(ns_obj, Mapping):
        raise PolicyError(
            f"namespaceSelector needs the Namespace {facts.namespace!r}, which is not known"
        )
    return _labels(ns_obj)


def matches(
    match: Match,
    request: Mapping[str, Any],
    namespaces: NamespaceLookup | None = None,
    facts: RequestFacts | None = None,
) -> bool:
    """True when the constraint applies to the request.

    ``namespaces`` finds a Namespace object by name (a namespaceSelector needs one); the
    request's own ``namespaceObject`` is used first, as Gatekeeper does. ``facts`` are the
    request's (``RequestFacts.of(request)``), when the caller matches many constraints.
    """
    if facts is None:
        facts = RequestFacts.of(request)
    obj, group, kind = facts.obj, facts.group, facts.kind
    name, namespace, is_namespace = facts.name, facts.namespace, facts.is_namespace

    if not _kinds_match(match, group, kind):
        return False
    if match.scope == "Cluster" and namespace and not is_namespace:
        return False
    if match.scope == "Namespaced" and (not namespace or is_namespace):
        return False
    own_namespace = name if is_namespace else namespace
    if own_namespace:
        if match.namespaces is not None and not any(
            glob_match(p, own_namespace) for p in match.namespaces
        ):
            return False
        if any(glob_match(p, own_namespace) for p in match.excluded_namespaces):
            return False
    if match.label_selector is not None:
        candidates = [obj, request.get("oldObject")]
        if not any(
            selector_matches(match.label_selector, _labels(c)) for c in candidates if c is not None
        ):
            return False
    if match.namespace_selector is not None and (is_namespace or namespace):
        labels = _namespace_labels(request, facts, namespaces)
        if not selector_matches(match.namespace_selector, labels):
            return False
    if match.name is not None and not glob_match(match.name, name):
        return False
    return match.source != "Generated"  # garrison reviews only original objects
