"""The rules engine: compiles a rule set for one source and evaluates events against it.

Rules are bucketed by the values their conditions require of the source's index fields
(for ``k8s_audit``: verb and resource), so an event is only tested against rules that can
match it. Compiled engines are immutable; per-event state lives in ``EvalContext``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from garrison.events.alert import Mitre, Severity
from garrison.rules.ast import And, Constant, Node, Not
from garrison.rules.codegen import RuleCodegen
from garrison.rules.compiler import CompileError, Compiler
from garrison.rules.condition import parse_condition
from garrison.rules.errors import ConditionSyntaxError, RuleLoadError, RulesError, UnknownFieldError
from garrison.rules.fields import EvalContext, EventSource, FieldTable
from garrison.rules.index import (
    constraints,
    fold_constants,
    resolve_in_lists,
    within_domain,
    without_implied,
)
from garrison.rules.mitre import mitre_from_tags
from garrison.rules.model import RuleDef, RuleSet
from garrison.rules.output import Renderer, compile_output

PRIORITY_SEVERITY = {
    "EMERGENCY": Severity.HIGH,
    "ALERT": Severity.HIGH,
    "CRITICAL": Severity.HIGH,
    "ERROR": Severity.HIGH,
    "WARNING": Severity.MEDIUM,
    "NOTICE": Severity.LOW,
    "INFORMATIONAL": Severity.INFORMATIONAL,
    "DEBUG": Severity.INFORMATIONAL,
}
CANDIDATE_CACHE_LIMIT = 4096
MEMO_LIMIT = 4096  # remembered (memo key -> matching rules) entries, cleared whole when full
HOT_BUCKET_EVENTS = 64  # events of one (verb, resource, stage) before its rules are fused
MAX_FUSED_BUCKETS = 256


def priority_title(priority: str) -> str:
    """Falco prints priorities in title case: ``Warning``, ``Informational``."""
    return priority.title()


@dataclass(frozen=True)
class CompiledRule:
    name: str
    id: str
    source: str
    priority: str
    severity: Severity
    desc: str
    remediation: str
    tags: tuple[str, ...]
    mitre: Mitre
    predicate: Any
    node: Node
    render: Renderer
    fields: frozenset[str]  # of the condition and the output
    constraints: Mapping[str, frozenset[str]]
    never: bool
    file: str
    line: int
    condition_fields: frozenset[str] = frozenset()  # the condition's (and exceptions') alone


class Match:
    """A rule that matched an event; its output is rendered when first asked for."""

    __slots__ = ("_output", "context", "rule")

    def __init__(self, rule: CompiledRule, context: EvalContext) -> None:
        self.rule = rule
        self.context = context
        self._output: str | None = None

    @property
    def output(self) -> str:
        if self._output is None:
            self._output = self.rule.render(self.context)
        return self._output


@dataclass
class BuildReport:
    """What compiling a rule set for one source produced, beside the engine."""

    errors: list[RulesError] = field(default_factory=list)
    warnings: list[RulesError] = field(default_factory=list)
    compiled: int = 0
    disabled: int = 0
    other_source: int = 0
    missing_fields: dict[str, list[str]] = field(default_factory=dict)


def rule_id(rule: RuleDef) -> str:
    if rule.id:
        return rule.id
    slug = "".join(ch.lower() if ch.isalnum() else "_" for ch in rule.name)
    return "falco_" + "_".join(p for p in slug.split("_") if p)


def _severity(rule: RuleDef) -> Severity:
    if rule.severity:
        return Severity.parse(rule.severity)
    return PRIORITY_SEVERITY[rule.priority]


class Engine:
    """Evaluates events of one source against compiled rules."""

    def __init__(
        self,
        table: FieldTable,
        rules: Iterable[CompiledRule],
        codegen: RuleCodegen | None = None,
        *,
        hot_after: int | None = HOT_BUCKET_EVENTS,
    ) -> None:
        self.table = table
        self.rules: tuple[CompiledRule, ...] = tuple(rules)
        self._index_key = table.index_key
        self._candidates: dict[tuple[str, ...], tuple[CompiledRule, ...]] = {}
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self._codegen = codegen
        self.hot_after = hot_after if codegen is not None else None
        self.fused = 0
        # matches reused between events the caller vouches are alike (evaluate's memo_key),
        # unless a rule reads a field in which such events differ
        self.memoizable = not any(rule.condition_fields & table.volatile for rule in self.rules)
        self._memo: dict[tuple[Any, str], tuple[CompiledRule, ...]] = {}
        self.memo_hits = 0

    @classmethod
    def build(
        cls, ruleset: RuleSet, source: EventSource, *, include_disabled: bool = False
    ) -> tuple[Engine, BuildReport]:
        report = BuildReport()
        table = source.table
        compiler = Compiler(table, ruleset.macros, ruleset.lists)
        compiled: list[CompiledRule] = []
        compiler.share(_expanded_conditions(ruleset, source.name, compiler))
        codegen = RuleCodegen(compiler)
        for rule in ruleset.rules.values():
            if rule.source != source.name:
                report.other_source += 1
                continue
            if not rule.enabled and not include_disabled:
                report.disabled += 1
                continue
            try:
                compiled.append(_compile_rule(rule, compiler, codegen, table))
            except UnproducedEventsError as exc:
                report.missing_fields.setdefault("evt.type", []).append(rule.name)
                report.errors.append(RuleLoadError(exc.message, rule.location))
            except UnknownFieldError as exc:
                report.missing_fields.setdefault(exc.field, []).append(rule.name)
                error = RuleLoadError(exc.message, rule.location)
                if rule.skip_if_unknown_filter:
                    report.warnings.append(error)
                else:
                    report.errors.append(error)
            except (CompileError, ConditionSyntaxError, RulesError) as exc:
                report.errors.append(RuleLoadError(exc.message, rule.location))
        report.compiled = len(compiled)
        return cls(table, compiled, codegen), report

    def candidates(self, event: Any) -> tuple[CompiledRule, ...]:
        if self._index_key is None:
            return self.rules
        key = self._index_key(event)
        found = self._candidates.get(key)
        if found is None:
            fields = [names[0] for names in self.table.index_fields]
            found = tuple(
                rule
                for rule in self.rules
                if not rule.never
                and all(
                    name not in rule.constraints or value in rule.constraints[name]
                    for name, value in zip(fields, key, strict=True)
                )
            )
            if len(self._candidates) >= CANDIDATE_CACHE_LIMIT:
                self._candidates.clear()
            self._candidates[key] = found
        return found

    def evaluate(self, event: Any, *, cluster: str = "", memo_key: Any = None) -> list[Match]:
        """The rules ``event`` matches. ``memo_key``: the caller vouches that every event
        given the same key agrees with this one on every field but the source's volatile ones
        (clock, sequence); the matching rules are then worked out once per key."""
        if memo_key is None or not self.memoizable:
            return self._evaluate(event, cluster)
        key = (memo_key, cluster)
        known = self._memo.get(key)
        if known is not None:
            self.memo_hits += 1
            ctx = EvalContext(event)
            if cluster:
                ctx.cache["cluster"] = cluster
            return [Match(rule, ctx) for rule in known]
        found = self._evaluate(event, cluster)
        if len(self._memo) >= MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = tuple(match.rule for match in found)
        return found

    def _evaluate(self, event: Any, cluster: str) -> list[Match]:
        ctx = EvalContext(event)
        if cluster:
            ctx.cache["cluster"] = cluster
        if self.hot_after is None or self._index_key is None:
            return [Match(rule, ctx) for rule in self.candidates(event) if rule.predicate(ctx)]
        bucket = self._bucket(event)
        fused = bucket.fused
        if fused is not None:
            rules = bucket.rules
            return [Match(rules[i], ctx) for i in fused(ctx)]
        bucket.seen += 1
        if bucket.seen >= self.hot_after and self.fused < MAX_FUSED_BUCKETS:
            self._fuse(bucket)
        return [Match(rule, ctx) for rule in bucket.rules if rule.predicate(ctx)]

    def _bucket(self, event: Any) -> _Bucket:
        """The rules that can match ``event``; bounded, cleared whole when full."""
        assert self._index_key is not None
        key = self._index_key(event)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= CANDIDATE_CACHE_LIMIT:
                self._buckets.clear()
                self.fused = 0
            bucket = self._buckets[key] = _Bucket(self.candidates(event))
        return bucket

    def _fuse(self, bucket: _Bucket) -> None:
        """Generate one function for a hot bucket's rules (saves a call per rule per event)."""
        assert self._codegen is not None
        if bucket.rules:
            bucket.fused = self._codegen.bucket_function([rule.node for rule in bucket.rules])
        else:
            bucket.fused = _no_rules
        self.fused += 1

    def profile(self, events: Iterable[Any]) -> dict[str, float]:
        """Seconds spent in each rule's condition over ``events`` (for benchmarks)."""
        spent: dict[str, float] = {rule.name: 0.0 for rule in self.rules}
        clock = time.perf_counter
        for event in events:
            ctx = EvalContext(event)
            for rule in self.candidates(event):
                start = clock()
                rule.predicate(ctx)
                spent[rule.name] += clock() - start
        return spent


