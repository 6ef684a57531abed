"""Rego through one adapter on regorus, with OPA's semantics where regorus differs.

Gatekeeper runs templates in OPA; garrison runs them in regorus (a Rust interpreter, pinned
in ``uv.lock`` with its wheel hashes). Before a v0 module reaches regorus, a source pass
makes it mean what it means in OPA:

- multi-body rules ``head { A } { B }`` become ``head { A }`` and ``head { B }`` (regorus
  reads the second body of a set rule as an ``else``);
- OPA hoists reference arguments out of negation (``not f(a.b)`` is ``t := a.b; not f(t)``,
  so an undefined ``a.b`` makes the whole body fail): the pass hoists them the same way;
- a body line that starts with ``(`` is separated from the previous line (regorus reads
  ``x\\n(y)`` as a call of ``x``);
- the deprecated ``re_match`` builtin (Azure's templates use it) is ``regex.match``.

Results follow Gatekeeper's contract: the ``violation`` partial set of ``{msg, details}``
objects, identical elements counted once; an evaluation error is one violation whose
message is the error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regorus

from garrison.admission.model import ConstraintTemplate, PolicyError

_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_NOT_CALL = re.compile(r"^(?P<indent>\s*)not\s+(?P<fn>[A-Za-z_][\w.]*)\((?P<args>.*)\)\s*$")
_REF_ARG = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*|\[[^\]]*\])+$")
_RE_MATCH = re.compile(r"\bre_match\s*\(")
HOISTED = "__garrison_h"  # the variables negated reference arguments are hoisted into


@dataclass(frozen=True)
class Violation:
    msg: str
    details: Any = None
    error: bool = False  # the policy failed to evaluate; ``msg`` is the error


def _clean_error(exc: BaseException) -> str:
    """regorus's error text without the Rust backtrace it appends."""
    text = str(exc)
    return text.split("\n\nStack backtrace:", 1)[0].strip()


def _outside_strings(line: str) -> Iterator[tuple[int, str]]:
    """The characters of a Rego line that lie outside string literals, with their index."""
    in_string = False
    escaped = False
    for i, ch in enumerate(line):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        else:
            yield i, ch


def _code_and_comment(line: str) -> tuple[str, str]:
    """Split a Rego line at its comment, honouring string literals."""
    for i, ch in _outside_strings(line):
        if ch == "`":
            return line, ""  # raw strings: leave the line alone
        if ch == "#":
            return line[:i], line[i:]
    return line, ""


def _braces(code: str) -> int:
    """How much deeper in braces the line ends than it starts."""
    depth = 0
    for _, ch in _outside_strings(code):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
    return depth


def _split_args(args: str) -> list[str] | None:
    """Top-level comma split of call arguments; None when brackets do not balance."""
    out: list[str] = []
    depth = 0
    current = ""
    in_string = False
    for ch in args:
        if in_string:
            current += ch
            if ch == '"' and not current.endswith('\\"'):
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                return None
        elif ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
            continue
        current += ch
    if depth != 0 or in_string:
        return None
    if current.strip():
        out.append(current.strip())
    return out


def _hoist_negation(line: str, counter: list[int]) -> list[str]:
    code, comment = _code_and_comment(line)
    m = _NOT_CALL.match(code)
    if m is None:
        return [line]
    args = _split_args(m.group("args"))
    if args is None:
        return [line]
    indent = m.group("indent")
    hoisted: list[str] = []
    new_args: list[str] = []
    for arg in args:
        if _REF_ARG.match(arg) and not arg.startswith(("true", "false", "null")):
            counter[0] += 1
            var = f"{HOISTED}{counter[0]}"
            hoisted.append(f"{indent}{var} := {arg}")
            new_args.append(var)
        else:
            new_args.append(arg)
    if not hoisted:
        return [line]
    call = f"{indent}not {m.group('fn')}({', '.join(new_args)}){(' ' + comment) if comment else ''}"
    return [*hoisted, call]


_OPERATOR_END = tuple("{[(,;|&+-*/=<>:")


