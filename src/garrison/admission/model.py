"""Gatekeeper's policy objects as typed structs: ConstraintTemplate, Constraint and its match.

Parsed from the YAML a user (or gatekeeper-library) writes; every problem is a
:class:`PolicyError` naming the object and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from garrison.events.errors import GarrisonError

TEMPLATE_GROUP = "templates.gatekeeper.sh"
CONSTRAINT_GROUP = "constraints.gatekeeper.sh"
ADMISSION_TARGET = "admission.k8s.gatekeeper.sh"
ACTIONS = ("deny", "dryrun", "warn", "scoped")
ENFORCEMENT_POINTS = ("validation.gatekeeper.sh", "audit.gatekeeper.sh", "gator.gatekeeper.sh")


class PolicyError(GarrisonError):
    """A template, constraint or review that cannot be used, with what is wrong in it."""


@dataclass(frozen=True)
class CelSource:
    """A ``K8sNativeValidation`` entry of ``code[]``: variables and validations in CEL."""

    variables: tuple[tuple[str, str], ...]
    validations: tuple[Mapping[str, Any], ...]
    match_conditions: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class ConstraintTemplate:
    name: str
    kind: str  # the Constraint kind it defines
    rego: str | None  # the Rego module (legacy ``rego`` wins over ``code[engine=Rego]``)
    libs: tuple[str, ...] = ()
    rego_v1: bool = False  # ``source.version: v1``; anything else is v0, as in Gatekeeper
    cel: CelSource | None = None
    requires_sync: bool = False  # reads data.inventory
    annotations: Mapping[str, str] = field(default_factory=dict)
    legacy_rego: bool = False  # ``targets[].rego``: wins over every ``code[]`` entry
    parameters_schema: Mapping[str, Any] | None = None  # openAPIV3Schema of spec.parameters


@dataclass(frozen=True)
class KindMatch:
    api_groups: tuple[str, ...]
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class LabelSelector:
    match_labels: Mapping[str, str] = field(default_factory=dict)
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # key, operator, values


@dataclass(frozen=True)
class Match:
    kinds: tuple[KindMatch, ...] = ()
    scope: str = "*"
    namespaces: tuple[str, ...] | None = None
    excluded_namespaces: tuple[str, ...] = ()
    label_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    name: str | None = None
    source: str = "All"


@dataclass(frozen=True)
class Constraint:
    kind: str
    name: str
    match: Match
    parameters: Mapping[str, Any]
    enforcement_action: str = "deny"
    # for enforcementAction "scoped": enforcement point → action
    scoped_actions: Mapping[str, str] = field(default_factory=dict)

    def action_at(self, point: str) -> str | None:
        """The action this constraint takes at an enforcement point, or None where it is off."""
        if self.enforcement_action != "scoped":
            return self.enforcement_action
        return self.scoped_actions.get(point, self.scoped_actions.get("*"))


def _name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{obj.get('kind', 'object')} has no metadata.name")
    return name


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of strings")
    return tuple(value)


def parse_template(obj: Any) -> ConstraintTemplate:
    if not isinstance(obj, Mapping) or obj.get("kind") != "ConstraintTemplate":
        raise PolicyError("not a ConstraintTemplate (kind: ConstraintTemplate expected)")
    api = str(obj.get("apiVersion", ""))
    if not api.startswith(TEMPLATE_GROUP + "/"):
        raise PolicyError(f"ConstraintTemplate apiVersion {api!r} is not {TEMPLATE_GROUP}/v1")
    name = _name(obj)
    kind = _get(obj, "spec", "crd", "spec", "names", "kind")
    if not isinstance(kind, str) or not kind:
        raise PolicyError(f"ConstraintTemplate {name}: spec.crd.spec.names.kind is missing")
    targets = _get(obj, "spec", "targets") or []
    target = next(
        (t for t in targets if isinstance(t, Mapping) and t.get("target") == ADMISSION_TARGET),
        None,
    )
    if target is None:
        raise PolicyError(f"ConstraintTemplate {name}: no target {ADMISSION_TARGET}")
    rego: str | None = target.get("rego") if isinstance(target.get("rego"), str) else None
    libs = _strings(target.get("libs"), f"ConstraintTemplate {name}: libs")
    rego_v1 = False
    cel: CelSource | None = None
    for entry in target.get("code") or []:
        engine = entry.get("engine") if isinstance(entry, Mapping) else None
        source = entry.get("source") if isinstance(entry, Mapping) else None
        if not isinstance(source, Mapping):
            raise PolicyError(f"ConstraintTemplate {name}: code[{engine}] has no source")
        if engine == "Rego" and rego is None:
            rego = source.get("rego")
            libs = _strings(source.get("libs"), f"ConstraintTemplate {name}: code libs")
            rego_v1 = source.get("version") == "v1"
        elif engine == "K8sNativeValidation":
            cel = CelSource(
                variables=tuple(
                    (str(v["name"]), str(v["expression"])) for v in source.get("variables") or []
                ),
                validations=tuple(source.get("validations") or []),
                match_conditions=tuple(source.get("matchConditions") or []),
            )
    if rego is None and cel is None:
        raise PolicyError(f"ConstraintTemplate {name}: neither Rego nor CEL code")
    annotations = _get(obj, "metadata", "annotations") or {}
    schema = _get(obj, "spec", "crd", "spec", "validation", "openAPIV3Schema")
    return ConstraintTemplate(
        name=name,
        kind=kind,
        rego=rego,
        libs=libs,
        rego_v1=rego_v1,
        cel=cel,
        requires_sync="metadata.gatekeeper.sh/requires-sync-data" in annotations,
        annotations={str(k): str(v) for k, v in annotations.items()},
        legacy_rego=isinstance(target.get("rego"), str),
        parameters_schema=schema if isinstance(schema, Mapping) else None,
    )


def _selector(value: Any, where: str) -> LabelSelector | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where} must be an object")
    labels = value.get("matchLabels") or {}
    expressions = []
    for expr in value.get("matchExpressions") or []:
        operator = expr.get("operator") if isinstance(expr, Mapping) else None
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PolicyError(f"{where}: operator {operator!r} is not In/NotIn/Exists/DoesNotExist")
        expressions.append(
            (str(expr.get("key", "")), operator, _strings(expr.get("values"), f"{where} values"))
        )
    return LabelSelector({str(k): str(v) for k, v in labels.items()}, tuple(expressions))


def parse_match(value: Any, where: str) -> Match:
    if value is None:
        return Match()
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where} must be an object")
    kinds = tuple(
        KindMatch(
            _strings(k.get("apiGroups"), f"{where}.kinds.apiGroups"),
            _strings(k.get("kinds"), f"{where}.kinds.kinds"),
        )
        for k in value.get("kinds") or []
    )
    namespaces = value.get("namespaces")
    return Match(
        kinds=kinds,
        scope=str(value.get("scope") or "*"),
        namespaces=None if namespaces is None else _strings(namespaces, f"{where}.namespaces"),
        excluded_namespaces=_strings(
            value.get("excludedNamespaces"), f"{where}.excludedNamespaces"
        ),
        label_selector=_selector(value.get("labelSelector"), f"{where}.labelSelector"),
        namespace_selector=_selector(value.get("namespaceSelector"), f"{where}.namespaceSelector"),
        name=value.get("name"),
        source=str(value.get("source") or "All"),
    )


def parse_constraint(obj: Any) -> Constraint:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("kind"), str):
        raise PolicyError("not a Constraint (an object with a kind expected)")
    api = str(obj.get("apiVersion", ""))
    if not api.startswith(CONSTRAINT_GROUP + "/"):
        raise PolicyError(f"Constraint apiVersion {api!r} is not {CONSTRAINT_GROUP}/v1beta1")
    name = _name(obj)
    spec = obj.get("spec") or {}
    where = f"{obj['kind']} {name}"
    action = str(spec.get("enforcementAction") or "deny").lower()
    if action not in ACTIONS:
        raise PolicyError(f"{where}: enforcementAction {action!r} is not one of {ACTIONS}")
    scoped: dict[str, str] = {}
    for item in spec.get("scopedEnforcementActions") or []:
        for point in item.get("enforcementPoints") or []:
            scoped[str(point.get("name"))] = str(item.get("action", "deny")).lower()
    parameters = spec.get("parameters")
    if parameters is None:
        parameters = {}
    return Constraint(
        kind=obj["kind"],
        name=name,
        match=parse_match(spec.get("match"), f"{where}: spec.match"),
        parameters=parameters,
        enforcement_action=action,
        scoped_actions=scoped,
    )
