"""CEL (``K8sNativeValidation``) templates with Gatekeeper's variables.

The environment is Gatekeeper's k8scel driver's: ``object``, ``oldObject``, ``request``,
``namespaceObject``, ``params`` (the whole Constraint) and ``variables``, where
``variables.params`` is the Constraint's ``spec.parameters`` and ``variables.anyObject``
is ``oldObject`` on a DELETE without an object; the template's own variables follow in
order, each able to read those before it. A validation that is not ``true`` is a
violation with its ``message`` or ``messageExpression``; an error is a violation whose
message is the error, as in Gatekeeper.

The engine is the Rust-backed ``common-expression-language`` package; the Kubernetes string
extensions the library uses (``join``, ``lowerAscii``, ``upperAscii``, ``replace``, ``split``,
``trim``, ``indexOf``) are added as functions. As in cel-go, absent parameters read as an
empty map rather than ``null``, so ``has(variables.params.x)`` is false instead of an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import cel

from garrison.admission.model import CelSource, ConstraintTemplate, PolicyError
from garrison.admission.rego import Violation


def _join(items: list[Any], separator: str = "") -> str:
    return separator.join(str(i) for i in items)


def _replace(text: str, old: str, new: str, count: int = -1) -> str:
    return text.replace(old, new, count)


def _split(text: str, separator: str, limit: int = -1) -> list[str]:
    return text.split(separator, limit - 1 if limit > 0 else -1)


def _index_of(text: str, sub: str, start: int = 0) -> int:
    return text.find(sub, start)


EXTENSIONS: dict[str, Callable[..., Any]] = {
    "join": _join,
    "lowerAscii": lambda s: s.lower(),
    "upperAscii": lambda s: s.upper(),
    "replace": _replace,
    "split": _split,
    "trim": lambda s: s.strip(),
    "indexOf": _index_of,
}


def _compile(expression: str, where: str) -> Any:
    try:
        return cel.compile(expression)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise PolicyError(f"{where}: CEL does not compile: {exc}") from None


class CelProgram:
    """One template's CEL source compiled once; evaluated per review."""

    def __init__(self, template: ConstraintTemplate) -> None:
        if template.cel is None:
            raise PolicyError(f"ConstraintTemplate {template.name} has no CEL code")
        self.template_name = template.name
        source: CelSource = template.cel
        where = f"ConstraintTemplate {template.name}"
        self._match = [
            (str(c.get("name", "")), _compile(str(c.get("expression", "")), where))
            for c in source.match_conditions
        ]
        self._variables = [(name, _compile(expr, where)) for name, expr in source.variables]
        self._validations: list[tuple[Any, str | None, Any]] = []
        for v in source.validations:
            if "expression" not in v:
                raise PolicyError(f"{where}: a validation without an expression")
            message_expr = v.get("messageExpression")
            self._validations.append(
                (
                    _compile(str(v["expression"]), where),
                    str(v["message"]) if v.get("message") is not None else None,
                    _compile(str(message_expr), where) if message_expr else None,
                )
            )

    def evaluate(
        self, review: Mapping[str, Any], constraint_object: Mapping[str, Any]
    ) -> list[Violation]:
        obj = review.get("object")
        old = review.get("oldObject")
        any_object = old if review.get("operation") == "DELETE" and obj is None else obj
        spec = constraint_object.get("spec")
        params = spec.get("parameters") if isinstance(spec, Mapping) else None
        variables: dict[str, Any] = {
            "params": params if params is not None else {},
            "anyObject": any_object,
        }
        request = {k: v for k, v in review.items() if k not in ("object", "oldObject")}
        context = cel.Context(
            variables={
                "object": obj,
                "oldObject": old,
                "request": request,
                "namespaceObject": review.get("namespaceObject"),
                "params": constraint_object,
                "variables": variables,
            },
            functions=EXTENSIONS,
        )
        try:
            for _, condition in self._match:
                if condition.execute(context) is not True:
                    return []
            for name, program in self._variables:
                try:
                    variables[name] = program.execute(context)
                except (RuntimeError, TypeError, ValueError, KeyError):
                    continue  # an unusable variable errors only where it is read
                context.add_variable("variables", variables)
        except (RuntimeError, TypeError, ValueError, KeyError) as exc:
            return [Violation(msg=f"{self.template_name}: CEL error: {exc}", error=True)]
        out: list[Violation] = []
        for program, message, message_expr in self._validations:
            try:
                passed = program.execute(context)
            except (RuntimeError, TypeError, ValueError, KeyError) as exc:
                out.append(Violation(msg=f"{self.template_name}: CEL error: {exc}", error=True))
                continue
            if passed is True:
                continue
            text = message or f"failed expression: {program.source}"
            if message_expr is not None:
                try:
                    rendered = message_expr.execute(context)
                    if isinstance(rendered, str) and rendered:
                        text = rendered
                except (RuntimeError, TypeError, ValueError, KeyError):
                    pass
            out.append(Violation(msg=text))
        return out
