"""Output templates: ``"... user=%ka.user.name cmd=%ka.uri.param[command]"``.

A missing value renders as ``<NA>``, a list as ``(a,b)``, both as Falco prints them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from garrison.rules.ast import FieldRef
from garrison.rules.errors import UnknownFieldError
from garrison.rules.fields import EvalContext, FieldTable

_FIELD = re.compile(r"%(\(?)([a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_]+)+)(\[[^\]]*\])?(\)?)")

Renderer = Callable[[EvalContext], str]


def render_value(value: object) -> str:
    if value is None:
        return "<NA>"
    if isinstance(value, list):
        return "(" + ",".join(str(v) for v in value) + ")"
    return str(value)


def compile_output(template: str, table: FieldTable) -> tuple[Renderer, tuple[FieldRef, ...]]:
    """Compile a template once; raises ``UnknownFieldError`` for a field the source lacks."""
    pieces: list[str | tuple[Callable[[EvalContext, str | None], object], str | None]] = []
    refs: list[FieldRef] = []
    last = 0
    for match in _FIELD.finditer(template):
        name = match.group(2)
        definition = table.lookup(name)
        if definition is None:
            raise UnknownFieldError(name, table.source)
        arg = match.group(3)[1:-1] if match.group(3) else None
        pieces.append(template[last : match.start()])
        if match.group(1) and not match.group(4):
            pieces.append("(")
        pieces.append((definition.extract, arg))
        if match.group(4) and not match.group(1):
            pieces.append(")")
        refs.append(FieldRef(name, arg))
        last = match.end()
    pieces.append(template[last:])

    steps = tuple((p, None) if isinstance(p, str) else ("", p) for p in pieces)

    def render(ctx: EvalContext) -> str:
        return "".join(
            [
                literal if field is None else render_value(field[0](ctx, field[1]))
                for literal, field in steps
            ]
        )

    return render, tuple(refs)
