"""Field tables: what each event source offers to conditions and output templates.

An extractor takes the evaluation context and the field argument and returns the value,
or ``None`` when the field is not available on this event (every comparison on it is then
false, as in Falco). List fields return a list of strings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

FieldType = Literal["string", "number", "bool", "ip"]
FieldValueT = str | int | list[str] | None
Extractor = Callable[["EvalContext", str | None], FieldValueT]
ArgMode = Literal["none", "optional", "required"]


class EvalContext:
    """Per-event state for one evaluation: the event and a memo of costly extractions."""

    __slots__ = ("cache", "event", "memo")

    def __init__(self, event: Any) -> None:
        self.event = event
        self.cache: dict[Any, Any] = {}
        self.memo: dict[int, bool] = {}


@dataclass(frozen=True, slots=True)
class FieldDef:
    name: str
    extract: Extractor
    type: FieldType = "string"
    is_list: bool = False
    arg: ArgMode = "none"
    desc: str = ""
    # optional Python expression over ``ev`` (the event) giving exactly what ``extract``
    # gives, for the rule code generator; ``{t}`` is a free temporary name
    inline: str | None = None
    inline_args: Mapping[str, str] = field(default_factory=dict)
    # a list field whose comparisons hold when any element satisfies them, ``in`` included
    # (Falco's proc.aname without an index: "some ancestor is ...")
    any_element: bool = False
    # False: a field Falco has that this source does not carry. Output templates print it
    # as <NA>; a condition on it is refused with the field's name, never silently false.
    carried: bool = True


@dataclass(frozen=True)
class FieldTable:
    """All fields of one source, plus the fields the engine may index rules by."""

    source: str
    fields: Mapping[str, FieldDef]
    # each dimension lists the field spellings that read it: ("ka.stage", "jevt.value[/stage]")
    index_fields: tuple[tuple[str, ...], ...] = ()
    index_key: Callable[[Any], tuple[str, ...]] | None = None
    # every value an index dimension can take for this source's events, where known
    index_domains: Mapping[str, frozenset[str]] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    # fields that differ between events agreeing on all else (clocks, sequence numbers): an
    # engine whose rules read one never reuses matches between such events
    volatile: frozenset[str] = frozenset()

    def lookup(self, name: str) -> FieldDef | None:
        return self.fields.get(self.aliases.get(name, name))


class EventSource(Protocol):
    """A source the engine can evaluate: its name and field table."""

    @property
    def name(self) -> str: ...

    @property
    def table(self) -> FieldTable: ...
