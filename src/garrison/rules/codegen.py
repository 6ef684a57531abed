"""Compiles a whole rule condition into one Python function.

Comparisons on simple fields become inline expressions over the event's attributes
(``ev.verb == _c0``); everything else calls the compiled closure of that comparison
(``_p3(ctx)``). The generated source contains only identifiers garrison makes and operator
templates of the field tables: every value taken from a rules file reaches the function
as a bound constant in its namespace, never as source text, so a rules file cannot inject
code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from garrison.rules.ast import (
    And,
    Compare,
    Constant,
    FieldRef,
    ListLiteral,
    MacroRef,
    Node,
    Not,
    Or,
)
from garrison.rules.compiler import Compiler, Predicate
from garrison.rules.fields import EvalContext, FieldDef

_BUILTINS = {"str": str, "int": int, "isinstance": isinstance, "len": len}
_INLINE_OPS = frozenset(
    {"=", "==", "!=", "in", "intersects", "startswith", "endswith", "contains", "exists"}
)


class RuleCodegen:
    """Builds rule functions for one compiler; shares its memoized comparison closures."""

    def __init__(self, compiler: Compiler, *, inline: bool = True) -> None:
        self.compiler = compiler
        self.inline = inline  # False: every comparison through its closure (a reference mode)
        self.generated = 0

    def function(self, node: Node, name: str = "rule") -> Predicate:
        namespace: dict[str, Any] = {"__builtins__": _BUILTINS}
        state = _State(namespace)
        body = self._emit(node, state)
        source = f"def _rule(ctx):\n    ev = ctx.event\n    return {body}\n"
        code = compile(source, f"<rule {name[:60]!r}>", "exec")
        exec(code, namespace)  # noqa: S102 - source is built from garrison's own templates only
        self.generated += 1
        function: Predicate = namespace["_rule"]
        return function

    def bucket_function(self, nodes: list[Node]) -> Callable[[EvalContext], list[int]]:
        """One function testing several rules' conditions; returns the indices that hold."""
        namespace: dict[str, Any] = {"__builtins__": _BUILTINS}
        state = _State(namespace)
        lines = ["def _bucket(ctx):", "    ev = ctx.event", "    hits = []"]
        for index, node in enumerate(nodes):
            lines.append(f"    if {self._emit(node, state)}:")
            lines.append(f"        hits.append({index})")
        lines.append("    return hits")
        code = compile("\n".join(lines) + "\n", "<rule bucket>", "exec")
        exec(code, namespace)  # noqa: S102 - source is built from garrison's own templates only
        self.generated += 1
        function: Callable[[EvalContext], list[int]] = namespace["_bucket"]
        return function

    def _emit(self, node: Node, state: _State) -> str:
        if isinstance(node, Constant):
            return "True" if node.value else "False"
        if isinstance(node, And):
            return "(" + " and ".join(self._emit(t, state) for t in node.terms) + ")"
        if isinstance(node, Or):
            return "(" + " or ".join(self._emit(t, state) for t in node.terms) + ")"
        if isinstance(node, Not):
            return f"(not {self._emit(node.term, state)})"
        if isinstance(node, MacroRef):
            return self._emit(self.compiler.expand(node), state)
        inline = self._inline(node, state) if self.inline else None
        if inline is not None:
            return inline
        return f"{state.bind('p', self.compiler.memoized_compare(node))}(ctx)"

    def _inline(self, node: Compare, state: _State) -> str | None:
        left = node.left
        if (
            not isinstance(left, FieldRef)
            or node.quantifier is not None
            or node.op not in _INLINE_OPS
        ):
            return None
        definition = self.compiler.field_def(left)
        if definition.is_list:
            return None
        template = _template(definition, left.arg)
        temp = state.temp()
        if template is not None:
            value = template.format(t=temp + "r")
        else:
            extract = state.bind("f", definition.extract)
            value = f"{extract}(ctx, {state.bind('a', left.arg)})"
        op = node.op
        if definition.type == "number":
            return self._numeric(node, value, temp, state)
        if definition.type != "string":
            return None
        if op == "exists":
            return f"({value} is not None)"
        if op in ("in", "intersects"):
            if not isinstance(node.value, ListLiteral):
                return None
            members = state.bind("c", frozenset(self.compiler.list_values(node.value)))
            return f"({value} in {members})"
        if not isinstance(node.value, str):
            return None
        expected = state.bind("c", node.value)
        if op in ("=", "=="):
            return f"({value} == {expected})"
        if op == "!=":
            return f"(({temp} := {value}) is not None and {temp} != {expected})"
        if op == "contains":
            return f"(isinstance({temp} := {value}, str) and {expected} in {temp})"
        method = "startswith" if op == "startswith" else "endswith"
        return f"(isinstance({temp} := {value}, str) and {temp}.{method}({expected}))"

    def _numeric(self, node: Compare, value: str, temp: str, state: _State) -> str | None:
        symbols = {"=": "==", "==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        symbol = symbols.get(node.op)
        if node.op == "exists":
            return f"({value} is not None)"
        if symbol is None or not isinstance(node.value, str):
            return None
        try:
            number = int(node.value, 0)
        except ValueError:
            return None
        expected = state.bind("c", number)
        return f"(isinstance({temp} := {value}, int) and {temp} {symbol} {expected})"


def _template(definition: FieldDef, arg: str | None) -> str | None:
    if arg is None:
        return definition.inline
    return definition.inline_args.get(arg)


class _State:
    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self.counter = 0

    def bind(self, prefix: str, value: object) -> str:
        name = f"_{prefix}{self.counter}"
        self.counter += 1
        self.namespace[name] = value
        return name

    def temp(self) -> str:
        self.counter += 1
        return f"_t{self.counter}"
