"""`garrison admission serve` over real HTTPS: AdmissionReview round trips and every bad path."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from garrison.tls import client_context, ensure_ca, issue_certificate
from tests.integration.admission_serve import serve_admission

pytestmark = pytest.mark.integration
GARRISON = [sys.executable, "-m", "garrison.cli"]


def template(name: str, kind: str, rego: str) -> dict[str, Any]:
    return {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": name},
        "spec": {
            "crd": {"spec": {"names": {"kind": kind}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}],
        },
    }


def constraint(
    kind: str, name: str, kinds: list[str], action: str = "deny", **params: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "enforcementAction": action,
        "match": {"kinds": [{"apiGroups": [""], "kinds": kinds}]},
    }
    if params:
        spec["parameters"] = params
    return {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


LABELS = 'package k8slabels\nviolation[{"msg": msg}] {\n  not input.review.object.metadata.labels[input.parameters.key]\n  msg := sprintf("label %v is required", [input.parameters.key])\n}\n'
# Conflicting values for one complete rule: an evaluation error, every time.
BROKEN = (
    'package broken\nf := 1 { true }\nf := 2 { true }\nviolation[{"msg": "never"}] { f == 3 }\n'
)
# A policy that takes far longer than any deadline.
SLOW = 'package slow\nviolation[{"msg": "slow"}] { count([x | x := numbers.range(1, 30000000)[_]]) < 0 }\n'


def policies() -> list[dict[str, Any]]:
    return [
        template("k8slabels", "K8sLabels", LABELS),
        constraint("K8sLabels", "owner-warn", ["Service"], "warn", key="owner"),
        constraint("K8sLabels", "team-dryrun", ["Service"], "dryrun", key="team"),
        template("broken", "Broken", BROKEN),
        constraint("Broken", "broken", ["ConfigMap"]),
        template("slow", "Slow", SLOW),
        constraint("Slow", "slow", ["Secret"]),
        {
            "apiVersion": "mutations.gatekeeper.sh/v1",
            "kind": "AssignMetadata",
            "metadata": {"name": "owner-label"},
            "spec": {
                "location": "metadata.labels.owner",
                "parameters": {"assign": {"value": "platform"}},
            },
        },
        {
            "apiVersion": "mutations.gatekeeper.sh/v1alpha1",
            "kind": "AssignImage",
            "metadata": {"name": "mirror-images"},
            "spec": {
                "applyTo": [{"groups": [""], "kinds": ["Pod"], "versions": ["v1"]}],
                "location": "spec.containers[name: *].image",
                "parameters": {"assignDomain": "mirror.example.com"},
            },
        },
    ]


@dataclass
class Webhook:
    url: str
    context: ssl.SSLContext
    process: subprocess.Popen[str]
    tls_dir: Path
    policy_dir: Path

    def post(
        self, body: bytes, path: str = "/v1/admit", content_type: str = "application/json"
    ) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def review(self, obj: dict[str, Any], **request: Any) -> dict[str, Any]:
        status, body = self.post(json.dumps(admission_review(obj, **request)).encode())
        assert status == 200, body
        return body  # type: ignore[no-any-return]


def admission_review(
    obj: dict[str, Any], api_version: str = "admission.k8s.io/v1", **extra: Any
) -> dict[str, Any]:
    group, _, version = obj["apiVersion"].rpartition("/")
    request = {
        "uid": extra.pop("uid", "705ab4f5-6393-11e8-b7cc-42010a800002"),
        "kind": {"group": group, "version": version, "kind": obj["kind"]},
        "resource": {"group": group, "version": version, "resource": obj["kind"].lower() + "s"},
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"].get("namespace", ""),
        "operation": "CREATE",
        "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": None,
        "dryRun": False,
        **extra,
    }
    return {"apiVersion": api_version, "kind": "AdmissionReview", "request": request}


def pod(namespace: str = "shop", privileged: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "securityContext": {"privileged": privileged},
                }
            ]
        },
    }


def simple(kind: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "shop", "labels": labels or {}},
    }


def start(tmp_path: Path, *extra: str) -> Iterator[Webhook]:
    tls_dir = tmp_path / "tls"
    ensure_ca(tls_dir)
    files = issue_certificate(tls_dir, tls_dir, "webhook", hosts=["127.0.0.1"])
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "policies.yaml").write_text(yaml.safe_dump_all(policies()))
    with serve_admission(
        files.cert,
        files.key,
        tmp_path / "webhook.log",
        "--policy",
        str(policy_dir),
        "--initiative",
        "pod-security-baseline",
        "--deadline",
        "1.0",
        "--reload-interval",
        "0.2",
        *extra,
    ) as serving:
        yield Webhook(serving.url, client_context(files.ca), serving.process, tls_dir, policy_dir)


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    yield from start(tmp_path_factory.mktemp("webhook"))


@pytest.fixture(scope="module")
def failing_webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    yield from start(tmp_path_factory.mktemp("webhook-fail"), "--failure-mode", "fail")


def test_deny_in_gatekeeper_format_with_uid_echoed(webhook: Webhook) -> None:
    body = webhook.review(pod(privileged=True), uid="u-1")
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == "u-1"
    assert response["allowed"] is False
    assert response["status"]["code"] == 403 and response["status"]["reason"] == "Forbidden"
    assert (
        response["status"]["message"]
        == "[pod-security-baseline-privileged] privileged container is not allowed: web"
    )


def test_allowed_pod(webhook: Webhook) -> None:
    response = webhook.review(pod())["response"]
    assert response == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


def test_v1beta1_is_answered_in_v1beta1(webhook: Webhook) -> None:
    body = webhook.review(pod(privileged=True), api_version="admission.k8s.io/v1beta1")
    assert body["apiVersion"] == "admission.k8s.io/v1beta1"
    assert body["response"]["allowed"] is False


def test_warn_gives_warnings_and_dryrun_only_counts(webhook: Webhook) -> None:
    response = webhook.review(simple("Service"))["response"]
    assert response["allowed"] is True
    assert response["warnings"] == ["[owner-warn] label owner is required"]
    assert response["status"]["code"] == 299
    assert webhook.review(simple("Service", {"owner": "a"}))["response"] == {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "allowed": True,
    }


def test_dry_run_requests_are_judged_the_same(webhook: Webhook) -> None:
    assert webhook.review(pod(privileged=True), dryRun=True)["response"]["allowed"] is False


def test_exempt_namespace_and_own_service_account(webhook: Webhook) -> None:
    assert webhook.review(pod("kube-system", privileged=True))["response"]["allowed"] is True
    own = {"username": "system:serviceaccount:garrison:garrison-admission"}
    assert webhook.review(pod(privileged=True), userInfo=own)["response"]["allowed"] is True


def test_malformed_reviews_get_400_and_a_clear_message(webhook: Webhook) -> None:
    cases = {
        b"": "empty body",
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "Admiss': "malformed JSON",
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "\xff\xfe"}': "malformed JSON",
        b'{"apiVersion": "admission.k8s.io/v1", "kind": NaN}': "malformed JSON",
        b"[1, 2]": "not a JSON object",
        b'{"request": ' + b"[" * 5000 + b"]" * 5000 + b"}": "nested too deeply",
        b'{"apiVersion": "v1", "kind": "Pod"}': "expected kind AdmissionReview",
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}': "no request object",
        json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {"kind": {"kind": "Pod"}},
            }
        ).encode(): "uid is missing",
        json.dumps(
            admission_review(pod()) | {"request": {"uid": "x", "kind": "Pod"}}
        ).encode(): "request.kind",
    }
    for body, message in cases.items():
        status, text = webhook.post(body)
        assert status == 400, body
        assert message in text, (body, text)
    status, text = webhook.post(b"{}", content_type="text/plain")
    assert status == 415 and "application/json" in text
    assert webhook.review(pod())["response"]["allowed"] is True  # still serving


def test_oversized_review_is_refused(webhook: Webhook) -> None:
    review = admission_review(pod())
    review["request"]["object"]["metadata"]["annotations"] = {"big": "x" * (9 * 1024 * 1024)}
    status, _ = webhook.post(json.dumps(review).encode())
    assert status == 413
    assert webhook.review(pod())["response"]["allowed"] is True


def test_policy_error_with_failure_mode_ignore_allows_with_a_warning(webhook: Webhook) -> None:
    response = webhook.review(simple("ConfigMap"))["response"]
    assert response["allowed"] is True
    assert response["warnings"] == ["[broken] policy error, allowed (failure mode ignore)"]


def test_policy_error_with_failure_mode_fail_denies(failing_webhook: Webhook) -> None:
    response = failing_webhook.review(simple("ConfigMap"))["response"]
    assert response["allowed"] is False
    assert response["status"]["message"].startswith("[broken] broken:")


def test_deadline_answers_by_failure_mode_and_the_next_review_works(webhook: Webhook) -> None:
    started = time.monotonic()
    response = webhook.review(simple("Secret"))["response"]
    elapsed = time.monotonic() - started
    assert response["allowed"] is True
    assert "could not evaluate policies" in response["warnings"][0]
    assert elapsed < 5, elapsed
    # the worker is replaced behind the answer: policies apply again once it is up
    assert wait_denied(webhook, pod(privileged=True))


def test_deadline_with_failure_mode_fail_denies(failing_webhook: Webhook) -> None:
    response = failing_webhook.review(simple("Secret"))["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert "could not evaluate policies" in response["status"]["message"]


def test_apiserver_timeout_parameter_shortens_the_deadline(webhook: Webhook) -> None:
    body = json.dumps(admission_review(simple("Secret"))).encode()
    started = time.monotonic()
    status, answer = webhook.post(body, path="/v1/admit?timeout=500ms")
    assert status == 200 and answer["response"]["allowed"] is True
    assert time.monotonic() - started < 1.0  # 85 % of the API server's 500 ms, not our 1 s


def test_mutation_returns_a_json_patch(webhook: Webhook) -> None:
    status, body = webhook.post(json.dumps(admission_review(pod())).encode(), path="/v1/mutate")
    assert status == 200
    response = body["response"]
    assert response["allowed"] is True and response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    image = {
        "op": "replace",
        "path": "/spec/containers/0/image",
        "value": "mirror.example.com/nginx:1.27",
    }
    assert patch == [
        {"op": "add", "path": "/metadata/labels", "value": {"owner": "platform"}},
        image,
    ]
    labelled = pod()
    labelled["metadata"]["labels"] = {"owner": "someone"}
    labelled["spec"]["containers"][0]["image"] = image["value"]
    status, body = webhook.post(json.dumps(admission_review(labelled)).encode(), path="/v1/mutate")
    assert "patch" not in body["response"]  # converged: nothing left to change


def test_metrics_count_decisions(webhook: Webhook) -> None:
    with urllib.request.urlopen(webhook.url + "/metrics", context=webhook.context, timeout=5) as r:
        text = r.read().decode()
    assert (
        'garrison_admission_requests_total{decision="denied",dry_run="false",endpoint="validate"}'
        in text
    )
    assert "garrison_admission_failures_total" in text


def _peer_serial(url: str, context: ssl.SSLContext) -> int:
    from cryptography import x509

    host, port = url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_certificate_rotation_and_policy_reload_without_restart(tmp_path: Path) -> None:
    for hook in start(tmp_path):
        first = _peer_serial(hook.url, hook.context)
        staging = tmp_path / "staging"
        staging.mkdir()
        new = issue_certificate(hook.tls_dir, staging, "webhook", hosts=["127.0.0.1"])
        shutil.copy(new.key, hook.tls_dir / "webhook.key")
        shutil.copy(new.cert, hook.tls_dir / "webhook.crt")
        deadline = time.monotonic() + 10
        while _peer_serial(hook.url, hook.context) == first:
            assert time.monotonic() < deadline, "certificate not reloaded"
            time.sleep(0.1)
        assert webhook_allowed(hook, simple("Service", {"owner": "a"}))
        # a new constraint file: enforced without a restart
        (hook.policy_dir / "extra.yaml").write_text(
            yaml.safe_dump(constraint("K8sLabels", "owner-deny", ["Service"], "deny", key="owner"))
        )
        deadline = time.monotonic() + 10
        while webhook_allowed(hook, simple("Service")):
            assert time.monotonic() < deadline, "policies not reloaded"
            time.sleep(0.1)
        # a broken policy file is refused; the running set stays
        (hook.policy_dir / "bad.yaml").write_text("kind: [")
        time.sleep(1.0)
        assert not webhook_allowed(hook, simple("Service"))
        assert hook.process.poll() is None


def webhook_allowed(hook: Webhook, obj: dict[str, Any]) -> bool:
    return bool(hook.review(obj)["response"]["allowed"])


def test_overload_is_answered_by_the_deadline_not_queued(webhook: Webhook) -> None:
    """Reviews queued behind a stuck evaluation get the failure mode by their deadline."""
    import concurrent.futures

    def timed(obj: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        started = time.monotonic()
        response = webhook.review(obj)["response"]
        return time.monotonic() - started, response

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(timed, [simple("Secret")] * 4))
    for elapsed, response in answers:
        assert response["allowed"] is True
        assert "could not evaluate policies" in response["warnings"][0]
        assert elapsed < 2.0, elapsed  # the 1 s deadline, plus scheduling
    assert wait_denied(webhook, pod(privileged=True))  # after the restart
    with urllib.request.urlopen(webhook.url + "/metrics", context=webhook.context, timeout=5) as r:
        assert 'garrison_admission_failures_total{cause="overloaded"}' in r.read().decode()


def wait_denied(hook: Webhook, obj: dict[str, Any], seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if hook.review(obj)["response"]["allowed"] is False:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    yield from start(tmp_path_factory.mktemp("two-workers"), "--workers", "2")


def test_a_second_worker_answers_while_the_first_is_stuck(two_workers: Webhook) -> None:
    import concurrent.futures

    finished: list[str] = []

    def review(name: str, obj: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = two_workers.review(obj)["response"]
        finished.append(name)
        return response

    assert wait_denied(two_workers, pod(privileged=True))  # both workers up
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        stuck = pool.submit(review, "slow", simple("Secret"))  # loops past its 1 s deadline
        time.sleep(0.2)
        judged = pool.submit(review, "pod", pod(privileged=True))
        assert judged.result()["allowed"] is False  # judged by the other worker
        assert "could not evaluate policies" in stuck.result()["warnings"][0]
    assert finished == ["pod", "slow"]
    assert wait_denied(two_workers, pod(privileged=True))  # the stuck one was replaced


def test_worker_count_is_checked(tmp_path: Path) -> None:
    result = subprocess.run(
        [*GARRISON, "admission", "serve", "--tls-cert", "x", "--tls-key", "y", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "--workers must be 1 to 64" in result.stderr


def test_result_cache_size_is_checked() -> None:
    args = ["admission", "serve", "--tls-cert", "x", "--tls-key", "y", "--result-cache", "-1"]
    result = subprocess.run(
        [*GARRISON, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and "--result-cache must be 0 to 1000000" in result.stderr
