"""Reads Falco rules files into a ``RuleSet``, with Falco's append / override / redefine rules.

Problems are collected with file, line and item name rather than raised at the first, so
``garrison rules check`` can show them all; ``load_files(..., strict=True)`` raises instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from garrison.rules.errors import Location, RuleLoadError
from garrison.rules.model import ExceptionDef, ListDef, MacroDef, RuleDef, RuleSet, parse_priority
from garrison.yaml12 import Yaml12Loader

_RULE_KEYS = frozenset(
    {
        "rule",
        "desc",
        "condition",
        "output",
        "priority",
        "enabled",
        "tags",
        "exceptions",
        "source",
        "append",
        "override",
        "capture",
        "capture_duration",
        "warn_evttypes",
        "skip-if-unknown-filter",
        "id",
        "severity",
        "remediation",
    }
)
_OVERRIDABLE = {
    "rule": {
        "append": {"condition", "output", "desc", "tags", "exceptions"},
        "replace": {"condition", "output", "desc", "priority", "tags", "exceptions", "enabled"},
    },
    "macro": {"append": {"condition"}, "replace": {"condition"}},
    "list": {"append": {"items"}, "replace": {"items"}},
}


@dataclass
class LoadResult:
    ruleset: RuleSet
    errors: list[RuleLoadError] = field(default_factory=list)
    warnings: list[RuleLoadError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class _LineLoader(Yaml12Loader):
    """YAML 1.2 core scalars, as Falco's parser reads rules files (see ``garrison.yaml12``)."""