class _Bucket:
    __slots__ = ("fused", "rules", "seen")

    def __init__(self, rules: tuple[CompiledRule, ...]) -> None:
        self.rules = rules
        self.seen = 0
        self.fused: Callable[[EvalContext], list[int]] | None = None


def _no_rules(ctx: EvalContext) -> list[int]:
    return []


def _expanded_conditions(ruleset: RuleSet, source: str, compiler: Compiler) -> list[Node]:
    """Every parseable, expandable condition of ``source`` (errors surface when compiling)."""
    out: list[Node] = []
    for rule in ruleset.rules.values():
        if rule.source != source:
            continue
        try:
            out.append(compiler.expand(parse_condition(rule.condition)))
        except (CompileError, ConditionSyntaxError, RulesError):
            continue
    return out


class UnproducedEventsError(RulesError):
    """A rule needs only event types the source never produces."""

    def __init__(self, needed: list[str]) -> None:
        self.needed = needed
        shown = ", ".join(needed) if needed else "?"
        super().__init__(f"the sensor produces none of the event types this rule needs ({shown})")


def _produced_only(node: Node, compiler: Compiler, table: FieldTable) -> Node:
    """``node`` with comparisons on event types the source never produces settled."""
    restricted = fold_constants(
        within_domain(node, compiler, table.index_fields, table.index_domains), compiler
    )
    if isinstance(restricted, Constant) and not restricted.value:
        original = fold_constants(node, compiler)
        if not (isinstance(original, Constant) and not original.value):
            found = constraints(
                resolve_in_lists(node, compiler, table.index_fields), table.index_fields
            )
            needed = sorted(set().union(*found.values())) if found else []
            raise UnproducedEventsError(needed)
    return restricted


