"""Every default audit rule: events that must fire it and events that must not."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from garrison.audit.analyzer import build_engine
from garrison.events.audit import AuditEvent
from garrison.rules import Engine
from tests.conftest import audit_event, deployment, pod

ENGINE: Engine = build_engine([], default_rules=True)[0]
EventFactory = Callable[[], AuditEvent]


def svc(
    name: str, kind: str = "LoadBalancer", ports: tuple[int, ...] = (80,), **spec: object
) -> dict[str, object]:
    return {
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"type": kind, "ports": [{"port": p, "targetPort": p} for p in ports], **spec},
    }


def binding(role: str, subjects: list[str]) -> dict[str, object]:
    return {
        "kind": "ClusterRoleBinding",
        "roleRef": {"kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "User", "name": s} for s in subjects],
    }


def role(verbs: list[str], resources: list[str]) -> dict[str, object]:
    return {
        "kind": "ClusterRole",
        "rules": [{"apiGroups": [""], "verbs": verbs, "resources": resources}],
    }


def exec_event(verb: str, sub: str = "exec", **kw: object) -> AuditEvent:
    return audit_event(
        verb,
        "pods",
        subresource=sub,
        stage="ResponseStarted",
        code=101,
        uri="/api/v1/namespaces/default/pods/web/exec?command=sh&container=main&stdin=true&tty=true",
        **kw,  # type: ignore[arg-type]
    )


FIRES: dict[str, list[EventFactory]] = {
    "k8s_privileged_container": [
        lambda: audit_event(request_object=pod(privileged=True)),
        lambda: audit_event("create", "deployments", request_object=deployment(privileged=True)),
        lambda: audit_event(
            "patch",
            "daemonsets",
            request_object={
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [{"name": "x", "securityContext": {"privileged": True}}]
                        }
                    }
                }
            },
        ),
    ],
    "k8s_sensitive_mount": [
        lambda: audit_event(request_object=pod(host_paths=["/"])),
        lambda: audit_event(
            "create", "daemonsets", request_object=deployment(host_paths=["/var/run/docker.sock"])
        ),
        lambda: audit_event(request_object=pod(host_paths=["/etc/kubernetes/pki"])),
    ],
    "k8s_host_namespace": [lambda: audit_event(request_object=pod(host_network=True))],
    "k8s_kube_system_container": [
        lambda: audit_event(namespace="kube-system", request_object=pod()),
        lambda: audit_event(
            "create", "deployments", namespace="kube-system", request_object=deployment()
        ),
    ],
    "k8s_mining_image": [
        lambda: audit_event(request_object=pod(image="docker.io/minerboy/xmrig:latest")),
        lambda: audit_event(
            "create", "deployments", request_object=deployment(image="ghcr.io/x/NiceHash-miner:1")
        ),
    ],
    "k8s_cluster_admin_binding": [
        lambda: audit_event(
            "create",
            "clusterrolebindings",
            namespace="",
            request_object=binding("cluster-admin", ["eve"]),
        ),
    ],
    "k8s_high_privileges_role": [
        lambda: audit_event(
            "create", "clusterroles", namespace="", name="god", request_object=role(["*"], ["*"])
        ),
        lambda: audit_event(
            "update", "roles", name="r", request_object=role(["create"], ["pods/exec"])
        ),
        lambda: audit_event(
            "create",
            "clusterroles",
            namespace="",
            name="b",
            request_object=role(["bind"], ["clusterroles"]),
        ),
    ],
    "k8s_anonymous_binding": [
        lambda: audit_event(
            "create",
            "clusterrolebindings",
            namespace="",
            request_object=binding("view", ["system:anonymous"]),
        ),
    ],
    "k8s_anonymous_request": [
        lambda: audit_event(
            "list",
            "secrets",
            user="system:anonymous",
            code=200,
            annotations={"authorization.k8s.io/decision": "allow"},
        ),
    ],
    "k8s_pod_exec": [
        lambda: exec_event("create"),
        lambda: exec_event("get"),
        lambda: exec_event("create", "attach"),
    ],
    "k8s_pod_portforward": [lambda: exec_event("get", "portforward")],
    "k8s_node_proxy": [
        lambda: audit_event(
            "get",
            "nodes",
            namespace="",
            name="node-1",
            subresource="proxy",
            code=200,
            uri="/api/v1/nodes/node-1/proxy/runningpods/",
        ),
    ],
    "k8s_token_request": [
        lambda: audit_event("create", "serviceaccounts", name="default", subresource="token"),
    ],
    "k8s_impersonation": [
        lambda: audit_event("get", "secrets", code=200, impersonated="system:admin")
    ],
    "k8s_secret_enumeration": [
        lambda: audit_event(
            "list", "secrets", namespace="", name="", code=200, uri="/api/v1/secrets"
        ),
        lambda: audit_event("watch", "secrets", name="", code=200),
    ],
    "k8s_admission_webhook": [
        lambda: audit_event(
            "create",
            "mutatingwebhookconfigurations",
            namespace="",
            name="hook",
            api_group="admissionregistration.k8s.io",
        ),
    ],
    "k8s_coredns_modification": [
        lambda: audit_event(
            "patch", "configmaps", namespace="kube-system", name="coredns", code=200
        ),
    ],
    "k8s_events_deleted": [
        lambda: audit_event("delete", "events", name="web.17a", code=200),
        lambda: audit_event("deletecollection", "events", name="", code=200),
    ],
    "k8s_exposed_dashboard": [
        lambda: audit_event(
            "create",
            "services",
            namespace="kubernetes-dashboard",
            name="kubernetes-dashboard",
            request_object=svc("kubernetes-dashboard", ports=(443,)),
        ),
    ],
    "k8s_exposed_kubeflow": [
        lambda: audit_event(
            "create",
            "services",
            namespace="kubeflow",
            name="centraldashboard",
            request_object=svc("centraldashboard"),
        ),
    ],
    "k8s_exposed_service": [
        lambda: audit_event(
            "create", "services", name="es", request_object=svc("es", "NodePort", (9200,))
        ),
    ],
    "k8s_exposed_redis": [
        lambda: audit_event(
            "create", "services", name="cache", request_object=svc("cache", ports=(6379,))
        ),
    ],
    "k8s_exposed_postgres_broad_range": [
        lambda: audit_event(
            "create", "services", name="db", request_object=svc("db", ports=(5432,))
        ),
        lambda: audit_event(
            "update",
            "services",
            name="db",
            request_object=svc("db", ports=(5432,), loadBalancerSourceRanges=["0.0.0.0/0"]),
        ),
    ],
    "k8s_exposed_postgres_trust_auth": [
        lambda: audit_event(
            "create",
            "configmaps",
            name="pg",
            request_object={
                "kind": "ConfigMap",
                "data": {"pg_hba.conf": "host all all 0.0.0.0/0 trust\n"},
            },
        ),
    ],
    "k8s_pentest_tool": [
        lambda: audit_event("get", "pods", code=200, user_agent="kube-hunter/0.6.8")
    ],
    "k8s_proxy_ip": [lambda: audit_event("get", "pods", code=200, source_ips=["203.0.113.66"])],
}

MUST_NOT_FIRE: dict[str, list[EventFactory]] = {
    "k8s_privileged_container": [
        lambda: audit_event(request_object=pod()),
        lambda: audit_event(
            request_object=pod(privileged=True, owner="web-5d4")
        ),  # covered by its workload
        lambda: audit_event(request_object=pod(privileged=True), code=403),
        lambda: audit_event("get", "pods", code=200, response_object=pod(privileged=True)),
    ],
    "k8s_sensitive_mount": [
        lambda: audit_event(request_object=pod(host_paths=["/data/app", "/var-lib"])),
        lambda: audit_event(request_object=pod()),
    ],
    "k8s_host_namespace": [lambda: audit_event(request_object=pod())],
    "k8s_kube_system_container": [
        lambda: audit_event(
            namespace="kube-system",
            user="system:serviceaccount:kube-system:replicaset-controller",
            request_object=pod(owner="coredns-5d"),
        ),
        lambda: audit_event(namespace="default", request_object=pod()),
        lambda: audit_event(
            "update", "deployments", namespace="kube-system", request_object=deployment()
        ),
    ],
    "k8s_mining_image": [lambda: audit_event(request_object=pod(image="nginx:1.27"))],
    "k8s_cluster_admin_binding": [
        lambda: audit_event(
            "create", "clusterrolebindings", namespace="", request_object=binding("view", ["eve"])
        ),
        lambda: audit_event(
            "create",
            "clusterrolebindings",
            namespace="",
            user="system:apiserver",
            request_object=binding("cluster-admin", ["system:masters"]),
        ),
    ],
    "k8s_high_privileges_role": [
        lambda: audit_event(
            "create",
            "clusterroles",
            namespace="",
            name="reader",
            request_object=role(["get", "list"], ["pods"]),
        ),
        lambda: audit_event(
            "update",
            "clusterroles",
            namespace="",
            name="system:aggregate-to-admin",
            request_object=role(["*"], ["*"]),
        ),
    ],
    "k8s_anonymous_binding": [
        lambda: audit_event(
            "create", "clusterrolebindings", namespace="", request_object=binding("view", ["alice"])
        ),
    ],
    "k8s_anonymous_request": [
        lambda: audit_event(
            "get", "", namespace="", name="", user="system:anonymous", code=200, uri="/healthz"
        ),
        lambda: audit_event(
            "list",
            "secrets",
            user="system:anonymous",
            code=403,
            annotations={"authorization.k8s.io/decision": "forbid"},
        ),
    ],
    "k8s_pod_exec": [
        lambda: audit_event(
            "create", "pods", subresource="exec", stage="ResponseComplete", code=101
        ),  # the second stage of the same request
        lambda: audit_event("get", "pods", subresource="log", stage="ResponseStarted", code=200),
    ],
    "k8s_pod_portforward": [lambda: exec_event("create", "exec")],
    "k8s_node_proxy": [
        lambda: audit_event(
            "get",
            "nodes",
            namespace="",
            name="node-1",
            subresource="proxy",
            user="system:kube-controller-manager",
            code=200,
        ),
        lambda: audit_event("get", "nodes", namespace="", name="node-1", code=200),
    ],
    "k8s_token_request": [
        lambda: audit_event(
            "create",
            "serviceaccounts",
            name="default",
            subresource="token",
            user="system:node:node-1",
        ),
        lambda: audit_event("create", "serviceaccounts", name="default"),
    ],
    "k8s_impersonation": [lambda: audit_event("get", "secrets", code=200)],
    "k8s_secret_enumeration": [
        lambda: audit_event("get", "secrets", name="db", code=200),
        lambda: audit_event("list", "secrets", code=403),
        lambda: audit_event("list", "secrets", user="system:kube-controller-manager", code=200),
    ],
    "k8s_admission_webhook": [
        lambda: audit_event(
            "get", "mutatingwebhookconfigurations", namespace="", name="hook", code=200
        ),
    ],
    "k8s_coredns_modification": [
        lambda: audit_event(
            "patch", "configmaps", namespace="kube-system", name="kube-proxy", code=200
        ),
        lambda: audit_event("get", "configmaps", namespace="kube-system", name="coredns", code=200),
    ],
    "k8s_events_deleted": [
        lambda: audit_event(
            "delete", "events", name="x", user="system:kube-controller-manager", code=200
        ),
        lambda: audit_event("delete", "pods", name="x", code=200),
    ],
    "k8s_exposed_dashboard": [
        lambda: audit_event(
            "create",
            "services",
            namespace="kubernetes-dashboard",
            name="kubernetes-dashboard",
            request_object=svc("kubernetes-dashboard", "ClusterIP"),
        ),
    ],
    "k8s_exposed_kubeflow": [
        lambda: audit_event(
            "create",
            "services",
            namespace="kubeflow",
            name="centraldashboard",
            request_object=svc("centraldashboard", "ClusterIP"),
        ),
    ],
    "k8s_exposed_service": [
        lambda: audit_event(
            "create", "services", name="web", request_object=svc("web", ports=(80, 443))
        ),
    ],
    "k8s_exposed_redis": [
        lambda: audit_event(
            "create", "services", name="cache", request_object=svc("cache", "ClusterIP", (6379,))
        ),
    ],
    "k8s_exposed_postgres_broad_range": [
        lambda: audit_event(
            "create",
            "services",
            name="db",
            request_object=svc("db", ports=(5432,), loadBalancerSourceRanges=["192.0.2.0/24"]),
        ),
    ],
    "k8s_exposed_postgres_trust_auth": [
        lambda: audit_event(
            "create",
            "configmaps",
            name="pg",
            request_object={
                "kind": "ConfigMap",
                "data": {
                    "pg_hba.conf": "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\n"
                },
            },
        ),
    ],
    "k8s_pentest_tool": [lambda: audit_event("get", "pods", code=200)],
    "k8s_proxy_ip": [lambda: audit_event("get", "pods", code=200, source_ips=["10.1.2.3"])],
}


def rule_ids(event: AuditEvent) -> set[str]:
    return {m.rule.id for m in ENGINE.evaluate(event)}


@pytest.mark.parametrize(
    ("rule_id", "make"),
    [(r, f) for r, fs in FIRES.items() for f in fs],
    ids=[f"{r}-{i}" for r, fs in FIRES.items() for i in range(len(fs))],
)
def test_fires(rule_id: str, make: EventFactory) -> None:
    event = make()
    if rule_id == "k8s_proxy_ip":
        engine = build_engine([proxy_list()], default_rules=True)[0]
        assert rule_id in {m.rule.id for m in engine.evaluate(event)}
        return
    assert rule_id in rule_ids(event)


@pytest.mark.parametrize(
    ("rule_id", "make"),
    [(r, f) for r, fs in MUST_NOT_FIRE.items() for f in fs],
    ids=[f"{r}-{i}" for r, fs in MUST_NOT_FIRE.items() for i in range(len(fs))],
)
def test_must_not_fire(rule_id: str, make: EventFactory) -> None:
    assert rule_id not in rule_ids(make())


def proxy_list():  # type: ignore[no-untyped-def]
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "tor.yaml"
    path.write_text("- list: garrison_proxy_ips\n  items: [203.0.113.66]\n  append: true\n")
    return path


def test_every_default_rule_is_tested_both_ways_and_documented() -> None:
    ids = {rule.id for rule in ENGINE.rules}
    assert ids == set(FIRES) == set(MUST_NOT_FIRE)
    for rule in ENGINE.rules:
        assert rule.desc and rule.remediation, rule.id
        assert rule.mitre.techniques and rule.mitre.tactics, rule.id


def test_one_exec_gives_one_alert() -> None:
    """kubectl exec logs ResponseStarted and ResponseComplete: only one of them alerts."""
    started = exec_event("create")
    complete = audit_event("create", "pods", subresource="exec", stage="ResponseComplete", code=101)
    assert rule_ids(started) == {"k8s_pod_exec"}
    assert rule_ids(complete) == set()
