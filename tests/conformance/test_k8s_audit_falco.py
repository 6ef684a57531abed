"""Falco's k8s-audit corpus: its rules loaded unchanged, its fixtures replayed, expectations met."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from garrison.audit.decode import NOT_AUDIT, iter_stream
from garrison.rules import Engine, default_sources, load_files
from tests.conftest import corpus

ROOT = corpus("k8s-audit-falco")
CASES: list[dict[str, Any]] = json.loads((ROOT / "cases.json").read_text())["cases"]
PRIORITY = {"INFO": "INFORMATIONAL"}


def run_case(case: dict[str, Any]) -> tuple[Counter[str], Counter[str], list[str]]:
    loaded = load_files([ROOT / f for f in case["rules_files"]])
    assert loaded.errors == []
    engine, report = Engine.build(loaded.ruleset, default_sources()["k8s_audit"])
    assert report.errors == []
    rules: Counter[str] = Counter()
    priorities: Counter[str] = Counter()
    issues: list[str] = []
    with open(ROOT / case["events"], "rb") as fh:
        for batch in iter_stream(fh):
            issues += [i.reason for i in batch.issues]
            for event in batch.events:
                for match in engine.evaluate(event):
                    rules[match.rule.name] += 1
                    priorities[match.rule.priority] += 1
    return rules, priorities, issues


@pytest.mark.conformance
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    rules, priorities, issues = run_case(case)
    expect = case["expect"]
    if expect.get("malformed_input"):
        assert issues and all(NOT_AUDIT in i for i in issues)
    else:
        assert issues == []
    total = sum(rules.values())
    if expect["detections"] == 0:
        assert total == 0, dict(rules)
    elif expect["detections"] == "nonzero":
        assert total > 0
    for rule, count in expect["rule_counts"].items():
        assert rules[rule] == count, (rule, dict(rules))
    if expect["priority_nonzero"]:
        wanted = PRIORITY.get(expect["priority_nonzero"], expect["priority_nonzero"])
        assert priorities[wanted] > 0


@pytest.mark.conformance
def test_corpus_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints the passed/total count for CI logs."""
    passed = 0
    for case in CASES:
        try:
            test_case(case)
        except AssertionError:
            continue
        passed += 1
    with capsys.disabled():
        print(f"\nk8s-audit-falco conformance: {passed}/{len(CASES)} cases passed")
    assert passed == len(CASES)


@pytest.mark.conformance
def test_fused_buckets_match_per_rule_evaluation() -> None:
    """Hot buckets run one generated function for all their rules; results must not change."""
    from garrison.audit.analyzer import build_engine
    from tests.unit.content.test_default_audit_rules import FIRES, MUST_NOT_FIRE

    events = []
    for path in sorted((ROOT / "events").glob("*.json")):
        with open(path, "rb") as fh:
            for batch in iter_stream(fh):
                events.extend(batch.events)
    events += [
        make() for table in (FIRES, MUST_NOT_FIRE) for makers in table.values() for make in makers
    ]
    fused, _ = build_engine([ROOT / "rules" / "k8s_audit_rules.yaml"], default_rules=True)
    plain, _ = build_engine([ROOT / "rules" / "k8s_audit_rules.yaml"], default_rules=True)
    fused.hot_after, plain.hot_after = 1, None
    for event in events:
        expected = [(m.rule.name, m.output) for m in plain.evaluate(event)]
        for _ in range(2):  # the first call may fuse the bucket, the second uses the fused code
            assert [(m.rule.name, m.output) for m in fused.evaluate(event)] == expected
    assert fused.fused > 10