def rewrite_v0(source: str) -> str:
    """The OPA-semantics pass described in the module docstring (v0 modules only)."""
    lines = source.splitlines()
    out: list[str] = []
    depth = 0
    head = ""
    counter = [0]
    previous_code = ""
    for raw in lines:
        line = _RE_MATCH.sub("regex.match(", raw)
        code, _ = _code_and_comment(line)
        stripped = code.strip()
        if depth == 0 and stripped.endswith("{") and stripped != "{":
            head = stripped[:-1].rstrip()
        if depth == 1 and stripped == "} {" and head:
            indent = code[: len(code) - len(code.lstrip())]
            out.append(f"{indent}}}")
            out.append(f"{indent}{head} {{")
            previous_code = "{"
            continue
        if (
            depth >= 1
            and stripped.startswith("(")
            and previous_code
            and not previous_code.endswith(_OPERATOR_END)
        ):
            line = line.replace("(", ";(", 1)
        if depth >= 1 and stripped.startswith("not "):
            out.extend(_hoist_negation(line, counter))
        else:
            out.append(line)
        depth += _braces(code)
        if stripped:
            previous_code = stripped
    return "\n".join(out) + "\n"


def package_of(source: str) -> str:
    m = _PACKAGE.search(source)
    if m is None:
        raise PolicyError("Rego module has no package declaration")
    return m.group(1)


class RegoProgram:
    """One template's Rego (module + libs) compiled once; evaluated per review.

    An instance is not thread-safe; :meth:`with_inventory` returns a copy that sees a new
    ``data.inventory`` without recompiling.
    """

    def __init__(self, template: ConstraintTemplate) -> None:
        if template.rego is None:
            raise PolicyError(f"ConstraintTemplate {template.name} has no Rego code")
        self.template_name = template.name
        engine = regorus.Engine()
        v0 = not template.rego_v1
        engine.set_rego_v0(v0)
        modules = [template.rego, *template.libs]
        try:
            for i, module in enumerate(modules):
                text = rewrite_v0(module) if v0 else module
                engine.add_policy(f"{template.name}/{i}.rego", text)
        except RuntimeError as exc:
            raise PolicyError(
                f"ConstraintTemplate {template.name}: Rego does not compile: {_clean_error(exc)}"
            ) from None
        self._rule = f"data.{package_of(template.rego)}.violation"
        self._engine = engine

    def ast_json(self) -> str:
        """The compiled modules' syntax tree, as regorus gives it (for the input analysis)."""
        return str(self._engine.get_ast_as_json())

    def with_inventory(self, inventory: Mapping[str, Any]) -> RegoProgram:
        clone = object.__new__(RegoProgram)
        clone.template_name = self.template_name
        clone._rule = self._rule
        clone._engine = self._engine.clone()
        clone._engine.clear_data()
        clone._engine.add_data_json(json.dumps({"inventory": inventory}))
        return clone

    def evaluate(self, review: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[Violation]:
        """The distinct violations for one review; an evaluation error is one violation."""
        return self.evaluate_json(json.dumps(review), json.dumps(parameters))

    def evaluate_json(self, review_json: str, parameters_json: str) -> list[Violation]:
        """As :meth:`evaluate`, with review and parameters already JSON (serialised once)."""
        try:
            self._engine.set_input_json(
                '{"review":' + review_json + ',"parameters":' + parameters_json + "}"
            )
            raw = self._engine.eval_rule_as_json(self._rule)
        except RuntimeError as exc:
            return [Violation(msg=f"{self.template_name}: {_clean_error(exc)}", error=True)]
        return _violations(json.loads(raw), self.template_name)


def _violations(result: Any, template: str) -> list[Violation]:
    if result is None or (isinstance(result, Mapping) and not result):
        return []  # undefined: no violation
    if not isinstance(result, Sequence) or isinstance(result, str):
        return [Violation(msg=f"{template}: violation is not a set", error=True)]
    seen: set[str] = set()
    out: list[Violation] = []
    for item in result:
        if not isinstance(item, Mapping) or not isinstance(item.get("msg"), str):
            out.append(Violation(msg=f"{template}: a violation without a string msg", error=True))
            continue
        key = json.dumps(item, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        out.append(Violation(msg=item["msg"], details=item.get("details")))
    return out
