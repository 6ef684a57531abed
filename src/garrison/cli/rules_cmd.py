"""``garrison rules check FILE...``: load and compile rules files, report every problem."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from garrison.rules.engine import Engine
from garrison.rules.errors import RuleLoadError, RulesError
from garrison.rules.loader import load_files
from garrison.rules.sources import default_sources


def register(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="check rules files")
    sub = parser.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="load and compile rules files (Falco format)")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(run=check_files)


def check_files(args: argparse.Namespace) -> int:
    loaded = load_files(args.files)
    errors: list[RulesError] = list(loaded.errors)
    warnings: list[RulesError] = list(loaded.warnings)
    sources = default_sources()
    compiled = 0
    by_source: dict[str, int] = {}
    for rule in loaded.ruleset.rules.values():
        by_source[rule.source] = by_source.get(rule.source, 0) + 1
    for source_name in sorted(by_source):
        source = sources.get(source_name)
        if source is None:
            supported = ", ".join(sorted(sources))
            for rule in loaded.ruleset.rules.values():
                if rule.source == source_name:
                    errors.append(
                        _located(rule, f"source '{source_name}' is not supported ({supported})")
                    )
            continue
        _, report = Engine.build(loaded.ruleset, source, include_disabled=True)
        compiled += report.compiled
        errors.extend(report.errors)
        warnings.extend(report.warnings)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    ruleset = loaded.ruleset
    sources_text = ", ".join(f"{n} {s}" for s, n in sorted(by_source.items())) or "none"
    print(
        f"{len(ruleset.rules)} rules ({sources_text}), {len(ruleset.macros)} macros, "
        f"{len(ruleset.lists)} lists loaded; {compiled} rules compiled; "
        f"{len(errors)} errors, {len(warnings)} warnings"
    )
    return 1 if errors else 0


def _located(rule: Any, message: str) -> RuleLoadError:
    return RuleLoadError(message, rule.location)
