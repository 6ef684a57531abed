"""The least-privilege RBAC of a garrison admission deployment, from the policies it runs.

The webhook itself needs no API access (its certificate is a mounted Secret). The inventory
sync and the audit sweep list objects: exactly the kinds some constraint matches, the kinds
templates declare they read (``requires-sync-data``) or ``--sync`` names, and Namespaces (for
namespaceSelectors) — ``get``, ``list`` and ``watch``, nothing else, never Secrets unless a
policy names them. A constraint that matches every kind makes the role read every kind, and
the output says so.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import yaml

READ = ["get", "list", "watch"]

# Built-in kinds whose resource name is not the regular plural of the kind.
_RESOURCES: dict[tuple[str, str], str] = {
    ("", "Endpoints"): "endpoints",
    ("networking.k8s.io", "Ingress"): "ingresses",
    ("networking.k8s.io", "IngressClass"): "ingressclasses",
    ("networking.k8s.io", "NetworkPolicy"): "networkpolicies",
    ("policy", "PodDisruptionBudget"): "poddisruptionbudgets",
    ("storage.k8s.io", "StorageClass"): "storageclasses",
    ("autoscaling", "HorizontalPodAutoscaler"): "horizontalpodautoscalers",
    ("", "PersistentVolumeClaim"): "persistentvolumeclaims",
    ("", "PersistentVolume"): "persistentvolumes",
    ("", "ResourceQuota"): "resourcequotas",
    ("", "LimitRange"): "limitranges",
    ("", "ServiceAccount"): "serviceaccounts",
    ("", "ConfigMap"): "configmaps",
    ("", "ReplicationController"): "replicationcontrollers",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "clusterrolebindings",
    ("rbac.authorization.k8s.io", "RoleBinding"): "rolebindings",
    ("rbac.authorization.k8s.io", "ClusterRole"): "clusterroles",
    ("rbac.authorization.k8s.io", "Role"): "roles",
    ("apps", "DaemonSet"): "daemonsets",
    ("apps", "StatefulSet"): "statefulsets",
    ("apps", "ReplicaSet"): "replicasets",
    ("batch", "CronJob"): "cronjobs",
}


def resource_of(group: str, kind: str) -> str:
    """The resource name of a kind: the built-in table, else Kubernetes' usual plural."""
    known = _RESOURCES.get((group, kind))
    if known is not None:
        return known
    lower = kind.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and len(lower) > 1 and lower[-2] not in "aeiou":
        return lower[:-1] + "ies"
    return lower + "s"


def read_rules(kinds: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """One ClusterRole rule per API group, reading exactly the given (group, kind) pairs."""
    by_group: dict[str, set[str]] = defaultdict(set)
    for group, kind in kinds:
        if group == "*" or kind == "*":
            return [{"apiGroups": ["*"], "resources": ["*"], "verbs": list(READ)}]
        by_group[group].add(resource_of(group, kind))
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(READ)}
        for group, resources in sorted(by_group.items())
    ]


def rbac_manifests(
    kinds: Iterable[tuple[str, str]], *, namespace: str, service_account: str
) -> str:
    rules = read_rules({*kinds, ("", "Namespace")})
    every_kind = rules[0]["resources"] == ["*"]
    name = service_account
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {
                "name": name,
                "annotations": {
                    "admission.garrison.dev/why": (
                        "a constraint matches every kind: the audit reads every kind"
                        if every_kind
                        else "read only the kinds the policies match or read, and Namespaces"
                    )
                },
            },
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)
