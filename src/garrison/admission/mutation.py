"""Gatekeeper's mutators applied to a review, answered as a JSON Patch.

Mutators apply in alphabetical order of their names, as in Gatekeeper:

- ``AssignMetadata`` only adds labels and annotations (an existing key is never changed).
- ``Assign`` sets any field outside ``metadata`` at a location such as
  ``spec.containers[name:*].securityContext.privileged``: a list segment ``[key: value]``
  selects the items whose key equals the value (``*`` selects every item that has the key;
  a named item that is missing is created); a location ending in a list segment replaces the
  selected item with the value.
- ``ModifySet`` treats the list at its location as a set: ``merge`` (the default) appends the
  values of ``values.fromList`` that are missing, ``prune`` removes them.
- ``AssignImage`` rewrites the domain, path and tag of the image string at its location
  (``assignDomain``, ``assignPath``, ``assignTag`` starting with ``:`` or ``@``).

``Assign`` and ``AssignMetadata`` take ``assign.value`` or ``assign.fromMetadata.field``
(``namespace`` or ``name``). ``pathTests`` (``MustExist`` / ``MustNotExist``) guard a mutator;
its ``match`` (Gatekeeper's match) and ``applyTo`` select the objects. The patch is the
difference between the object before and after.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from garrison.admission.match import matches
from garrison.admission.model import Match, PolicyError, parse_match
from garrison.admission.review import as_map, object_kind

MUTATION_GROUP = "mutations.gatekeeper.sh"
MUTATOR_KINDS = ("Assign", "AssignMetadata", "ModifySet", "AssignImage")
_LIST_SEGMENT = re.compile(r"^(?P<field>[^\[\]]+)\[(?P<key>[^:\]]+):\s*(?P<value>[^\]]+)\]$")


@dataclass(frozen=True)
class Segment:
    field: str
    list_key: str | None = None
    list_value: str | None = None  # "*" for every item that has the key


@dataclass(frozen=True)
class ImageParts:
    domain: str | None = None
    path: str | None = None
    tag: str | None = None  # ":tag" or "@sha256:..."


@dataclass(frozen=True)
class Mutator:
    kind: str  # one of MUTATOR_KINDS
    name: str
    location: tuple[Segment, ...]
    value: Any
    match: Match
    apply_to: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()  # (groups, kinds)
    path_tests: tuple[tuple[tuple[Segment, ...], str], ...] = ()
    from_metadata: str | None = None  # Assign/AssignMetadata: "namespace" | "name"
    operation: str = "merge"  # ModifySet: merge | prune (value is the list of values)
    image: ImageParts = ImageParts()


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
    if kind not in MUTATOR_KINDS or not isinstance(name, str):
        raise PolicyError(f"{kind} is not a supported mutator ({', '.join(MUTATOR_KINDS)})")
    kind = str(kind)
    where = f"{kind} {name}"
    spec = as_map(obj.get("spec"))
    parameters = as_map(spec.get("parameters"))
    location = parse_location(str(spec.get("location", "")))
    if kind == "AssignMetadata":
        if (
            len(location) != 3
            or location[0].field != "metadata"
            or location[1].field not in ("labels", "annotations")
        ):
            raise PolicyError(f"{where}: location must be metadata.labels.<k> or annotations.<k>")
    elif location[0].field == "metadata":
        raise PolicyError(f"{where}: {kind} cannot change metadata (use AssignMetadata)")
    if kind in ("ModifySet", "AssignImage") and location[-1].list_key is not None:
        raise PolicyError(f"{where}: location must end in a field, not a list item")
    fields: dict[str, Any] = {}
    if kind in ("Assign", "AssignMetadata"):
        fields.update(_assign_value(where, kind, as_map(parameters.get("assign"))))
        last = location[-1]
        if last.list_key is not None and not (
            last.list_value != "*"
            and isinstance(fields["value"], Mapping)
            and str(fields["value"].get(last.list_key)) == last.list_value
        ):
            raise PolicyError(
                f"{where}: a location ending in [{last.list_key}: {last.list_value}] needs a "
                f"value that is an object with {last.list_key}: {last.list_value} (no glob)"
            )
    elif kind == "ModifySet":
        operation = parameters.get("operation", "merge")
        if operation not in ("merge", "prune"):
            raise PolicyError(f"{where}: operation must be merge or prune, not {operation!r}")
        values = as_map(parameters.get("values")).get("fromList")
        if not isinstance(values, list):
            raise PolicyError(f"{where}: parameters.values.fromList must be a list")
        fields.update(value=values, operation=operation)
    else:
        fields.update(value=None, image=_image_parts(where, parameters))
    apply_to = tuple(
        (tuple(a.get("groups") or ()), tuple(a.get("kinds") or ()))
        for a in spec.get("applyTo") or []
        if isinstance(a, Mapping)
    )
    if kind != "AssignMetadata" and not apply_to:
        raise PolicyError(f"{where}: applyTo is required")
    tests = tuple(
        (parse_location(str(t.get("subPath", ""))), str(t.get("condition", "MustExist")))
        for t in parameters.get("pathTests") or []
        if isinstance(t, Mapping)
    )
    return Mutator(
        kind=kind,
        name=name,
        location=location,
        match=parse_match(spec.get("match"), f"{where}: spec.match"),
        apply_to=apply_to,
        path_tests=tests,
        **fields,
    )


def _assign_value(where: str, kind: str, assign: Mapping[str, Any]) -> dict[str, Any]:
    from_metadata = as_map(assign.get("fromMetadata")).get("field")
    if from_metadata is not None:
        if from_metadata not in ("namespace", "name"):
            raise PolicyError(f"{where}: fromMetadata.field must be namespace or name")
        return {"value": None, "from_metadata": from_metadata}
    if "value" not in assign:
        raise PolicyError(f"{where}: parameters.assign.value (or fromMetadata) is required")
    if kind == "AssignMetadata" and not isinstance(assign["value"], str):
        raise PolicyError(f"{where}: label and annotation values must be strings")
    return {"value": assign["value"]}


def _image_parts(where: str, parameters: Mapping[str, Any]) -> ImageParts:
    domain, path, tag = (parameters.get(k) for k in ("assignDomain", "assignPath", "assignTag"))
    if domain is None and path is None and tag is None:
        raise PolicyError(f"{where}: one of assignDomain, assignPath, assignTag is required")
    for label, part in (("assignDomain", domain), ("assignPath", path), ("assignTag", tag)):
        if part is not None and (not isinstance(part, str) or not part):
            raise PolicyError(f"{where}: {label} must be a non-empty string")
    if tag is not None and not str(tag).startswith((":", "@")):
        raise PolicyError(f"{where}: assignTag must start with ':' or '@'")
    if domain is not None and "/" in str(domain):
        raise PolicyError(f"{where}: assignDomain cannot contain '/'")
    if path is not None and domain is None and _looks_like_domain(str(path).split("/", 1)[0]):
        raise PolicyError(f"{where}: assignPath {path!r} reads as a domain; set assignDomain too")
    return ImageParts(domain, path, tag)


def _looks_like_domain(component: str) -> bool:
    """Docker's rule: a first component with a dot or a port, or localhost, is a registry."""
    return "." in component or ":" in component or component == "localhost"


