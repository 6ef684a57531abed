"""Gatekeeper's mutators (``Assign``, ``AssignMetadata``) applied to a review, as a JSON Patch.

Mutators apply in alphabetical order of their names, as in Gatekeeper. ``AssignMetadata``
only adds labels and annotations (an existing key is never changed). ``Assign`` sets any
field outside ``metadata`` at a location such as
``spec.containers[name:*].securityContext.privileged``: a list segment ``[key: value]``
selects the items whose key equals the value (``*`` selects every item that has the key;
a named item that is missing is created); ``pathTests`` (``MustExist`` /
``MustNotExist``) guard it. Each mutator's ``match`` (Gatekeeper's match) and ``applyTo``
select the objects. The patch is the difference between the object before and after.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from garrison.admission.match import matches
from garrison.admission.model import Match, PolicyError, parse_match
from garrison.admission.review import as_map, object_kind

MUTATION_GROUP = "mutations.gatekeeper.sh"
_LIST_SEGMENT = re.compile(r"^(?P<field>[^\[\]]+)\[(?P<key>[^:\]]+):\s*(?P<value>[^\]]+)\]$")


@dataclass(frozen=True)
class Segment:
    field: str
    list_key: str | None = None
    list_value: str | None = None  # "*" for every item that has the key


@dataclass(frozen=True)
class Mutator:
    kind: str  # Assign | AssignMetadata
    name: str
    location: tuple[Segment, ...]
    value: Any
    match: Match
    apply_to: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()  # (groups, kinds)
    path_tests: tuple[tuple[tuple[Segment, ...], str], ...] = ()


def parse_location(text: str) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    for part in re.split(r"\.(?![^\[]*\])", text):
        m = _LIST_SEGMENT.match(part)
        if m:
            value = m.group("value").strip().strip('"')
            segments.append(Segment(m.group("field"), m.group("key").strip(), value))
        elif part and "[" not in part and "]" not in part:
            segments.append(Segment(part))
        else:
            raise PolicyError(f"location {text!r}: cannot read segment {part!r}")
    if not segments:
        raise PolicyError("location is empty")
    return tuple(segments)


def parse_mutator(obj: Mapping[str, Any]) -> Mutator:
    kind = obj.get("kind")
    name = as_map(obj.get("metadata")).get("name")
    if kind not in ("Assign", "AssignMetadata") or not isinstance(name, str):
        raise PolicyError(f"{kind} is not a supported mutator (Assign, AssignMetadata)")
    spec = as_map(obj.get("spec"))
    location = parse_location(str(spec.get("location", "")))
    assign = as_map(as_map(spec.get("parameters")).get("assign"))
    if "value" not in assign:
        raise PolicyError(f"{kind} {name}: parameters.assign.value is required")
    where = f"{kind} {name}"
    if kind == "AssignMetadata":
        if (
            len(location) != 3
            or location[0].field != "metadata"
            or location[1].field
            not in (
                "labels",
                "annotations",
            )
        ):
            raise PolicyError(f"{where}: location must be metadata.labels.<k> or annotations.<k>")
        if not isinstance(assign["value"], str):
            raise PolicyError(f"{where}: label and annotation values must be strings")
    elif location[0].field == "metadata":
        raise PolicyError(f"{where}: Assign cannot change metadata (use AssignMetadata)")
    apply_to = tuple(
        (tuple(a.get("groups") or ()), tuple(a.get("kinds") or ()))
        for a in spec.get("applyTo") or []
        if isinstance(a, Mapping)
    )
    if kind == "Assign" and not apply_to:
        raise PolicyError(f"{where}: applyTo is required")
    tests = tuple(
        (parse_location(str(t.get("subPath", ""))), str(t.get("condition", "MustExist")))
        for t in as_map(spec.get("parameters")).get("pathTests") or []
        if isinstance(t, Mapping)
    )
    return Mutator(
        kind=str(kind),
        name=name,
        location=location,
        value=assign["value"],
        match=parse_match(spec.get("match"), f"{where}: spec.match"),
        apply_to=apply_to,
        path_tests=tests,
    )


def _exists(obj: Any, path: tuple[Segment, ...]) -> bool:
    current = [obj]
    for seg in path:
        nxt: list[Any] = []
        for node in current:
            if not isinstance(node, dict) or seg.field not in node:
                continue
            child = node[seg.field]
            if seg.list_key is None:
                nxt.append(child)
            elif isinstance(child, list):
                nxt.extend(
                    i
                    for i in child
                    if isinstance(i, dict)
                    and seg.list_key in i
                    and (seg.list_value == "*" or str(i[seg.list_key]) == seg.list_value)
                )
        current = nxt
    return bool(current)


def _assign(node: Any, path: tuple[Segment, ...], value: Any, add_only: bool) -> None:
    if not isinstance(node, dict):
        return
    seg, rest = path[0], path[1:]
    if seg.list_key is None:
        if not rest:
            if not (add_only and seg.field in node):
                node[seg.field] = copy.deepcopy(value)
            return
        if not isinstance(node.get(seg.field), dict):
            if seg.field in node and node[seg.field] is not None:
                return  # a scalar where a map is needed: leave it, as Gatekeeper does
            node[seg.field] = {}
        _assign(node[seg.field], rest, value, add_only)
        return
    items = node.setdefault(seg.field, [])
    if not isinstance(items, list):
        return
    selected = [
        i
        for i in items
        if isinstance(i, dict)
        and seg.list_key in i
        and (seg.list_value == "*" or str(i[seg.list_key]) == seg.list_value)
    ]
    if not selected and seg.list_value != "*":
        created = {seg.list_key: seg.list_value}
        items.append(created)
        selected = [created]
    for item in selected:
        if rest:
            _assign(item, rest, value, add_only)


def json_patch(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """An RFC 6902 patch turning ``before`` into ``after``."""
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[dict[str, Any]] = []
        for key in before:
            if key not in after:
                ops.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
        for key, value in after.items():
            child = f"{path}/{_escape(key)}"
            if key not in before:
                ops.append({"op": "add", "path": child, "value": value})
            else:
                ops.extend(json_patch(before[key], value, child))
        return ops
    if isinstance(before, list) and isinstance(after, list) and len(before) <= len(after):
        ops = []
        for i, value in enumerate(after):
            if i < len(before):
                ops.extend(json_patch(before[i], value, f"{path}/{i}"))
            else:
                ops.append({"op": "add", "path": f"{path}/-", "value": value})
        return ops
    if before == after and type(before) is type(after):
        return []
    return [{"op": "replace", "path": path, "value": after}]


def _escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


class MutatorSet:
    def __init__(self, mutators: Iterable[Mutator] = ()) -> None:
        self.mutators = sorted(mutators, key=lambda m: m.name)

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]]) -> MutatorSet:
        return cls(
            parse_mutator(o)
            for o in objects
            if str(o.get("apiVersion", "")).startswith(MUTATION_GROUP + "/")
        )

    def mutate(
        self, review: Mapping[str, Any], namespace: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """The mutated object, or None when no mutator applies."""
        obj = review.get("object")
        if not isinstance(obj, dict) or not self.mutators:
            return None
        request = dict(review)
        if namespace is not None:
            request["namespaceObject"] = namespace
        group, kind = object_kind(review, obj)
        mutated = copy.deepcopy(obj)
        for m in self.mutators:
            if m.apply_to and not any(
                (not groups or group in groups or "*" in groups)
                and (not kinds or kind in kinds or "*" in kinds)
                for groups, kinds in m.apply_to
            ):
                continue
            try:
                if not matches(m.match, request):
                    continue
            except PolicyError:
                continue
            if not all(_exists(mutated, p) == (cond == "MustExist") for p, cond in m.path_tests):
                continue
            _assign(mutated, m.location, m.value, add_only=m.kind == "AssignMetadata")
        return mutated

    def patch(
        self, review: Mapping[str, Any], namespace: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        mutated = self.mutate(review, namespace)
        if mutated is None:
            return []
        return json_patch(review.get("object"), mutated)
