"""Runtime analysis around the rules: hygiene, drift policy, baselines, bursts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from garrison.runtime.analyzer import RuntimeAnalyzer, build_engine
from garrison.runtime.baseline import ProcessBaselines
from garrison.runtime.burst import ReconBurst
from garrison.runtime.drift import Action, DriftPolicy, DriftPolicyError, Scope, parse_policy
from garrison.runtime.hygiene import AlertAggregator
from tests.runtime_events import spawn

ENGINE = build_engine([])[0]


def analyzer(**kw: object) -> RuntimeAnalyzer:
    return RuntimeAnalyzer(ENGINE, cluster="prod", node="node-1", **kw)  # type: ignore[arg-type]


def test_one_exec_session_gives_one_alert_with_a_count() -> None:
    """Five commands typed into one shell in a privileged container: one alert, count 5."""
    hygiene = AlertAggregator(window_seconds=60)
    runtime = analyzer(hygiene=hygiene)
    now = time.time()
    sent = []
    for i, command in enumerate(("ls", "id", "ps", "cat", "env")):
        event = spawn(f"/bin/{command}", privileged=True, tty=34816, time=now + i)
        sent += [a for a in runtime.analyze(event) if a.rule_id == "runtime_privileged_exec"]
    assert len(sent) == 1 and sent[0].count == 1
    updates = [a for a in runtime.tick(now + 120) if a.rule_id == "runtime_privileged_exec"]
    assert len(updates) == 1 and updates[0].count == 5
    assert updates[0].evidence["commands"] == [
        "/bin/ls",
        "/bin/id",
        "/bin/ps",
        "/bin/cat",
        "/bin/env",
    ]
    assert updates[0].dedupe_key == sent[0].dedupe_key
    assert updates[0].evidence["update_of"] == sent[0].id and updates[0].id != sent[0].id
    assert AlertAggregator.repeats_of(updates[0]).count == 4  # the first was stored already


def test_alerts_carry_entities_mitre_and_a_stable_id() -> None:
    event = spawn(
        "/tmp/xmrig",
        exe_upper_layer=True,
        pod="miner-7c9f8d6b5-x2x4q",
        namespace="shop",
        image="evil/xmrig:6",
    )
    alerts = {a.rule_id: a for a in analyzer().analyze(event)}
    drift = alerts["runtime_drift"]
    assert drift.severity == "high" and "T1204.002" in drift.mitre.techniques
    entities = drift.entities
    assert (entities.cluster, entities.namespace, entities.pod) == (
        "prod",
        "shop",
        "miner-7c9f8d6b5-x2x4q",
    )
    assert entities.workload == "deployment/miner" and entities.node == "node-1"
    assert entities.container == event.container_id and entities.process == "/tmp/xmrig"
    assert drift.id == analyzer().analyze(event)[0].id  # replayed: the same id
    assert "runtime_crypto_miner" in alerts


def test_rate_limit_counts_what_it_holds_back() -> None:
    hygiene = AlertAggregator(rate_per_minute=1, burst=2)
    runtime = analyzer(hygiene=hygiene)
    now = time.time()
    sent = []
    for i in range(10):  # different lineages: not merged, limited
        event = spawn("/usr/bin/nmap", ancestry=[f"sh{i}"], time=now)
        sent += runtime.analyze(event)
    assert len(sent) == 2 and hygiene.suppressed == {"runtime_network_scanner": 8}


def test_hygiene_is_bounded() -> None:
    hygiene = AlertAggregator(max_open=100, rate_per_minute=1e9, burst=1000)
    runtime = analyzer(hygiene=hygiene)
    for i in range(500):
        runtime.analyze(spawn("/usr/bin/nmap", ancestry=[f"sh{i}"], container_id=f"c{i}"))
    assert len(hygiene._open) == 100


POLICY = """
rules:
  - name: kube-system is noisy
    action: ignore
    scope: [{field: namespace, op: equals, value: kube-system}]
  - name: block drift in prod
    action: block
    scope:
      - {field: namespace, op: starts_with, value: prod-}
      - {field: "label:tier", op: equals, value: web}
    allow: [/usr/local/bin/healthcheck]
  - name: alert on the rest
    action: alert
