"""The admission deployment's RBAC reads exactly what its audit and inventory sync list."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from garrison.admission.rbac import rbac_manifests, read_rules, resource_of
from tests.conftest import corpus

LIBRARY = corpus("gatekeeper-library-general") / "library" / "general"


@pytest.mark.parametrize(
    ("group", "kind", "resource"),
    [
        ("", "Pod", "pods"),
        ("networking.k8s.io", "Ingress", "ingresses"),
        ("networking.k8s.io", "NetworkPolicy", "networkpolicies"),
        ("", "Endpoints", "endpoints"),
        ("example.com", "Gateway", "gateways"),
        ("example.com", "Policy", "policies"),
        ("example.com", "Mesh", "meshes"),
    ],
)
def test_resource_names(group: str, kind: str, resource: str) -> None:
    assert resource_of(group, kind) == resource


def test_one_rule_per_group_with_read_verbs_only() -> None:
    rules = read_rules({("", "Pod"), ("apps", "Deployment"), ("", "Namespace")})
    assert rules == [
        {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
    ]


def test_a_constraint_on_every_kind_reads_every_kind_and_says_so() -> None:
    docs = list(
        yaml.safe_load_all(rbac_manifests({("*", "*")}, namespace="g", service_account="sa"))
    )
    role = docs[1]
    assert role["rules"] == [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}
    ]
    assert "every kind" in role["metadata"]["annotations"]["admission.garrison.dev/why"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "garrison.cli", "admission", "rbac", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rules_of(text: str) -> dict[str, set[str]]:
    docs: list[dict[str, Any]] = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in docs] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
    assert "&" not in text  # plain YAML, no anchors
    assert docs[2]["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": "garrison-admission",
        "namespace": "garrison",
    }
    out: dict[str, set[str]] = {}
    for rule in docs[1]["rules"]:
        assert rule["verbs"] == ["get", "list", "watch"]
        for group in rule["apiGroups"]:
            out.setdefault(group, set()).update(rule["resources"])
    return out


def test_cli_reads_the_kinds_of_the_policies_and_what_templates_sync() -> None:
    policy = LIBRARY / "uniqueingresshost"
    constraint = next((policy / "samples").glob("*/constraint.yaml"))
    result = run("--policy", str(policy / "template.yaml"), "--policy", str(constraint))
    assert result.returncode == 0, result.stderr
    rules = rules_of(result.stdout)
    assert rules == {
        "": {"namespaces"},
        "extensions": {"ingresses"},
        "networking.k8s.io": {"ingresses"},
    }
    assert "secrets" not in result.stdout


def test_cli_with_builtins_and_sync() -> None:
    result = run("--initiative", "pod-security-baseline", "--sync", "ConfigMap")
    assert result.returncode == 0, result.stderr
    rules = rules_of(result.stdout)
    assert rules[""] == {"configmaps", "namespaces", "pods", "replicationcontrollers"}
    assert rules["apps"] == {"daemonsets", "deployments", "replicasets", "statefulsets"}
    assert rules["batch"] == {"cronjobs", "jobs"}


def test_cli_refuses_policies_that_do_not_load(tmp_path: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: Nope\nmetadata: {name: x}\n"
    )
    result = run("--policy", str(bad))
    assert result.returncode == 2 and "no ConstraintTemplate defines" in result.stderr
