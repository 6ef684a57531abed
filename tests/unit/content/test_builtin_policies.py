"""garrison's built-in admission policies: each template fires where it must and only there."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from garrison.admission.builtins import Catalog
from garrison.admission.evaluate import PolicySet, load_policy_set
from garrison.admission.review import as_request

CATALOG = Catalog()
TEMPLATES = {t["spec"]["crd"]["spec"]["names"]["kind"]: t for t in CATALOG.template_objects()}


def pod(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    base = {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]}
    base.update(spec or {})
    metadata = {"name": "app", "namespace": "shop", **meta}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": base}


def container(**fields: Any) -> dict[str, Any]:
    return {
        "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0", **fields}]}
    }


def sc(**fields: Any) -> dict[str, Any]:
    return container(securityContext=fields)


def deployment(
    pod_spec: dict[str, Any], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    template: dict[str, Any] = {"spec": pod_spec}
    if annotations:
        template["metadata"] = {"annotations": annotations}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "shop"},
        "spec": {"template": template},
    }


def obj(kind: str, api: str = "v1", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": api,
        "kind": kind,
        "metadata": {"name": "x", "namespace": "shop"},
        **extra,
    }


RESTRICTED_OK = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "app",
            "image": "registry.example/app:1.0",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
        }
    ],
}

# kind -> (parameters, [objects that must fire], [objects that must not])
CASES: dict[str, tuple[dict[str, Any], list[Any], list[Any]]] = {
    "GarrisonPrivilegedContainer": (
        {"exemptImages": ["registry.example/debug*"]},
        [
            pod(sc(privileged=True)["spec"]),
            pod(
                {
                    "initContainers": [
                        {"name": "i", "image": "x", "securityContext": {"privileged": True}}
                    ]
                }
            ),
            deployment(sc(privileged=True)["spec"]),
        ],
        [
            pod(),
            pod(sc(privileged=False)["spec"]),
            pod(
                {
                    "containers": [
                        {
                            "name": "d",
                            "image": "registry.example/debug:1",
                            "securityContext": {"privileged": True},
                        }
                    ]
                }
            ),
        ],
    ),
    "GarrisonHostNamespaces": (
        {},
        [pod({"hostNetwork": True}), pod({"hostPID": True}), pod({"hostIPC": True})],
        [pod(), pod({"hostNetwork": False})],
    ),
    "GarrisonHostPorts": (
        {"min": 8000, "max": 8100},
        [pod(container(ports=[{"containerPort": 80, "hostPort": 80}])["spec"])],
        [
            pod(container(ports=[{"containerPort": 80}])["spec"]),
            pod(container(ports=[{"hostPort": 8080}])["spec"]),
        ],
    ),
    "GarrisonHostPathVolumes": (
        {"allowedHostPaths": [{"pathPrefix": "/var/log", "readOnly": True}]},
        [
            pod({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
            pod({"volumes": [{"name": "v", "hostPath": {"path": "/var/logs"}}]}),
            pod(
                {
                    "volumes": [{"name": "logs", "hostPath": {"path": "/var/log/app"}}],
                    "containers": [
                        {
                            "name": "a",
                            "image": "x",
                            "volumeMounts": [{"name": "logs", "mountPath": "/l"}],
                        }
                    ],
                }
            ),
        ],
        [
            pod({"volumes": [{"name": "e", "emptyDir": {}}]}),
            pod(
                {
                    "volumes": [{"name": "logs", "hostPath": {"path": "/var/log/app"}}],
                    "containers": [
                        {
                            "name": "a",
                            "image": "x",
                            "volumeMounts": [{"name": "logs", "mountPath": "/l", "readOnly": True}],
                        }
                    ],
                }
            ),
        ],
    ),
    "GarrisonCapabilities": (
        {"allowedCapabilities": ["NET_BIND_SERVICE"], "requiredDropCapabilities": ["NET_RAW"]},
        [
            pod(sc(capabilities={"add": ["SYS_ADMIN"], "drop": ["ALL"]})["spec"]),
            pod(sc(capabilities={"add": ["NET_BIND_SERVICE"]})["spec"]),
        ],
        [
            pod(sc(capabilities={"add": ["CAP_NET_BIND_SERVICE"], "drop": ["ALL"]})["spec"]),
            pod(sc(capabilities={"drop": ["net_raw"]})["spec"]),
        ],
    ),
    "GarrisonSeccomp": (
        {"requireProfile": True},
        [pod(sc(seccompProfile={"type": "Unconfined"})["spec"]), pod()],
        [
            pod(sc(seccompProfile={"type": "RuntimeDefault"})["spec"]),
            pod(
                {
                    "securityContext": {
                        "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}
                    }
                }
            ),
        ],
    ),
    "GarrisonAppArmor": (
        {},
        [
            pod(annotations={"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}),
            pod(sc(appArmorProfile={"type": "Unconfined"})["spec"]),
            deployment(
                pod()["spec"], {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}
            ),
        ],
        [
            pod(),
            pod(
                annotations={
                    "container.apparmor.security.beta.kubernetes.io/app": "runtime/default"
                }
            ),
            pod(sc(appArmorProfile={"type": "Localhost", "localhostProfile": "k8s-app"})["spec"]),
        ],
    ),
    "GarrisonSELinux": (
        {},
        [
            pod(sc(seLinuxOptions={"type": "spc_t"})["spec"]),
            pod({"securityContext": {"seLinuxOptions": {"user": "root"}}}),
        ],
        [pod(), pod(sc(seLinuxOptions={"type": "container_t", "level": "s0:c1"})["spec"])],
    ),
    "GarrisonProcMount": (
        {},
        [pod(sc(procMount="Unmasked")["spec"])],
        [
            pod(),
            pod(sc(procMount="Default")["spec"]),
            pod({**sc(procMount="Unmasked")["spec"], "hostUsers": False}),
        ],
    ),
    "GarrisonSysctls": (
        {"allowedSysctls": ["net.ipv4.tcp_syncookies"]},
        [pod({"securityContext": {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}})],
        [
            pod(),
            pod(
                {
                    "securityContext": {
                        "sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]
                    }
                }
            ),
        ],
    ),
    "GarrisonHostProcess": (
        {},
        [
            pod({"securityContext": {"windowsOptions": {"hostProcess": True}}}),
            pod(sc(windowsOptions={"hostProcess": True})["spec"]),
        ],
        [pod(), pod(sc(windowsOptions={"hostProcess": False})["spec"])],
    ),
    "GarrisonHostProbes": (
        {},
        [
            pod(container(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}})["spec"]),
            pod(
                container(lifecycle={"preStop": {"tcpSocket": {"host": "metadata", "port": 80}}})[
                    "spec"
                ]
            ),
        ],
        [pod(), pod(container(readinessProbe={"httpGet": {"path": "/", "port": 80}})["spec"])],
    ),
    "GarrisonVolumeTypes": (
        {"allowedTypes": ["configMap", "emptyDir", "secret"]},
        [
            pod({"volumes": [{"name": "h", "hostPath": {"path": "/x"}}]}),
            pod({"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}]}),
        ],
        [
            pod(),
            pod(
                {
                    "volumes": [
                        {"name": "c", "configMap": {"name": "c"}},
                        {"name": "e", "emptyDir": {}},
                    ]
                }
            ),
        ],
    ),
    "GarrisonPrivilegeEscalation": (
        {},
        [pod(), pod(sc(allowPrivilegeEscalation=True)["spec"])],
        [pod(sc(allowPrivilegeEscalation=False)["spec"]), pod({"os": {"name": "windows"}})],
    ),
    "GarrisonRunAsNonRoot": (
        {},
        [
            pod(),
            pod(sc(runAsNonRoot=True, runAsUser=0)["spec"]),
            pod({**sc(runAsNonRoot=False)["spec"], "securityContext": {"runAsNonRoot": True}}),
        ],
        [
            pod({"securityContext": {"runAsNonRoot": True, "runAsUser": 1000}}),
            pod(sc(runAsNonRoot=True)["spec"]),
        ],
    ),
    "GarrisonAllowedImages": (
        {"imageRegex": "^registry\\.example/.+$"},
        [pod(container()["spec"] | {"containers": [{"name": "a", "image": "docker.io/nginx"}]})],
        [pod()],
    ),
    "GarrisonResourceLimits": (
        {"cpuLimit": "1", "memoryLimit": "1Gi"},
        [
            pod(),
            pod(container(resources={"limits": {"cpu": "2", "memory": "512Mi"}})["spec"]),
            pod(container(resources={"limits": {"cpu": "500m", "memory": "2G"}})["spec"]),
            pod(container(resources={"limits": {"memory": "1Gi"}})["spec"]),
        ],
        [
            pod(container(resources={"limits": {"cpu": "1", "memory": "1Gi"}})["spec"]),
            pod(container(resources={"limits": {"cpu": 1, "memory": "128Mi"}})["spec"]),
        ],
    ),
    "GarrisonReadOnlyRootFilesystem": (
        {},
        [pod(), pod(sc(readOnlyRootFilesystem=False)["spec"])],
        [pod(sc(readOnlyRootFilesystem=True)["spec"])],
    ),
    "GarrisonAutomountToken": (
        {},
        [pod(), pod({"automountServiceAccountToken": True})],
        [pod({"automountServiceAccountToken": False})],
    ),
    "GarrisonHttpsIngress": (
        {},
        [
            obj("Ingress", "networking.k8s.io/v1", spec={"rules": []}),
            obj("Ingress", "networking.k8s.io/v1", spec={"tls": [{"hosts": ["a"]}]}),
        ],
        [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {
                    "name": "x",
                    "namespace": "shop",
                    "annotations": {"kubernetes.io/ingress.allow-http": "false"},
                },
                "spec": {"tls": [{"hosts": ["a"], "secretName": "s"}]},
            }
        ],
    ),
    "GarrisonInternalLoadBalancer": (
        {},
        [obj("Service", spec={"type": "LoadBalancer"})],
        [
            obj("Service", spec={"type": "ClusterIP"}),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "x",
                    "namespace": "shop",
                    "annotations": {
                        "service.beta.kubernetes.io/azure-load-balancer-internal": "true"
                    },
                },
                "spec": {"type": "LoadBalancer"},
            },
        ],
    ),
    "GarrisonBlockDefaultNamespace": (
        {},
        [
            pod(namespace="default"),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"generateName": "c-", "namespace": "default"},
            },
        ],
        [pod()],
    ),
    "GarrisonRequiredLabels": (
        {"labels": [{"key": "owner", "allowedRegex": "^[a-z]+$"}]},
        [pod(), pod(labels={"owner": "Team-1"})],
        [pod(labels={"owner": "payments"})],
    ),
}


def policy(kind: str, parameters: dict[str, Any]) -> PolicySet:
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": kind,
        "metadata": {"name": "test"},
        "spec": {"parameters": parameters},
    }
    return load_policy_set([TEMPLATES[kind], constraint])


def test_every_template_has_cases_both_ways() -> None:
    assert set(CASES) == set(TEMPLATES)
    for kind, (_, fire, quiet) in CASES.items():
        assert fire and quiet, kind


@pytest.mark.parametrize("kind", sorted(CASES))
def test_fires(kind: str) -> None:
    parameters, fire, _ = CASES[kind]
    ps = policy(kind, parameters)
    for i, o in enumerate(fire):
        results = ps.review(as_request(o))
        assert results, (kind, i)
        assert not any(r.error for r in results), [r.msg for r in results]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_must_not_fire(kind: str) -> None:
    parameters, _, quiet = CASES[kind]
    ps = policy(kind, parameters)
    for i, o in enumerate(quiet):
        assert ps.review(as_request(o)) == [], (kind, i)


def test_pod_updates_are_not_rejudged() -> None:
    ps = policy("GarrisonPrivilegedContainer", {})
    request = as_request(pod(sc(privileged=True)["spec"]))
    request["operation"] = "UPDATE"
    assert ps.review(request) == []


@pytest.mark.parametrize("initiative", CATALOG.initiative_names())
def test_initiatives_load_and_pass_a_restricted_workload(initiative: str) -> None:
    objects = [*TEMPLATES.values(), *CATALOG.constraint_objects(initiative)]
    ps = load_policy_set(objects)
    assert ps.constraints
    ok = deployment(copy.deepcopy(RESTRICTED_OK))
    ok["metadata"]["labels"] = {"app.kubernetes.io/name": "app"}
    ok["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
    assert [r.msg for r in ps.review(as_request(ok))] == []
    bad = deployment(sc(privileged=True)["spec"])
    assert any(r.action == "deny" for r in ps.review(as_request(bad)))


def test_initiative_defaults_and_overrides() -> None:
    constraints = {
        c["metadata"]["name"]: c for c in CATALOG.constraint_objects("azure-kubernetes-builtins")
    }
    assert (
        constraints["azure-kubernetes-builtins-no-privileged"]["spec"]["enforcementAction"]
        == "deny"
    )
    assert (
        constraints["azure-kubernetes-builtins-host-namespaces"]["spec"]["enforcementAction"]
        == "dryrun"
    )
    assert "azure-kubernetes-builtins-allowed-images" not in constraints  # disabled by default
    assert (
        "kube-system"
        in constraints["azure-kubernetes-builtins-no-privileged"]["spec"]["match"][
            "excludedNamespaces"
        ]
    )
    over = CATALOG.constraint_objects(
        "azure-kubernetes-builtins", {"host-namespaces": "warn", "no-privileged": "disabled"}
    )
    names = {c["metadata"]["name"]: c for c in over}
    assert names["azure-kubernetes-builtins-host-namespaces"]["spec"]["enforcementAction"] == "warn"
    assert "azure-kubernetes-builtins-no-privileged" not in names


def test_excluded_namespaces_are_not_judged() -> None:
    objects = [*TEMPLATES.values(), *CATALOG.constraint_objects("pod-security-baseline")]
    ps = load_policy_set(objects)
    assert ps.review(as_request(pod(sc(privileged=True)["spec"], namespace="kube-system"))) == []