"""


def test_drift_policy_first_match_wins() -> None:
    policy = DriftPolicy(parse_policy(POLICY))
    web = Scope(namespace="prod-eu", labels=(("tier", "web"),))
    assert policy.decide(web).action == Action.BLOCK
    assert policy.decide(web, "/usr/local/bin/healthcheck").action == Action.IGNORE
    assert policy.decide(Scope(namespace="prod-eu")).action == Action.ALERT
    assert policy.decide(Scope(namespace="kube-system")).action == Action.IGNORE
    assert policy.allowed_executables() == {"/usr/local/bin/healthcheck"}
    ignored = analyzer(drift=policy).analyze(
        spawn("/tmp/x", exe_upper_layer=True, namespace="kube-system")
    )
    assert "runtime_drift" not in {a.rule_id for a in ignored}


def test_drift_policy_errors_are_clear_and_reload_keeps_the_last_good_one(tmp_path: Path) -> None:
    with pytest.raises(DriftPolicyError, match="operator 'like'"):
        parse_policy("rules: [{name: x, scope: [{field: pod, op: like, value: a}]}]")
    with pytest.raises(DriftPolicyError, match="field 'node'"):
        parse_policy("rules: [{name: x, scope: [{field: node, op: equals, value: a}]}]")
    with pytest.raises(DriftPolicyError, match="action"):
        parse_policy("rules: [{name: x, action: explode}]")
    path = tmp_path / "drift.yaml"
    path.write_text(POLICY)
    policy = DriftPolicy.load(path)
    path.write_text("rules: [{name: all, action: block}]")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    assert policy.reload_if_changed() and policy.decide(Scope()).action == Action.BLOCK
    path.write_text("rules: [{name: bad, action: maybe}]")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    assert not policy.reload_if_changed() and "maybe" in policy.last_error
    assert policy.decide(Scope()).action == Action.BLOCK


def test_blocked_drift_becomes_its_own_alert() -> None:
    event = spawn("/tmp/x", exe_upper_layer=True, blocked=True)
    ids = {a.rule_id for a in analyzer().analyze(event)}
    assert "runtime_drift_blocked" in ids and "runtime_drift" not in ids
    denied = spawn("/usr/bin/nc", blocked=True)
    assert "runtime_denied_exec" in {a.rule_id for a in analyzer().analyze(denied)}


def test_recon_burst_fires_once_per_window() -> None:
    runtime = analyzer(burst=ReconBurst(threshold=5, window_seconds=60))
    now = time.time()
    commands = ["whoami", "id", "uname", "hostname", "ps", "env"]
    fired = []
    for i, command in enumerate(commands):
        fired += [
            a
            for a in runtime.analyze(spawn(f"/bin/{command}", time=now + i))
            if a.rule_id == "runtime_recon_burst"
        ]
    assert len(fired) == 1 and fired[0].evidence["commands"] == commands[:5]
    quiet = analyzer(burst=ReconBurst(threshold=5, window_seconds=60))
    slow = [quiet.analyze(spawn(f"/bin/{c}", time=now + 100 * i)) for i, c in enumerate(commands)]
    assert not any(a.rule_id == "runtime_recon_burst" for alerts in slow for a in alerts)


def test_process_baseline_learns_then_locks_and_persists(tmp_path: Path) -> None:
    baselines = ProcessBaselines(learning_seconds=60)
    runtime = analyzer(baselines=baselines)
    now = time.time()
    pod = {"namespace": "shop", "pod": "web-7c9f8d6b5-x2x4q", "container_name": "web"}
    for exe in ("/usr/bin/python3", "/bin/sh"):
        assert not runtime.analyze(spawn(exe, time=now, **pod))
    assert not runtime.analyze(spawn("/usr/bin/python3", time=now + 120, **pod))
    late = runtime.analyze(spawn("/usr/bin/wget", time=now + 130, **pod))
    assert [a.rule_id for a in late] == ["runtime_baseline_violation"]
    # another pod of the same deployment shares the baseline
    other = {**pod, "pod": "web-7c9f8d6b5-zzzzz"}
    assert [
        a.rule_id for a in runtime.analyze(spawn("/usr/bin/wget", time=now + 140, **other))
    ] == ["runtime_baseline_violation"]
    state = tmp_path / "baselines.json"
    baselines.save(state)
    restored = ProcessBaselines(learning_seconds=60)
    assert restored.restore(state) == 1
    assert restored.observe(spawn("/usr/bin/wget", time=now + 200, **pod)) is not None
    assert restored.observe(spawn("/bin/sh", time=now + 200, **pod)) is None
    bounded = ProcessBaselines(max_baselines=10)
    for i in range(50):
        bounded.observe(spawn("/bin/sh", container_name=f"c{i}"))
    assert len(bounded) == 10
