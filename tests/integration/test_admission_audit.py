"""The audit sweep against a stand-in API server (a kube-apiserver cannot run here).

The stand-in answers discovery (``/apis``, ``/api/v1``, ``/apis/apps/v1``) and paged lists
(``limit``/``continue``, items without apiVersion/kind, as kube-apiserver sends them),
checks the bearer token and can expire a continue token with 410 Gone.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from garrison.admission.audit import AuditSweep, KubeSource
from garrison.admission.builtins import Catalog
from garrison.admission.evaluate import load_policy_set
from garrison.kube import KubeConfig
from garrison.publisher.outbox import Outbox
from garrison.tls import issue_certificate
from tests.integration.admission_serve import post_review, serve_admission
from tests.integration.stand_in import JsonHandler, serve_https

pytestmark = pytest.mark.integration
TOKEN = "audit-token-9f8e7d"
GARRISON = [sys.executable, "-m", "garrison.cli"]

DISCOVERY = {
    "/apis": {
        "kind": "APIGroupList",
        "groups": [
            {
                "name": "apps",
                "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
            },
            {
                "name": "batch",
                "versions": [{"groupVersion": "batch/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "batch/v1", "version": "v1"},
            },
            {
                "name": "networking.k8s.io",
                "versions": [{"groupVersion": "networking.k8s.io/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "networking.k8s.io/v1", "version": "v1"},
            },
        ],
    },
    "/api/v1": {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "pods", "namespaced": True, "kind": "Pod", "verbs": ["get", "list", "watch"]},
            {"name": "pods/status", "namespaced": True, "kind": "Pod", "verbs": ["get"]},
            {
                "name": "namespaces",
                "namespaced": False,
                "kind": "Namespace",
                "verbs": ["get", "list"],
            },
            {"name": "bindings", "namespaced": True, "kind": "Binding", "verbs": ["create"]},
        ],
    },
    "/apis/apps/v1": {
        "kind": "APIResourceList",
        "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "namespaced": True, "kind": "Deployment", "verbs": ["list"]}
        ],
    },
    "/apis/networking.k8s.io/v1": {
        "kind": "APIResourceList",
        "groupVersion": "networking.k8s.io/v1",
        "resources": [
            {"name": "ingresses", "namespaced": True, "kind": "Ingress", "verbs": ["list", "watch"]}
        ],
    },
    "/apis/batch/v1": {
        "kind": "APIResourceList",
        "groupVersion": "batch/v1",
        "resources": [{"name": "jobs", "namespaced": True, "kind": "Job", "verbs": ["list"]}],
    },
}


def pod(i: int, privileged: bool) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"web-{i}",
            "namespace": "kube-system" if i == 0 else "shop",
            "uid": f"u{i}",
        },
        "spec": {
            "containers": [
                {"name": "web", "image": "nginx", "securityContext": {"privileged": privileged}}
            ]
        },
        "status": {"phase": "Running"},
    }


class StandIn:
    def __init__(self) -> None:
        self.items: dict[str, list[dict[str, Any]]] = {
            "/api/v1/pods": [pod(i, privileged=i % 2 == 0) for i in range(7)],
            "/api/v1/namespaces": [
                {"metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}}}
                for n in ("shop", "kube-system")
            ],
            "/apis/apps/v1/deployments": [],
            "/apis/batch/v1/jobs": [],
            "/apis/networking.k8s.io/v1/ingresses": [
                {
                    "metadata": {
                        "name": "shop",
                        "namespace": "shop",
                        "managedFields": [{"manager": "kubectl"}],
                    },
                    "spec": {"rules": [{"host": "shop.example.com"}]},
                }
            ],
        }
        self.requests: list[str] = []
        self.expire_continue = False


def handler(stand_in: StandIn) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            stand_in.requests.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._json(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
                return
            url = urlsplit(self.path)
            if url.path in DISCOVERY:
                self._json(200, DISCOVERY[url.path])
                return
            if url.path not in stand_in.items:
                self._json(404, {"kind": "Status", "code": 404})
                return
            query = parse_qs(url.query)
            limit = int(query.get("limit", ["500"])[0])
            start = int(query.get("continue", ["0"])[0])
            if start and stand_in.expire_continue:
                self._json(410, {"kind": "Status", "code": 410, "reason": "Expired"})
                return
            items = stand_in.items[url.path]
            page = items[start : start + limit]
            metadata: dict[str, Any] = {"resourceVersion": "42"}
            if start + limit < len(items):
                metadata["continue"] = str(start + limit)
            self._json(
                200, {"kind": "List", "apiVersion": "v1", "metadata": metadata, "items": page}
            )

    return Handler


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[StandIn, str, Path]]:
    stand_in = StandIn()
    with serve_https(tmp_path, handler(stand_in)) as (url, ca):
        yield stand_in, url, ca


def baseline_policy() -> Any:
    catalog = Catalog()
    return load_policy_set(
        [*catalog.template_objects(), *catalog.constraint_objects("pod-security-baseline")]
    )


def test_sweep_lists_only_constrained_kinds_in_pages(api: tuple[StandIn, str, Path]) -> None:
    stand_in, url, ca = api
    seen = []
    report = AuditSweep(
        baseline_policy(),
        KubeSource(KubeConfig(url, TOKEN, ca)),
        cluster="prod",
        chunk=2,
        violations_limit=1,
        sink=seen.append,
    ).run()
    assert report.errors == []
    assert report.objects == 2 + 7  # namespaces, then pods (deployments and jobs are empty)
    pod_pages = [r for r in stand_in.requests if r.startswith("/api/v1/pods")]
    assert pod_pages == [
        "/api/v1/pods?limit=2",
        "/api/v1/pods?limit=2&continue=2",
        "/api/v1/pods?limit=2&continue=4",
        "/api/v1/pods?limit=2&continue=6",
    ]
    assert not any("bindings" in r for r in stand_in.requests)  # not listable, never asked
    privileged = report.constraints[
        ("GarrisonPrivilegedContainer", "pod-security-baseline-privileged")
    ]
    # web-2, web-4, web-6 (web-0 is privileged too, but kube-system is excluded)
    assert privileged.total == 3
    assert len(privileged.violations) == 1  # the cap; every one still left through the sink
    assert sorted(
        f.object.name for f in seen if f.policy_kind == "GarrisonPrivilegedContainer"
    ) == ["web-2", "web-4", "web-6"]
    finding = privileged.violations[0]
    assert (
        finding.object.kind == "Pod"
        and finding.object.version == "v1"
        and finding.cluster == "prod"
    )
    assert finding.audit_id == report.audit_id and finding.action == "deny"


def test_expired_continue_token_and_refused_token_are_reported(
    api: tuple[StandIn, str, Path],
) -> None:
    stand_in, url, ca = api
    stand_in.expire_continue = True
    report = AuditSweep(baseline_policy(), KubeSource(KubeConfig(url, TOKEN, ca)), chunk=2).run()
    assert any("410 Gone" in e for e in report.errors)
    refused = AuditSweep(baseline_policy(), KubeSource(KubeConfig(url, "wrong", ca))).run()
    assert refused.errors and "refused the token (401)" in refused.errors[0]
    assert "wrong" not in refused.errors[0]


def run_audit(url: str, token: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``garrison admission audit`` of the PSS baseline initiative against ``url``."""
    command = [*GARRISON, "admission", "audit", "--initiative", "pod-security-baseline"]
    command += ["--api-server", url, "--token-file", str(token), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_audit_command_prints_findings_and_fills_the_outbox(
    api: tuple[StandIn, str, Path], tmp_path: Path
) -> None:
    _, url, ca = api
    token = tmp_path / "token"
    token.write_text(TOKEN)
    outbox_path = tmp_path / "outbox.db"
    result = run_audit(
        url,
        token,
        "--ca",
        str(ca),
        "--cluster",
        "prod",
        "--format",
        "jsonl",
        "--outbox",
        str(outbox_path),
        "--chunk-size",
        "3",
    )
    assert result.returncode == 0, result.stderr
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    assert {f["object"]["name"] for f in findings} == {"web-2", "web-4", "web-6"}
    assert all(f["source"] == "admission-audit" and f["cluster"] == "prod" for f in findings)
    assert "9 objects, 12 constraints, 3 violations, 0 errors" in result.stderr
    outbox = Outbox(outbox_path)
    try:
        assert outbox.stats().records == 3
    finally:
        outbox.close()
    refused = run_audit(url, tmp_path / "missing", "--ca", str(ca))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr


def test_webhook_syncs_the_kinds_templates_declare(
    api: tuple[StandIn, str, Path], tmp_path: Path
) -> None:
    """uniqueingresshost reads data.inventory: the Ingress already in the cluster must be seen."""
    from garrison.tls import client_context
    from tests.conftest import corpus
    from tests.integration.test_admission_webhook import admission_review

    stand_in, url, ca = api
    library = corpus("gatekeeper-library-general") / "library" / "general" / "uniqueingresshost"
    constraint = next((library / "samples").glob("*/constraint.yaml"))
    token = tmp_path / "token"
    token.write_text(TOKEN)
    files = issue_certificate(tmp_path, tmp_path, "webhook", hosts=["127.0.0.1"])
    with serve_admission(
        files.cert,
        files.key,
        tmp_path / "webhook.log",
        "--policy",
        str(library / "template.yaml"),
        "--policy",
        str(constraint),
        "--api-server",
        url,
        "--token-file",
        str(token),
        "--ca",
        str(ca),
        "--sync-interval",
        "0.3",
    ) as serving:
        ingress = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "copy", "namespace": "other"},
            "spec": {"rules": [{"host": "shop.example.com"}]},
        }

        def answer() -> dict[str, Any]:
            return post_review(serving.url, client_context(ca), admission_review(ingress))

        deadline = time.monotonic() + 15
        while answer()["allowed"]:
            assert time.monotonic() < deadline, "inventory never synced"
            time.sleep(0.2)
        assert (
            "ingress host conflicts with an existing ingress <shop.example.com>"
            in answer()["status"]["message"]
        )
        assert any(r.startswith("/apis/networking.k8s.io/v1/ingresses") for r in stand_in.requests)
        assert not any(
            r.startswith("/api/v1/pods") for r in stand_in.requests
        )  # only what is needed
        stand_in.items[
            "/apis/networking.k8s.io/v1/ingresses"
        ] = []  # deleted: the next list drops it
        deadline = time.monotonic() + 15
        while not answer()["allowed"]:
            assert time.monotonic() < deadline, "inventory never refreshed"
            time.sleep(0.2)


def test_an_unreadable_token_file_is_one_clear_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"
    result = run_audit("https://127.0.0.1:1", missing)
    assert result.returncode == 2, result.stderr
    assert f"cannot read the API token {missing}" in result.stderr
    assert "Traceback" not in result.stderr
