"""The audit pipeline's detection step: rules engine plus stateful detectors → alerts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from garrison.audit.alerts import alert_from_match
from garrison.audit.sa_baseline import ServiceAccountBaseline
from garrison.content import default_audit_rule_files
from garrison.events.alert import Alert
from garrison.events.audit import AuditEvent
from garrison.rules.engine import BuildReport, Engine
from garrison.rules.pack import RulesLoadFailed, build_source_engine

__all__ = ["AnalyzerConfig", "AuditAnalyzer", "RulesLoadFailed", "build_engine"]


@dataclass(frozen=True)
class AnalyzerConfig:
    rule_files: tuple[Path, ...] = ()
    default_rules: bool = True
    service_account_baseline: bool = True
    learning_seconds: float = 7 * 24 * 3600


def build_engine(
    rule_files: Iterable[Path], *, default_rules: bool = True
) -> tuple[Engine, BuildReport]:
    files = [*(default_audit_rule_files() if default_rules else []), *rule_files]
    return build_source_engine(files, "k8s_audit")


class AuditAnalyzer:
    """Evaluates audit events; one instance per process (it holds the learned baselines)."""

    def __init__(self, engine: Engine, baseline: ServiceAccountBaseline | None = None) -> None:
        self.engine = engine
        self.baseline = baseline

    @classmethod
    def from_config(cls, config: AnalyzerConfig) -> AuditAnalyzer:
        engine, _ = build_engine(config.rule_files, default_rules=config.default_rules)
        baseline = (
            ServiceAccountBaseline(learning_seconds=config.learning_seconds)
            if config.service_account_baseline
            else None
        )
        return cls(engine, baseline)

    def analyze(self, event: AuditEvent, cluster: str = "") -> list[Alert]:
        alerts = [
            alert_from_match(m, event, cluster)
            for m in self.engine.evaluate(event, cluster=cluster)
        ]
        if self.baseline is not None:
            rare = self.baseline.observe(event, cluster)
            if rare is not None:
                alerts.append(rare)
        return alerts