def split_image(image: str) -> ImageParts:
    """``registry:5000/repo/app:tag`` -> domain, path and tag (``:tag`` or ``@digest``)."""
    rest, tag = image, ""
    at = rest.find("@")
    if at >= 0:
        rest, tag = rest[:at], rest[at:]
    else:
        colon = rest.rfind(":")
        if colon > rest.rfind("/"):
            rest, tag = rest[:colon], rest[colon:]
    first, _, remainder = rest.partition("/")
    if remainder and _looks_like_domain(first):
        return ImageParts(first, remainder, tag)
    return ImageParts("", rest, tag)


def assign_image(image: str, parts: ImageParts) -> str:
    current = split_image(image)
    domain = current.domain if parts.domain is None else parts.domain
    path = current.path if parts.path is None else parts.path
    tag = current.tag if parts.tag is None else parts.tag
    return (f"{domain}/" if domain else "") + (path or "") + (tag or "")


def _selected(items: list[Any], seg: Segment) -> list[dict[str, Any]]:
    return [
        i
        for i in items
        if isinstance(i, dict)
        and seg.list_key in i
        and (seg.list_value == "*" or str(i[seg.list_key]) == seg.list_value)
    ]


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
                nxt.extend(_selected(child, seg))
        current = nxt
    return bool(current)


