"""A set of templates and constraints, evaluated against a review in one pass.

Each template is compiled once; each constraint is matched against the request (kinds,
namespaces, selectors...) and only matching constraints run their template. Engines: a
template with legacy ``targets[].rego`` runs Rego; otherwise, with engine ``auto`` (the
default), Rego where the template has it and CEL where CEL is its only code — the two
implementations of a library template agree, and the Rego engine is the conformant one of
the two here; ``cel`` prefers CEL as Gatekeeper does; ``rego`` never runs CEL.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from garrison.admission.cel import CelProgram
from garrison.admission.input_reads import Prefix, input_prefixes
from garrison.admission.inventory import Inventory
from garrison.admission.match import RequestFacts, matches
from garrison.admission.model import (
    Constraint,
    ConstraintTemplate,
    PolicyError,
    parse_constraint,
    parse_template,
)
from garrison.admission.rego import RegoProgram, Violation
from garrison.admission.result_cache import (
    DEFAULT_ENTRIES,
    KeyPlan,
    ResultCache,
    ReviewKeys,
    review_prefixes,
)
from garrison.admission.schema import apply_defaults, validate

EngineMode = Literal["auto", "rego", "cel"]
MAX_KEYED_PARAMETERS = 256  # parameter sets whose read analysis a template keeps


@dataclass(frozen=True)
class Result:
    """One violation of one constraint, with what the constraint does about it here."""

    constraint_kind: str
    constraint_name: str
    msg: str
    action: str  # deny | warn | dryrun
    details: Any = None
    error: bool = False  # the template failed to evaluate (Gatekeeper counts it as a violation)


@dataclass
class LoadedTemplate:
    template: ConstraintTemplate
    engine: str
    rego: RegoProgram | None = None
    cel: CelProgram | None = None
    seconds: float = 0.0  # evaluation time spent, for the costliest-template report
    evaluations: int = 0
    # the parts of the review the template can read, per constraint parameters (None: its
    # results are never shared); found from its syntax tree on first use, bounded
    _keys: dict[tuple[str, bool], tuple[Prefix, ...] | None] = field(default_factory=dict)
    _ast: str = ""

    def keyed_by(
        self, parameters_json: str, parameters: Mapping[str, Any], *, outputs: bool = False
    ) -> tuple[Prefix, ...] | None:
        """What the results depend on; with ``outputs``, what whether there is any depends
        on (messages aside)."""
        key = (parameters_json, outputs)
        if key not in self._keys:
            if self.rego is None:
                return None
            if not self._ast:
                self._ast = self.rego.ast_json()
            if len(self._keys) >= MAX_KEYED_PARAMETERS:
                self._keys.clear()
            found = input_prefixes(self._ast, parameters, outputs=outputs)
            self._keys[key] = review_prefixes(found)
        return self._keys[key]


@dataclass
class LoadedConstraint:
    constraint: Constraint
    parameters: Mapping[str, Any]
    obj: Mapping[str, Any]  # the Constraint object (CEL's ``params``)
    parameters_json: str = "{}"
    match_group: int = 0  # constraints with equal ``match`` share one matching per review
    # how its results are shared, and the template that was worked out for
    plan: KeyPlan | None = None
    planned_for: LoadedTemplate | None = None


@dataclass
class PolicySet:
    templates: dict[str, LoadedTemplate] = field(default_factory=dict)  # by constraint kind
    constraints: list[LoadedConstraint] = field(default_factory=list)
    inventory: Inventory = field(default_factory=Inventory)
    engine_mode: EngineMode = "auto"
    cache: ResultCache = field(default_factory=ResultCache)
    _inventory_version: int = -1
    _match_groups: dict[str, int] = field(default_factory=dict)  # by the match's repr

    def add_template(self, obj: Mapping[str, Any]) -> ConstraintTemplate:
        template = parse_template(obj)
        engine = _choose_engine(template, self.engine_mode)
        loaded = LoadedTemplate(template=template, engine=engine)
        if engine == "rego":
            loaded.rego = RegoProgram(template)
        else:
            loaded.cel = CelProgram(template)
        self.templates[template.kind] = loaded
        self._inventory_version = -1
        self.cache.clear()
        return template

    def add_constraint(self, obj: Mapping[str, Any]) -> Constraint:
        constraint = parse_constraint(obj)
        loaded = self.templates.get(constraint.kind)
        if loaded is None:
            raise PolicyError(
                f"{constraint.kind} {constraint.name}: no ConstraintTemplate defines that kind"
            )
        schema = loaded.template.parameters_schema  # the schema of spec.parameters itself
        parameters = apply_defaults(schema, dict(constraint.parameters))
        validate(schema, parameters, f"{constraint.kind} {constraint.name}: parameters")
        self.constraints = [
            c
            for c in self.constraints
            if (c.constraint.kind, c.constraint.name) != (constraint.kind, constraint.name)
        ]
        group = self._match_groups.setdefault(repr(constraint.match), len(self._match_groups))
        self.constraints.append(
            LoadedConstraint(constraint, parameters, obj, json.dumps(parameters), group)
        )
        return constraint

    def add_objects(self, objects: Iterable[Mapping[str, Any]]) -> None:
        """Templates first, then constraints, whatever order the files gave."""
        pending = []
        for obj in objects:
            if obj.get("kind") == "ConstraintTemplate":
                self.add_template(obj)
            else:
                pending.append(obj)
        for obj in pending:
            self.add_constraint(obj)

    def prepare(self) -> None:
        """Work out every constraint's shared-evaluation keys now (the read analysis, the
        generated projection), so the first reviews do not pay for it."""
        for lc in self.constraints:
            self._plan(lc)

    def _plan(self, lc: LoadedConstraint) -> KeyPlan | None:
        loaded = self.templates[lc.constraint.kind]
        if lc.planned_for is not loaded:  # first use, or the template was replaced
            lc.plan = None
            if self.cache.entries > 0 and loaded.rego is not None:  # no cache: no keys
                keyed_by = loaded.keyed_by(lc.parameters_json, lc.parameters)
                if keyed_by is not None:
                    decided_by = loaded.keyed_by(lc.parameters_json, lc.parameters, outputs=True)
                    kind, parameters = lc.constraint.kind, lc.parameters_json
                    lc.plan = self.cache.plan(kind, parameters, keyed_by, decided_by)
            lc.planned_for = loaded
        return lc.plan

    def replace_inventory(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._inventory_version = -1

    def _sync_inventory(self) -> None:
        if self._inventory_version == self.inventory.version:
            return
        tree = self.inventory.tree()
        for loaded in self.templates.values():
            if loaded.rego is not None:
                loaded.rego = loaded.rego.with_inventory(tree)
        self._inventory_version = self.inventory.version
        self.cache.clear()  # referential templates answer differently now

    def review(
        self, request: Mapping[str, Any], point: str = "validation.gatekeeper.sh"
    ) -> list[Result]:
        """Every violation of every matching constraint active at ``point``."""
        self._sync_inventory()
        results: list[Result] = []
        review_json: list[str] = []  # serialised once, on first use
        # constraints of one template with the same parameters see the same review: one run
        memo: dict[tuple[str, str], list[Violation]] = {}
        matched: dict[int, bool] = {}  # by match group
        keys = ReviewKeys(request)
        facts = _Facts(request)
        for lc in self.constraints:
            action = lc.constraint.action_at(point)
            if action is None:
                continue
            applies = matched.get(lc.match_group)
            if applies is None:
                applies = matched[lc.match_group] = _matches_either(
                    lc.constraint, facts, self.inventory
                )
            if not applies:
                continue
            loaded = self.templates[lc.constraint.kind]
            # CEL sees the whole constraint (its name too); Rego only its parameters
            key = (lc.constraint.kind, lc.parameters_json if loaded.rego else lc.constraint.name)
            violations = memo.get(key)
            if violations is None:
                violations = memo[key] = self._evaluate(lc, request, review_json, keys)
            for violation in violations:
                results.append(
                    Result(
                        constraint_kind=lc.constraint.kind,
                        constraint_name=lc.constraint.name,
                        msg=violation.msg,
                        action=action,
                        details=violation.details,
                        error=violation.error,
                    )
                )
        return results

    def _evaluate(
        self,
        lc: LoadedConstraint,
        request: Mapping[str, Any],
        review_json: list[str],
        keys: ReviewKeys,
    ) -> list[Violation]:
        loaded = self.templates[lc.constraint.kind]
        started = time.perf_counter()
        try:
            if loaded.rego is not None:
                plan = self._plan(lc)
                if plan is not None:
                    shared = self.cache.lookup(keys, plan)
                    if shared is not None:
                        return shared
                if not review_json:
                    review_json.append(json.dumps(request))
                violations = loaded.rego.evaluate_json(review_json[0], lc.parameters_json)
                if plan is not None:
                    self.cache.keep(keys, plan, violations)
                return violations
            if loaded.cel is not None:
                return loaded.cel.evaluate(request, lc.obj)
            return []
        finally:
            loaded.seconds += time.perf_counter() - started
            loaded.evaluations += 1

    def kinds(self) -> set[tuple[str, str]]:
        """(apiGroup, kind) pairs the constraints select; ("*", "*") when one selects all."""
        out: set[tuple[str, str]] = set()
        for lc in self.constraints:
            if not lc.constraint.match.kinds:
                out.add(("*", "*"))
            for km in lc.constraint.match.kinds:
                for group in km.api_groups or ("*",):
                    for kind in km.kinds or ("*",):
                        out.add((group, kind))
        return out


def _choose_engine(template: ConstraintTemplate, mode: EngineMode) -> str:
    if template.legacy_rego and template.rego is not None:
        return "rego"
    if mode == "cel" and template.cel is not None:
        return "cel"
    if template.rego is not None:
        return "rego"
    if mode == "rego":
        raise PolicyError(f"ConstraintTemplate {template.name}: no Rego code (CEL only)")
    return "cel"


class _Facts:
    """A request and, worked out once for every constraint, what matching reads of it and of
    its old object (Gatekeeper matches an update on either)."""

    def __init__(self, request: Mapping[str, Any]) -> None:
        self.request = request
        self.new = RequestFacts.of(request)
        old = request.get("oldObject")
        self.old_request: Mapping[str, Any] | None = None
        self.old: RequestFacts | None = None
        if isinstance(old, Mapping) and request.get("object") is not None:
            self.old_request = {**request, "object": old}
            self.old = RequestFacts.of(self.old_request)


def _matches_either(constraint: Constraint, facts: _Facts, inventory: Inventory) -> bool:
    """Gatekeeper matches an update on its new object or its old one."""
    if matches(constraint.match, facts.request, inventory.namespace, facts.new):
        return True
    if facts.old_request is not None:
        return matches(constraint.match, facts.old_request, inventory.namespace, facts.old)
    return False


def load_policy_set(
    objects: Sequence[Mapping[str, Any]],
    engine_mode: EngineMode = "auto",
    inventory: Inventory | None = None,
    cache_entries: int = DEFAULT_ENTRIES,
) -> PolicySet:
    """``cache_entries`` bounds the shared evaluations (0: every review is evaluated)."""
    policy = PolicySet(
        engine_mode=engine_mode,
        inventory=inventory or Inventory(),
        cache=ResultCache(cache_entries),
    )
    policy.add_objects(objects)
    policy.prepare()
    return policy
