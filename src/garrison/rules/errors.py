"""Errors of the rules package. Each carries where it happened: file, line and item name."""

from __future__ import annotations

from dataclasses import dataclass

from garrison.events.errors import GarrisonError


@dataclass(frozen=True, slots=True)
class Location:
    file: str = ""
    line: int = 0
    item: str = ""

    def __str__(self) -> str:
        where = self.file or "<rules>"
        if self.line:
            where += f":{self.line}"
        if self.item:
            where += f" ({self.item})"
        return where


class RulesError(GarrisonError):
    """Base of every rules error; ``location`` says where."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location or Location()
        super().__init__(f"{self.location}: {message}" if location else message)


class ConditionSyntaxError(RulesError):
    """A condition that does not parse; ``position`` is the character offset."""

    def __init__(self, message: str, text: str, position: int) -> None:
        self.text = text
        self.position = position
        super().__init__(f"{message} at column {position + 1} in {text.strip()[:120]!r}")


class RuleLoadError(RulesError):
    """A rules file, or one item in it, that cannot be loaded or compiled."""


class UnknownFieldError(RulesError):
    """A condition names a field that the rule's source does not provide."""

    def __init__(self, field: str, source: str, *, known: bool = False) -> None:
        self.field = field
        self.source = source
        if known:
            message = f"field '{field}' is not carried by garrison's '{source}' events"
        else:
            message = f"field '{field}' is not provided by source '{source}'"
        super().__init__(message)