def _item_nodes(text: str, file: str) -> list[tuple[int, Any]]:
    """Parse the document; return (line, python value) for each top-level list item."""
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise RuleLoadError(
                "a rules file must be a YAML list of items",
                Location(file, node.start_mark.line + 1),
            )
        out = []
        for child in node.value:
            value = loader.construct_object(child, deep=True)
            out.append((child.start_mark.line + 1, value))
        return out
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleLoadError(f"YAML parse error: {problem}", Location(file, line)) from None
    finally:
        loader.dispose()


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_bool(value: object, where: Location, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise RuleLoadError(f"'{key}' must be true or false, not {value!r}", where)


class _Collector:
    def __init__(self, ruleset: RuleSet, result: LoadResult) -> None:
        self.ruleset = ruleset
        self.result = result

    def collect(self, text: str, file: str) -> None:
        try:
            items = _item_nodes(text, file)
        except RuleLoadError as exc:
            self.result.errors.append(exc)
            return
        self.ruleset.files.append(file)
        for line, item in items:
            where = Location(file, line)
            try:
                self.item(item, where)
            except RuleLoadError as exc:
                self.result.errors.append(exc)

    def item(self, item: object, where: Location) -> None:
        if not isinstance(item, dict):
            raise RuleLoadError("each item must be a mapping (rule, macro or list)", where)
        if "required_engine_version" in item:
            self.ruleset.required_engine_version = _as_text(item["required_engine_version"])
            return
        if "required_plugin_versions" in item:
            return
        if "rule" in item:
            self.rule(item, Location(where.file, where.line, _as_text(item["rule"])))
        elif "macro" in item:
            self.macro(item, Location(where.file, where.line, _as_text(item["macro"])))
        elif "list" in item:
            self.list_(item, Location(where.file, where.line, _as_text(item["list"])))
        else:
            keys = ", ".join(sorted(map(str, item)))
            raise RuleLoadError(f"unknown item with keys {keys}", where)

    @staticmethod
    def _mode(item: dict[str, Any], kind: str, key: str, where: Location) -> str | None:
        """'append', 'replace' or None (define) for ``key`` of this item."""
        override = item.get("override")
        if override is not None:
            if not isinstance(override, dict):
                raise RuleLoadError("'override' must map keys to append or replace", where)
            for name, how in override.items():
                allowed = _OVERRIDABLE[kind].get(str(how))
                if allowed is None:
                    raise RuleLoadError(f"override of '{name}' must be append or replace", where)
                if name not in allowed:
                    raise RuleLoadError(f"'{name}' cannot be overridden with {how}", where)
                if name not in item:
                    raise RuleLoadError(f"override names '{name}' but the item has none", where)
            if "append" in item:
                raise RuleLoadError("'append' and 'override' cannot be used together", where)
            mode = override.get(key)
            return str(mode) if mode is not None else None
        if item.get("append") is True:
            return "append"
        return None

    def list_(self, item: dict[str, Any], where: Location) -> None:
        name = where.item
        raw = item.get("items")
        if raw is None:
            raw = []
        if not isinstance(raw, list):
            raise RuleLoadError("'items' must be a list", where)
        items = [_as_text(v) for v in raw]
        mode = self._mode(item, "list", "items", where)
        existing = self.ruleset.lists.get(name)
        if mode in ("append", "replace") or item.get("override") is not None:
            if existing is None:
                raise RuleLoadError(f"list '{name}' has no earlier definition to {mode}", where)
            existing.items = existing.items + items if mode == "append" else items
            return
        self.ruleset.lists[name] = ListDef(name, items, where)

    def macro(self, item: dict[str, Any], where: Location) -> None:
        name = where.item
        condition = item.get("condition")
        if not isinstance(condition, str) or not condition.strip():
            raise RuleLoadError("a macro needs a 'condition'", where)
        mode = self._mode(item, "macro", "condition", where)
        existing = self.ruleset.macros.get(name)
        if mode is not None or item.get("override") is not None:
            if existing is None:
                raise RuleLoadError(f"macro '{name}' has no earlier definition to {mode}", where)
            existing.condition = (
                f"{existing.condition} {condition}" if mode == "append" else condition
            )
            return
        self.ruleset.macros[name] = MacroDef(name, condition, where)

    def rule(self, item: dict[str, Any], where: Location) -> None:
        name = where.item
        for key in item:
            if key not in _RULE_KEYS:
                self.result.warnings.append(RuleLoadError(f"unknown key '{key}' ignored", where))
        existing = self.ruleset.rules.get(name)
        appending = item.get("append") is True
        if appending or item.get("override") is not None:
            if existing is None:
                raise RuleLoadError(f"rule '{name}' has no earlier definition to change", where)
            self._change_rule(existing, item, where)
            return
        if existing is not None and set(item) <= {"rule", "enabled"}:
            existing.enabled = _as_bool(item.get("enabled", True), where, "enabled")
            return
        self.ruleset.rules[name] = self._new_rule(item, where)

    def _new_rule(self, item: dict[str, Any], where: Location) -> RuleDef:
        missing = [k for k in ("condition", "output", "priority") if k not in item]
        if missing:
            raise RuleLoadError(f"a rule needs {', '.join(missing)}", where)
        priority = parse_priority(_as_text(item["priority"]))
        if priority is None:
            raise RuleLoadError(f"unknown priority {item['priority']!r}", where)
        return RuleDef(
            name=where.item,
            condition=_as_text(item["condition"]),
            output=" ".join(_as_text(item["output"]).split()),
            priority=priority,
            location=where,
            desc=" ".join(_as_text(item.get("desc", "")).split()),
            source=_as_text(item.get("source", "syscall")),
            enabled=_as_bool(item.get("enabled", True), where, "enabled"),
            tags=[_as_text(t) for t in item.get("tags") or []],
            exceptions=self._exceptions(item.get("exceptions"), where),
            skip_if_unknown_filter=bool(item.get("skip-if-unknown-filter", False)),
            id=_as_text(item.get("id", "")),
            severity=_as_text(item.get("severity", "")),
            remediation=" ".join(_as_text(item.get("remediation", "")).split()),
        )

    def _change_rule(self, rule: RuleDef, item: dict[str, Any], where: Location) -> None:
        keys = [k for k in item if k not in ("rule", "append", "override")]
        for key in keys:
            mode = self._mode(item, "rule", key, where)
            if mode is None:
                mode = "append" if item.get("append") is True else None
            if mode is None:
                raise RuleLoadError(f"'{key}' needs an override mode (append or replace)", where)
            if mode == "append" and key not in _OVERRIDABLE["rule"]["append"]:
                raise RuleLoadError(f"'{key}' cannot be appended", where)
            self._apply(rule, key, item[key], mode, where)

    def _apply(self, rule: RuleDef, key: str, value: Any, mode: str, where: Location) -> None:
        append = mode == "append"
        if key == "condition":
            text = _as_text(value)
            rule.condition = f"{rule.condition} {text}" if append else text
        elif key == "output":
            text = " ".join(_as_text(value).split())
            rule.output = f"{rule.output} {text}" if append else text
        elif key == "desc":
            text = " ".join(_as_text(value).split())
            rule.desc = f"{rule.desc} {text}" if append else text
        elif key == "tags":
            tags = [_as_text(t) for t in value or []]
            rule.tags = rule.tags + tags if append else tags
        elif key == "exceptions":
            new = self._exceptions(value, where)
            rule.exceptions = _merge_exceptions(rule.exceptions, new) if append else new
        elif key == "priority":
            priority = parse_priority(_as_text(value))
            if priority is None:
                raise RuleLoadError(f"unknown priority {value!r}", where)
            rule.priority = priority
        elif key == "enabled":
            rule.enabled = _as_bool(value, where, "enabled")
        else:
            raise RuleLoadError(f"'{key}' cannot be changed", where)

    @staticmethod
    def _exceptions(raw: object, where: Location) -> list[ExceptionDef]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise RuleLoadError("'exceptions' must be a list", where)
        out = []
        for entry in raw:
            if not isinstance(entry, dict) or "name" not in entry:
                raise RuleLoadError("each exception needs a 'name'", where)
            fields = entry.get("fields")
            if fields is None:
                raise RuleLoadError(f"exception '{entry['name']}' needs 'fields'", where)
            if not isinstance(fields, (str, list)):
                raise RuleLoadError(f"exception '{entry['name']}': bad 'fields'", where)
            comps = entry.get("comps")
            values = entry.get("values") or []
            if not isinstance(values, list):
                raise RuleLoadError(f"exception '{entry['name']}': 'values' must be a list", where)
            out.append(ExceptionDef(str(entry["name"]), fields, comps, values))
        return out


def _merge_exceptions(old: list[ExceptionDef], new: list[ExceptionDef]) -> list[ExceptionDef]:
    merged = {e.name: e for e in old}
    for exc in new:
        if exc.name in merged:
            base = merged[exc.name]
            merged[exc.name] = ExceptionDef(
                base.name, base.fields, base.comps, base.values + exc.values
            )
        else:
            merged[exc.name] = exc
    return list(merged.values())


def load_texts(texts: Iterable[tuple[str, str]], ruleset: RuleSet | None = None) -> LoadResult:
    """Load (file name, YAML text) pairs in order into one rule set."""
    result = LoadResult(ruleset or RuleSet())
    collector = _Collector(result.ruleset, result)
    for name, text in texts:
        collector.collect(text, name)
    return result


def load_files(paths: Iterable[str | Path], *, strict: bool = False) -> LoadResult:
    """Load rules files in order; unreadable files become errors with their path."""
    texts: list[tuple[str, str]] = []
    result = LoadResult(RuleSet())
    for path in paths:
        try:
            texts.append((str(path), Path(path).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError) as exc:
            result.errors.append(RuleLoadError(f"cannot read: {exc}", Location(str(path))))
    loaded = load_texts(texts, result.ruleset)
    result.errors.extend(loaded.errors)
    result.warnings.extend(loaded.warnings)
    if strict and result.errors:
        raise result.errors[0]
    return result