Leaf = Callable[[dict[str, Any], str], None]  # changes parent[field]


def _walk(node: Any, path: tuple[Segment, ...], leaf: Leaf, create: bool) -> None:
    """Call ``leaf(parent, field)`` for every place ``path`` selects; with ``create``,
    missing maps and named list items on the way are made, as Gatekeeper's Assign does."""
    if not isinstance(node, dict):
        return
    seg, rest = path[0], path[1:]
    if seg.list_key is None:
        if not rest:
            leaf(node, seg.field)
            return
        if not isinstance(node.get(seg.field), dict):
            if not create or (seg.field in node and node[seg.field] is not None):
                return  # a scalar where a map is needed: leave it, as Gatekeeper does
            node[seg.field] = {}
        _walk(node[seg.field], rest, leaf, create)
        return
    if seg.field not in node and not create:
        return
    items = node.setdefault(seg.field, [])
    if not isinstance(items, list):
        return
    selected = _selected(items, seg)
    if not selected and seg.list_value != "*" and create:
        created = {seg.list_key: seg.list_value}
        items.append(created)
        selected = [created]
    for item in selected:
        if rest:
            _walk(item, rest, leaf, create)
        else:  # the location names the item itself: it becomes the value
            index = next(i for i, x in enumerate(items) if x is item)
            holder = {"item": item}
            leaf(holder, "item")
            items[index] = holder["item"]


def _leaf(m: Mutator, value: Any) -> Leaf:
    if m.kind == "ModifySet":

        def modify(parent: dict[str, Any], field: str) -> None:
            current = parent.get(field)
            if current is None and m.operation == "merge":
                current = parent[field] = []
            if not isinstance(current, list):
                return
            if m.operation == "prune":
                parent[field] = [x for x in current if x not in value]
            else:
                current.extend(copy.deepcopy(v) for v in value if v not in current)

        return modify
    if m.kind == "AssignImage":

        def image(parent: dict[str, Any], field: str) -> None:
            if isinstance(parent.get(field), str):
                parent[field] = assign_image(parent[field], m.image)

        return image
    add_only = m.kind == "AssignMetadata"

    def assign(parent: dict[str, Any], field: str) -> None:
        if not (add_only and field in parent):
            parent[field] = copy.deepcopy(value)

    return assign


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
            value = m.value
            if m.from_metadata is not None:
                meta = as_map(mutated.get("metadata"))
                value = meta.get(m.from_metadata)
                if m.from_metadata == "namespace" and not value:
                    value = review.get("namespace")
                if not isinstance(value, str) or not value:
                    continue  # nothing to copy (a cluster-scoped object has no namespace)
            create = m.kind in ("Assign", "AssignMetadata") or (
                m.kind == "ModifySet" and m.operation == "merge"
            )
            _walk(mutated, m.location, _leaf(m, value), create)
        return mutated

    def patch(
        self, review: Mapping[str, Any], namespace: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        mutated = self.mutate(review, namespace)
        if mutated is None:
            return []
        return json_patch(review.get("object"), mutated)
