"""Binary-drift policy, as Defender has it: ordered rules, first match wins.

A policy file (YAML)::

    rules:
      - name: Block drift in production
        action: block            # alert | ignore | block
        scope:                   # every condition must hold; none = every container
          - {field: namespace, op: starts_with, value: prod-}
          - {field: "label:app", op: equals, value: payments}
        allow: [/usr/local/bin/healthcheck]   # executables exempt from this rule
      - name: Default binary drift
        action: alert

Fields: cluster, namespace, pod, container (name), image, ``label:<key>``. Operators:
equals, starts_with, ends_with, contains. A container no rule matches gets ``alert``.
The file is read again when it changes (``reload_if_changed``), without a restart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

import msgspec
import yaml

from garrison.events.errors import GarrisonError


class Action(enum.StrEnum):
    ALERT = "alert"
    IGNORE = "ignore"
    BLOCK = "block"


OPERATORS = ("equals", "starts_with", "ends_with", "contains")
FIELDS = ("cluster", "namespace", "pod", "container", "image")


class Condition(msgspec.Struct, forbid_unknown_fields=True):
    field: str
    op: str
    value: str

    def holds(self, scope: Scope) -> bool:
        actual = scope.value(self.field)
        if self.op == "equals":
            return actual == self.value
        if self.op == "starts_with":
            return actual.startswith(self.value)
        if self.op == "ends_with":
            return actual.endswith(self.value)
        return self.value in actual


class DriftRule(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    action: Action = Action.ALERT
    scope: list[Condition] = msgspec.field(default_factory=list)
    allow: list[str] = msgspec.field(default_factory=list)

    def applies(self, scope: Scope) -> bool:
        return all(condition.holds(scope) for condition in self.scope)


class PolicyDocument(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[DriftRule] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class Scope:
    """What a drift rule's scope can test about a container."""

    cluster: str = ""
    namespace: str = ""
    pod: str = ""
    container: str = ""
    image: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    def value(self, field: str) -> str:
        if field.startswith("label:"):
            return dict(self.labels).get(field[6:], "")
        return str(getattr(self, field))


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str  # the policy rule that decided; "" for the built-in default


class DriftPolicyError(GarrisonError):
    pass


def parse_policy(text: str, origin: str = "drift policy") -> list[DriftRule]:
    try:
        raw = yaml.safe_load(text) or {}
        document = msgspec.convert(raw, PolicyDocument)
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise DriftPolicyError(f"{origin}: {exc}") from None
    for rule in document.rules:
        for condition in rule.scope:
            if condition.op not in OPERATORS:
                raise DriftPolicyError(
                    f"{origin}: rule {rule.name!r}: operator {condition.op!r} is not one of "
                    + ", ".join(OPERATORS)
                )
            if condition.field not in FIELDS and not condition.field.startswith("label:"):
                raise DriftPolicyError(
                    f"{origin}: rule {rule.name!r}: field {condition.field!r} is not one of "
                    + ", ".join(FIELDS)
                    + " or label:<key>"
                )
    return document.rules


class DriftPolicy:
    """The ordered rules; ``decide`` gives the first that applies to a container."""

    def __init__(self, rules: list[DriftRule], path: Path | None = None) -> None:
        self.rules = rules
        self.path = path
        self._mtime = path.stat().st_mtime_ns if path is not None and path.exists() else 0
        self.reloads = 0
        self.last_error = ""

    @classmethod
    def load(cls, path: Path) -> DriftPolicy:
        try:
            text = path.read_text()
        except OSError as exc:
            raise DriftPolicyError(f"cannot read drift policy {path}: {exc.strerror}") from None
        return cls(parse_policy(text, str(path)), path)

    def reload_if_changed(self) -> bool:
        """Read the file again if it changed; a bad new version keeps the old rules."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return False
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            self.rules = parse_policy(self.path.read_text(), str(self.path))
        except (OSError, DriftPolicyError) as exc:
            self.last_error = str(exc)
            return False
        self.last_error = ""
        self.reloads += 1
        return True

    def decide(self, scope: Scope, exe: str = "") -> Decision:
        for rule in self.rules:
            if rule.applies(scope):
                if exe and exe in rule.allow:
                    return Decision(Action.IGNORE, rule.name)
                return Decision(rule.action, rule.name)
        return Decision(Action.ALERT, "")

    def blocks(self, scope: Scope) -> bool:
        """Whether the rule deciding for this container blocks drift."""
        return self.decide(scope).action == Action.BLOCK

    def allowed_executables(self) -> set[str]:
        """Executables some blocking rule exempts (the kernel lets them run)."""
        return {exe for rule in self.rules if rule.action == Action.BLOCK for exe in rule.allow}