def _compile_rule(
    rule: RuleDef, compiler: Compiler, codegen: RuleCodegen, table: FieldTable
) -> CompiledRule:
    try:
        node: Node = parse_condition(rule.condition)
    except ConditionSyntaxError as exc:
        raise CompileError(f"condition: {exc.message}") from None
    node = compiler.expand(node)
    if table.index_domains:
        node = _produced_only(node, compiler, table)
    found = constraints(resolve_in_lists(node, compiler, table.index_fields), table.index_fields)
    exceptions = compiler.exceptions_ast(rule.exceptions)
    used = compiler.fields_of(node)
    node = without_implied(node, found, compiler, table.index_fields)
    if exceptions is not None:
        used |= compiler.fields_of(exceptions)
        node = And((node, Not(exceptions)))
    node = fold_constants(node, compiler)
    never = isinstance(node, Constant) and not node.value
    predicate = codegen.function(node, rule.name)
    render, output_refs = compile_output(rule.output, table)
    condition_fields = frozenset(used)
    used |= {ref.name for ref in output_refs}
    return CompiledRule(
        name=rule.name,
        id=rule_id(rule),
        source=rule.source,
        priority=rule.priority,
        severity=_severity(rule),
        desc=rule.desc,
        remediation=rule.remediation,
        tags=tuple(rule.tags),
        mitre=mitre_from_tags(rule.tags),
        predicate=predicate,
        node=node,
        render=render,
        fields=frozenset(used),
        constraints=found,
        never=never,
        file=rule.location.file,
        line=rule.location.line,
        condition_fields=condition_fields,
    )
