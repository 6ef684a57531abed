from __future__ import annotations

import msgspec
import pytest

from garrison.audit.sa_baseline import RULE_ID, ServiceAccountBaseline
from tests.conftest import audit_event

SA = "system:serviceaccount:shop:cart"


def at(day: int, verb: str, resource: str, user: str = SA) -> object:
    return audit_event(verb, resource, user=user, code=200, time=f"2026-11-{day:02d}T10:00:00Z")


def test_learns_then_alerts_once_on_a_new_operation() -> None:
    detector = ServiceAccountBaseline(learning_seconds=3 * 86400)
    assert detector.observe(at(1, "get", "configmaps"), "c") is None  # type: ignore[arg-type]
    assert detector.observe(at(2, "list", "pods"), "c") is None  # type: ignore[arg-type]
    assert detector.observe(at(5, "get", "configmaps"), "c") is None  # type: ignore[arg-type]
    alert = detector.observe(at(5, "list", "secrets"), "c")  # type: ignore[arg-type]
    assert alert is not None and alert.rule_id == RULE_ID
    assert alert.entities.cluster == "c" and "list secrets" in alert.output
    assert alert.mitre.threat_matrix == ("MS-TA9016",)
    assert detector.observe(at(6, "list", "secrets"), "c") is None  # type: ignore[arg-type]


def test_people_are_not_baselined() -> None:
    detector = ServiceAccountBaseline(learning_seconds=0)
    assert detector.observe(at(5, "delete", "pods", user="alice"), "c") is None  # type: ignore[arg-type]
    assert len(detector) == 0


def test_state_survives_a_restart_and_corrupt_state_is_refused() -> None:
    first = ServiceAccountBaseline(learning_seconds=86400)
    first.observe(at(1, "get", "configmaps"), "c")  # type: ignore[arg-type]
    second = ServiceAccountBaseline(learning_seconds=86400)
    second.restore(first.snapshot())
    assert second.observe(at(9, "get", "configmaps"), "c") is None  # type: ignore[arg-type]
    assert second.observe(at(9, "delete", "configmaps"), "c") is not None  # type: ignore[arg-type]
    with pytest.raises(msgspec.DecodeError):
        second.restore(b"{broken")
    assert len(second) == 1


def test_memory_is_bounded() -> None:
    detector = ServiceAccountBaseline(learning_seconds=86400, max_accounts=10, max_operations=3)
    for i in range(50):
        detector.observe(at(1, "get", "pods", user=f"{SA}{i}"), "c")  # type: ignore[arg-type]
    assert len(detector) == 10 and detector.evicted == 40
    for resource in ("a", "b", "c", "d", "e"):
        detector.observe(at(1, "get", resource), "c")  # type: ignore[arg-type]
    # past the cap nothing more is learned, and nothing alerts for that account
    assert detector.observe(at(9, "get", "zzz"), "c") is None  # type: ignore[arg-type]
