"""gatekeeper-library's general suites, run as `gator verify` runs them, in both engine modes."""

from __future__ import annotations

import pytest

from garrison.admission.gator import CaseResult, find_suites, verify, verify_suite
from tests.conftest import corpus

ROOT = corpus("gatekeeper-library-general") / "library" / "general"
SUITES = list(find_suites([ROOT]))


def _failures(cases: list[CaseResult]) -> list[str]:
    return [
        f"{c.suite}/{c.test}/{c.case}: {c.error or list(c.violations)}"
        for c in cases
        if not c.passed
    ]


@pytest.mark.conformance
@pytest.mark.parametrize("suite", SUITES, ids=[s.parent.name for s in SUITES])
def test_suite_rego(suite: object) -> None:
    cases = verify_suite(suite, "rego")  # type: ignore[arg-type]
    assert cases
    assert _failures(cases) == []


@pytest.mark.conformance
@pytest.mark.parametrize("engine", ["rego", "cel"])
def test_library_summary(engine: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Prints passed/total for CI logs; the corpus has 30 policies and 130 cases."""
    report = verify([ROOT], engine)  # type: ignore[arg-type]
    total = len(report.cases)
    with capsys.disabled():
        print(
            f"\ngatekeeper-library-general conformance ({engine}): "
            f"{report.passed}/{total} cases passed"
        )
    assert len(SUITES) == 30
    assert total == 130
    assert _failures(report.cases) == []


@pytest.mark.conformance
def test_cel_mode_runs_cel() -> None:
    """requiredlabels ships CEL: in cel mode its cases must run the CEL code, and still pass."""
    from garrison.admission.evaluate import load_policy_set
    from garrison.admission.files import read_objects

    template = read_objects(ROOT / "requiredlabels" / "template.yaml")
    policy = load_policy_set(template, "cel")
    assert policy.templates["K8sRequiredLabels"].engine == "cel"
    policy = load_policy_set(template, "auto")
    assert policy.templates["K8sRequiredLabels"].engine == "rego"
