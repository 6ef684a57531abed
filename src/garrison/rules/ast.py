"""The condition AST: what the parser produces and the compiler consumes. Immutable."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field with its optional argument: ``proc.aname[2]``, ``ka.uri.param[command]``."""

    name: str
    arg: str | None = None

    def __str__(self) -> str:
        return self.name if self.arg is None else f"{self.name}[{self.arg}]"


@dataclass(frozen=True, slots=True)
class Transformed:
    """A field under a transformer: ``tolower(proc.name)``."""

    transformer: str
    field: FieldRef | Transformed

    def __str__(self) -> str:
        return f"{self.transformer}({self.field})"


@dataclass(frozen=True, slots=True)
class ListLiteral:
    """``(a, "b", some_list)``: items may name lists, expanded by the compiler."""

    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FieldValue:
    """``val(field)`` on the right-hand side: compare against another field's value."""

    field: FieldRef | Transformed


Operand = FieldRef | Transformed
Value = str | ListLiteral | FieldValue | None


@dataclass(frozen=True, slots=True)
class Compare:
    left: Operand
    op: str
    value: Value
    position: int = 0
    quantifier: str | None = None  # anyof | allof | oneof, with a string operator and a list


@dataclass(frozen=True, slots=True)
class And:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    terms: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    term: Node


@dataclass(frozen=True, slots=True)
class MacroRef:
    name: str
    position: int = 0


@dataclass(frozen=True, slots=True)
class Constant:
    """Produced only by the compiler's own rewrites (an empty exception list, say)."""

    value: bool


Node = Compare | And | Or | Not | MacroRef | Constant
