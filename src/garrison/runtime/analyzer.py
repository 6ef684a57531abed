"""Runtime analysis: the syscall rules, the drift policy, baselines and bursts, then hygiene."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from garrison.content import default_runtime_rule_files
from garrison.events.alert import Alert, Mitre, Severity
from garrison.events.runtime import MEMO_KEY, RuntimeEvent
from garrison.rules.engine import BuildReport, CompiledRule, Engine, Match
from garrison.rules.pack import build_source_engine
from garrison.runtime.alerts import make_alert
from garrison.runtime.baseline import ProcessBaselines
from garrison.runtime.burst import ReconBurst
from garrison.runtime.drift import Action, DriftPolicy, Scope
from garrison.runtime.hygiene import AlertAggregator

DRIFT_RULE = "runtime_drift"


def build_engine(
    rule_files: Iterable[Path], *, default_rules: bool = True
) -> tuple[Engine, BuildReport]:
    files = [*(default_runtime_rule_files() if default_rules else []), *rule_files]
    return build_source_engine(files, "syscall")


def needs_event_types(engine: Engine, types: set[str]) -> bool:
    """Whether some rule can match one of these event types (an unconstrained rule can)."""
    for rule in engine.rules:
        wanted = rule.constraints.get("evt.type")
        if not rule.never and (wanted is None or wanted & types):
            return True
    return False


@dataclass(frozen=True)
class _Detection:
    """What an alert says about the detection that raised it: a rule, or code."""

    rule_id: str
    title: str
    severity: Severity
    priority: str
    mitre: Mitre
    remediation: str

    @classmethod
    def of(cls, rule: CompiledRule) -> _Detection:
        return cls(rule.id, rule.name, rule.severity, rule.priority, rule.mitre, rule.remediation)


BLOCKED_DRIFT = _Detection(
    "runtime_drift_blocked",
    "Blocked binary drift executing in the container",
    Severity.HIGH,
    "CRITICAL",
    Mitre(tactics=("execution", "persistence"), techniques=("T1204.002", "T1105")),
    "The sensor killed the binary before it ran; find what wrote it into the container.",
)
BLOCKED_EXEC = _Detection(
    "runtime_denied_exec",
    "Denied executable blocked",
    Severity.HIGH,
    "CRITICAL",
    Mitre(tactics=("execution",), techniques=("T1204.002",)),
    "An executable on the deny-list was started and killed before it ran; find who ran it.",
)
RECON_BURST = _Detection(
    "runtime_recon_burst",
    "Burst of multiple reconnaissance commands",
    Severity.LOW,
    "NOTICE",
    Mitre(tactics=("discovery", "collection"), techniques=("T1082", "T1033", "T1057")),
    "Someone is looking around inside the container; find the session that ran the commands.",
)
BASELINE_VIOLATION = _Detection(
    "runtime_baseline_violation",
    "Unauthorized process execution (outside the locked baseline)",
    Severity.MEDIUM,
    "WARNING",
    Mitre(tactics=("execution",), techniques=("T1059",)),
    "Add the process to the baseline if it is expected; otherwise investigate the container.",
)


class RuntimeAnalyzer:
    """Evaluates sensor events; one instance per sensor (it holds baselines and windows)."""

    def __init__(
        self,
        engine: Engine,
        *,
        cluster: str = "",
        node: str = "",
        drift: DriftPolicy | None = None,
        baselines: ProcessBaselines | None = None,
        burst: ReconBurst | None = None,
        hygiene: AlertAggregator | None = None,
    ) -> None:
        self.engine = engine
        self.cluster = cluster
        self.node = node
        self.drift = drift
        self.baselines = baselines
        self.burst = burst
        self.hygiene = hygiene

    def analyze(self, event: RuntimeEvent) -> list[Alert]:
        """Alerts to send now for ``event`` (hygiene applied)."""
        found: list[Alert] = []
        blocked = event.type == "exec" and event.blocked
        lineage = self._lineage(event)
        hygiene = self.hygiene
        memo_key = getattr(event, MEMO_KEY, None)
        for match in self.engine.evaluate(event, cluster=self.cluster, memo_key=memo_key):
            if hygiene is not None and hygiene.merge(
                match.rule.id, event.container_id, lineage, event.time, " ".join(event.args)
            ):
                continue  # a repeat of an open alert: counted, nothing built
            alert = self._from_match(match, event, blocked)
            if alert is not None:
                found.append(alert)
        if blocked and not any(a.rule_id == BLOCKED_DRIFT.rule_id for a in found):
            found.append(self._detection(BLOCKED_EXEC, event, f"{event.exe} was killed at exec"))
        if self.burst is not None:
            commands = self.burst.observe(event)
            if commands is not None:
                text = f"{len(commands)} reconnaissance commands: {', '.join(commands)}"
                found.append(self._detection(RECON_BURST, event, text, {"commands": commands}))
        if self.baselines is not None and not blocked:
            key = self.baselines.observe(event)
            if key is not None:
                where = "/".join(k for k in key if k)
                text = f"{event.exe or event.comm} is not in the baseline of {where}"
                found.append(self._detection(BASELINE_VIOLATION, event, text))
        if self.hygiene is None:
            return found
        out: list[Alert] = []
        for alert in found:
            out.extend(self.hygiene.offer(alert, lineage, event.time))
        return out

    @staticmethod
    def _lineage(event: RuntimeEvent) -> tuple[str, ...]:
        """One session (a kubectl exec, an ssh login): the session id; else the parent."""
        if event.sid:
            return (f"session:{event.sid}",)
        return (str(event.ppid), event.ancestry[0] if event.ancestry else "")

    def tick(self, now: float) -> list[Alert]:
        """Updated counts of aggregates whose window closed."""
        if self.drift is not None:
            self.drift.reload_if_changed()
        return self.hygiene.expire(now) if self.hygiene is not None else []

    def close(self) -> list[Alert]:
        return self.hygiene.flush() if self.hygiene is not None else []

    def drift_scope(self, event: RuntimeEvent) -> Scope:
        return Scope(
            cluster=self.cluster,
            namespace=event.namespace,
            pod=event.pod,
            container=event.container_name,
            image=event.image,
            labels=tuple(sorted(event.pod_labels.items())),
        )

    def _from_match(self, match: Match, event: RuntimeEvent, blocked: bool) -> Alert | None:
        rule = match.rule
        if rule.id == DRIFT_RULE:
            if blocked:
                text = f"Drift binary {event.exe} killed before it ran: {match.output}"
                return self._detection(BLOCKED_DRIFT, event, text)
            if self.drift is not None:
                decision = self.drift.decide(self.drift_scope(event), event.exe)
                if decision.action == Action.IGNORE:
                    return None
        return self._detection(_Detection.of(rule), event, match.output)

    def _detection(
        self,
        detection: _Detection,
        event: RuntimeEvent,
        output: str,
        evidence: dict[str, object] | None = None,
    ) -> Alert:
        return make_alert(
            event=event,
            cluster=self.cluster,
            node=self.node,
            rule_id=detection.rule_id,
            title=detection.title,
            severity=detection.severity,
            priority=detection.priority,
            output=output,
            mitre=detection.mitre,
            remediation=detection.remediation,
            extra_evidence=dict(evidence) if evidence else None,
        )
