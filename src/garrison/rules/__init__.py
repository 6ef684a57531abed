"""One rules language (Falco-compatible) for every event source."""

from garrison.rules.engine import BuildReport, CompiledRule, Engine, Match
from garrison.rules.errors import ConditionSyntaxError, RuleLoadError, RulesError
from garrison.rules.loader import LoadResult, load_files, load_texts
from garrison.rules.model import RuleSet
from garrison.rules.sources import default_sources

__all__ = [
    "BuildReport",
    "CompiledRule",
    "ConditionSyntaxError",
    "Engine",
    "LoadResult",
    "Match",
    "RuleLoadError",
    "RuleSet",
    "RulesError",
    "default_sources",
    "load_files",
    "load_texts",
]
