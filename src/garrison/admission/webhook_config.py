"""The Validating (and Mutating) WebhookConfiguration that points a cluster at garrison.

Safe by default, the lessons of Gatekeeper's and Kyverno's outages: ``failurePolicy:
Ignore`` and a 3 s timeout, so a policy bug or a down webhook never stops the cluster;
kube-system, garrison's own namespace and namespaces labelled
``admission.garrison.dev/ignore`` are never sent; ``sideEffects: None`` so dry runs work.
"""

from __future__ import annotations

import base64
from typing import Any

import yaml

from garrison.admission.model import PolicyError

IGNORE_LABEL = "admission.garrison.dev/ignore"


def _webhook(
    name: str, path: str, namespace: str, service: str, ca_pem: bytes, timeout: int, policy: str
) -> dict[str, Any]:
    return {
        "name": name,
        "admissionReviewVersions": ["v1", "v1beta1"],
        "clientConfig": {
            "service": {"namespace": namespace, "name": service, "path": path, "port": 443},
            "caBundle": base64.b64encode(ca_pem).decode(),
        },
        "failurePolicy": policy,
        "timeoutSeconds": timeout,
        "sideEffects": "None",
        "matchPolicy": "Exact",
        "namespaceSelector": {
            "matchExpressions": [
                {"key": IGNORE_LABEL, "operator": "DoesNotExist"},
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": sorted({"kube-system", namespace}),
                },
            ]
        },
        "rules": [
            {
                "apiGroups": ["*"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["*", "pods/ephemeralcontainers", "pods/exec"],
                "scope": "*",
            }
        ],
    }


def webhook_configurations(
    *,
    namespace: str,
    service: str,
    ca_pem: bytes,
    timeout_seconds: int = 3,
    failure_policy: str = "Ignore",
    mutating: bool = False,
) -> str:
    if not 1 <= timeout_seconds <= 30:
        raise PolicyError("timeoutSeconds must be between 1 and 30")
    if failure_policy not in ("Ignore", "Fail"):
        raise PolicyError("failurePolicy must be Ignore or Fail")
    if b"BEGIN CERTIFICATE" not in ca_pem:
        raise PolicyError("the CA file is not a PEM certificate")
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "garrison-admission"},
            "webhooks": [
                _webhook(
                    "validation.admission.garrison.dev",
                    "/v1/admit",
                    namespace,
                    service,
                    ca_pem,
                    timeout_seconds,
                    failure_policy,
                )
            ],
        }
    ]
    if mutating:
        hook = _webhook(
            "mutation.admission.garrison.dev",
            "/v1/mutate",
            namespace,
            service,
            ca_pem,
            1,  # Gatekeeper's mutating default: mutation must never hold a request up
            failure_policy,
        )
        hook["reinvocationPolicy"] = "Never"
        hook["rules"][0]["resources"] = ["*"]
        docs.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "garrison-admission"},
                "webhooks": [hook],
            }
        )
    return yaml.safe_dump_all(docs, sort_keys=False)
