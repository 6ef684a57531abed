"""`garrison policy verify|eval|export` and `garrison admission webhook-config` as users run them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from garrison.tls import ensure_ca
from tests.conftest import corpus

pytestmark = pytest.mark.integration
GARRISON = [sys.executable, "-m", "garrison.cli"]
LIBRARY = corpus("gatekeeper-library-general") / "library" / "general"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GARRISON, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_verify_the_library_prints_a_summary() -> None:
    result = run("policy", "verify", str(LIBRARY))
    assert result.returncode == 0, result.stdout[-2000:]
    assert result.stdout.splitlines()[-1] == "130 passed, 0 failed"


def test_verify_json_and_failures_exit_non_zero(tmp_path: Path) -> None:
    suite_dir = tmp_path / "requiredlabels"
    shutil.copytree(LIBRARY / "requiredlabels", suite_dir)
    suite = suite_dir / "suite.yaml"
    # flip one expectation: the case must now fail
    suite.write_text(suite.read_text().replace("violations: no", "violations: yes", 1))
    result = run("policy", "verify", "--format", "json", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == "4 passed, 1 failed"
    cases = [json.loads(line) for line in lines[:-1]]
    assert [c["case"] for c in cases if not c["passed"]] == ["example-allowed"]


def test_verify_reports_unreadable_suites(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(
        "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n- name: t\n  template: missing.yaml\n"
        "  constraint: c.yaml\n  cases:\n  - name: c\n    object: o.yaml\n    assertions: [{violations: yes}]\n"
    )
    result = run("policy", "verify", str(tmp_path))
    assert result.returncode == 1
    assert "missing.yaml: cannot read" in result.stdout
    assert result.stdout.splitlines()[-1] == "0 passed, 1 failed"
    assert run("policy", "verify", str(tmp_path / "nope")).returncode == 2


def test_eval_prints_violations() -> None:
    base = LIBRARY / "disallowedtags"
    sample = base / "samples" / "container-image-must-not-have-latest-tag"
    result = run(
        "policy",
        "eval",
        "--template",
        str(base / "template.yaml"),
        "--constraint",
        str(sample / "constraint.yaml"),
        str(sample / "example_some_disallowed_tags.yaml"),
    )
    assert result.returncode == 0, result.stderr
    violations = json.loads(result.stdout)
    assert [v["msg"] for v in violations] == [
        'container <opa-init> uses a disallowed tag <openpolicyagent/init:latest>; disallowed tags are ["latest"]',
        'container <opa-monitor> uses a disallowed tag <openpolicyagent/monitor:latest>; disallowed tags are ["latest"]',
    ]
    assert all(v["details"] == {} for v in violations)


def test_eval_with_inventory_and_clear_errors(tmp_path: Path) -> None:
    base = LIBRARY / "uniqueingresshost"
    sample = next((base / "samples").iterdir())
    inventory = sorted(sample.glob("example_inventory*.yaml"))
    disallowed = sorted(sample.glob("example_disallowed*.yaml"))
    args = [
        "policy",
        "eval",
        "--template",
        str(base / "template.yaml"),
        "--constraint",
        str(sample / "constraint.yaml"),
    ]
    for inv in inventory:
        args += ["--inventory", str(inv)]
    result = run(*args, str(disallowed[0]))
    assert result.returncode == 0 and json.loads(result.stdout), result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: [")
    result = run(*args, str(bad))
    assert (
        result.returncode == 2
        and "not valid YAML" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_export_gives_plain_gatekeeper_objects(tmp_path: Path) -> None:
    result = run("policy", "export", "--initiative", "pod-security-restricted")
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    kinds = {d["kind"] for d in docs}
    assert "ConstraintTemplate" in kinds and "GarrisonRunAsNonRoot" in kinds
    (tmp_path / "p.yaml").write_text(result.stdout)
    pod = tmp_path / "pod.yaml"
    pod.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p", "namespace": "a"},
                "spec": {
                    "containers": [
                        {"name": "c", "image": "i", "securityContext": {"privileged": True}}
                    ]
                },
            }
        )
    )
    templates = tmp_path / "t.yaml"
    templates.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] == "ConstraintTemplate"]))
    constraints = tmp_path / "c.yaml"
    constraints.write_text(
        yaml.safe_dump_all([d for d in docs if d["kind"] != "ConstraintTemplate"])
    )
    result = run(
        "policy", "eval", "--template", str(templates), "--constraint", str(constraints), str(pod)
    )
    assert "privileged container is not allowed: c" in result.stdout


def test_webhook_config_is_safe_by_default(tmp_path: Path) -> None:
    ca = ensure_ca(tmp_path / "ca")
    result = run("admission", "webhook-config", "--ca-file", str(ca), "--mutating")
    assert result.returncode == 0, result.stderr
    validating, mutating = list(yaml.safe_load_all(result.stdout))
    hook = validating["webhooks"][0]
    assert validating["kind"] == "ValidatingWebhookConfiguration"
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] == 3
    assert hook["sideEffects"] == "None" and hook["clientConfig"]["service"]["path"] == "/v1/admit"
    excluded = hook["namespaceSelector"]["matchExpressions"][1]["values"]
    assert excluded == ["garrison", "kube-system"]
    assert mutating["webhooks"][0]["clientConfig"]["service"]["path"] == "/v1/mutate"
    bad = run("admission", "webhook-config", "--ca-file", str(ca), "--timeout", "60")
    assert bad.returncode == 2 and "between 1 and 30" in bad.stderr
