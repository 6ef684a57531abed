"""The rule set as loaded: lists, macros and rules after append/override, before compiling."""

from __future__ import annotations

from dataclasses import dataclass, field

from garrison.rules.errors import Location

PRIORITIES = (
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFORMATIONAL",
    "DEBUG",
)
PRIORITY_ALIASES = {"INFO": "INFORMATIONAL"}


def parse_priority(text: str) -> str | None:
    key = text.strip().upper()
    key = PRIORITY_ALIASES.get(key, key)
    return key if key in PRIORITIES else None


@dataclass
class ListDef:
    name: str
    items: list[str]
    location: Location


@dataclass
class MacroDef:
    name: str
    condition: str
    location: Location


@dataclass
class ExceptionDef:
    """One Falco exception: ``fields``/``comps``/``values`` (single-field form allowed)."""

    name: str
    fields: list[str] | str
    comps: list[str] | str | None
    values: list[object]


@dataclass
class RuleDef:
    name: str
    condition: str
    output: str
    priority: str
    location: Location
    desc: str = ""
    source: str = "syscall"
    enabled: bool = True
    tags: list[str] = field(default_factory=list)
    exceptions: list[ExceptionDef] = field(default_factory=list)
    skip_if_unknown_filter: bool = False
    # garrison extensions (ignored by Falco): stable id, severity, remediation
    id: str = ""
    severity: str = ""
    remediation: str = ""


@dataclass
class RuleSet:
    """Ordered lists, macros and rules; later definitions of a name replace earlier ones."""

    lists: dict[str, ListDef] = field(default_factory=dict)
    macros: dict[str, MacroDef] = field(default_factory=dict)
    rules: dict[str, RuleDef] = field(default_factory=dict)
    required_engine_version: str = ""
    files: list[str] = field(default_factory=list)
