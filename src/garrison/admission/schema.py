"""A Constraint's parameters against its template's openAPIV3Schema: defaults and types.

Defaults are applied the way the API server applies them to a structural schema (a
property's ``default`` fills it in where it is absent, recursively through objects and
array items); types are checked so a constraint with wrong parameters is refused with the
path of the first bad value, as the API server would refuse the object.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from garrison.admission.model import PolicyError

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
}


def apply_defaults(schema: Mapping[str, Any] | None, value: Any) -> Any:
    """A copy of ``value`` with the schema's defaults filled in."""
    if not isinstance(schema, Mapping):
        return value
    value = copy.deepcopy(value)
    _fill(schema, value)
    return value


def _fill(schema: Mapping[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if not isinstance(prop, Mapping):
                continue
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                _fill(prop, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for item in value:
            _fill(schema["items"], item)


def validate(schema: Mapping[str, Any] | None, value: Any, where: str = "parameters") -> None:
    """Raise :class:`PolicyError` naming the first value whose type the schema refuses."""
    if not isinstance(schema, Mapping):
        return
    if schema.get("x-kubernetes-preserve-unknown-fields") and "type" not in schema:
        return
    expected = schema.get("type")
    if isinstance(expected, str) and expected in _TYPES:
        ok = isinstance(value, _TYPES[expected]) and not (
            expected in ("integer", "number") and isinstance(value, bool)
        )
        if value is None and schema.get("nullable"):
            ok = True
        if not ok:
            raise PolicyError(f"{where}: expected {expected}, got {type(value).__name__}")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name, item in value.items():
            if name in props:
                validate(props[name], item, f"{where}.{name}")
            elif isinstance(schema.get("additionalProperties"), Mapping):
                validate(schema["additionalProperties"], item, f"{where}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            validate(schema["items"], item, f"{where}[{i}]")
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        raise PolicyError(f"{where}: {value!r} is not one of {enum}")
