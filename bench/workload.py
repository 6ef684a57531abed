"""A realistic audit stream: Falco's recorded events plus the traffic that dominates real clusters.

Real API servers log mostly node lease renewals, controller reads and watches; attacks and
workload changes are rare. The mix below follows that shape and is deterministic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared"
FALCO_EVENTS = SHARED / "corpora" / "k8s-audit-falco" / "events"
FALCO_RULES = SHARED / "corpora" / "k8s-audit-falco" / "rules" / "k8s_audit_rules.yaml"


def _event(
    i: int, verb: str, resource: str, ns: str, name: str, user: str, code: int = 200, **extra: Any
) -> dict[str, Any]:
    ref = {"resource": resource, "namespace": ns, "name": name, "apiVersion": "v1"}
    if not ns:
        del ref["namespace"]
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"bench-{i:08d}",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/{ns}/{resource}/{name}",
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.12"],
        "userAgent": "kube-controller-manager/v1.31.0 (linux/amd64)",
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": "2026-12-01T10:00:00.000000Z",
        "stageTimestamp": "2026-12-01T10:00:00.002000Z",
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": "",
        },
        **extra,
    }


def recorded_events() -> list[dict[str, Any]]:
    out = []
    for path in sorted(FALCO_EVENTS.glob("*.json")):
        for line in path.read_text().splitlines():
            data = json.loads(line) if line.strip() else None
            if isinstance(data, dict) and "auditID" in data:
                out.append(data)
    return out


def audit_stream(count: int, seed: int = 7, recorded_share: float = 0.20) -> list[bytes]:
    """``count`` events as JSON lines (bytes), in a fixed pseudo-random order.

    ``recorded_share`` of them replay Falco's recorded events (workload changes, RBAC,
    exec, attacks: most raise alerts); the rest is routine control-plane traffic.
    """
    rng = random.Random(seed)
    routine = 1.0 - recorded_share
    recorded = recorded_events()
    lines: list[bytes] = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.35 * routine / 0.80:
            node = f"node-{rng.randrange(200)}"
            data = _event(i, "update", "leases", "kube-node-lease", node, f"system:node:{node}")
        elif roll < 0.55 * routine / 0.80:
            resource = rng.choice(
                ["pods", "configmaps", "endpoints", "services", "nodes", "secrets"]
            )
            data = _event(
                i,
                rng.choice(["get", "list", "watch"]),
                resource,
                rng.choice(["default", "kube-system", "shop"]),
                "x",
                "system:serviceaccount:kube-system:generic-garbage-collector",
            )
        elif roll < 0.70 * routine / 0.80:
            data = _event(i, "create", "events", "shop", f"cart.{i:x}", "system:node:node-3", 201)
        elif roll < routine:
            data = _event(
                i,
                "patch",
                "pods",
                "shop",
                f"cart-{i % 50}",
                "system:node:node-3",
                200,
                level="Request",
                requestObject={"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            )
        else:
            data = dict(rng.choice(recorded))
            data["auditID"] = f"bench-{i:08d}"
        lines.append(json.dumps(data, separators=(",", ":")).encode())
    return lines
