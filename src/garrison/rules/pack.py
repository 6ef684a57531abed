"""Building the engine of one source from a rule pack and the user's files, all-or-nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from garrison.rules.engine import BuildReport, Engine
from garrison.rules.errors import RulesError
from garrison.rules.loader import load_files
from garrison.rules.sources import default_sources


class RulesLoadFailed(RulesError):
    """The rule files given to an analyzer have errors; ``errors`` lists them all."""

    def __init__(self, errors: Sequence[RulesError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors[:5]))


def build_source_engine(files: Sequence[Path], source: str) -> tuple[Engine, BuildReport]:
    """The engine for ``source`` over ``files`` (loaded in order); raises on any error."""
    loaded = load_files(list(files))
    engine, report = Engine.build(loaded.ruleset, default_sources()[source])
    errors: list[RulesError] = [*loaded.errors, *report.errors]
    if errors:
        raise RulesLoadFailed(errors)
    return engine, report
