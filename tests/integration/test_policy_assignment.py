"""Central assignment: policies set on the backend, pulled and enforced by a cluster's webhook."""

from __future__ import annotations

import json
import os
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
from bench.servers import garrison_up

from garrison.tls import client_context, issue_certificate
from tests.integration.admission_serve import post_review, serve_admission
from tests.integration.test_admission_webhook import admission_review, pod

pytestmark = pytest.mark.integration
GARRISON = [sys.executable, "-m", "garrison.cli"]


@dataclass
class Up:
    home: Path
    api: str
    ca: Path
    admin_token: str
    cluster_token: str

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "GARRISON_HOME": str(self.home)}
        return subprocess.run(
            [*GARRISON, *args], capture_output=True, text=True, timeout=120, env=env, check=False
        )

    def get(self, path: str, token: str, etag: str = "") -> tuple[int, Any, str]:
        headers = {"Authorization": f"Bearer {token}"}
        if etag:
            headers["If-None-Match"] = etag
        request = urllib.request.Request(self.api + path, headers=headers)
        try:
            with urllib.request.urlopen(request, context=client_context(self.ca), timeout=10) as r:
                return r.status, json.load(r), r.headers.get("ETag", "")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            return exc.code, json.loads(body) if body else None, exc.headers.get("ETag", "")

    def put(self, path: str, body: bytes) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.api + path,
            data=body,
            method="PUT",
            headers={
                "Authorization": f"Bearer {self.admin_token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, context=client_context(self.ca), timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    home = tmp_path_factory.mktemp("up")
    with garrison_up(home, "--no-sensor") as server:
        yield Up(home, server.api, home / "tls" / "ca.crt", server.api_token, server.cluster_token)


def test_assignment_api(up: Up) -> None:
    assert up.get("/v1/policy", up.cluster_token)[0] == 404  # nothing assigned yet
    body = {
        "initiatives": ["pod-security-baseline"],
        "effects": {"pod-security-baseline/host-ports": "warn"},
    }
    status, answer = up.put("/v1/clusters/local/policy", json.dumps(body).encode())
    assert status == 200 and answer["version"] >= 1
    status, got, etag = up.get("/v1/policy", up.cluster_token)
    assert (
        status == 200
        and got["initiatives"] == ["pod-security-baseline"]
        and got["version"] == answer["version"]
    )
    assert up.get("/v1/policy", up.cluster_token, etag)[0] == 304
    assert up.get("/v1/policy", "gct_wrong")[0] == 401
    assert (
        up.get("/v1/clusters/local/policy", up.cluster_token)[0] == 401
    )  # agents cannot read others'
    assert up.get("/v1/clusters/local/policy", up.admin_token)[0] == 200
    for bad in (
        b"{",
        b'{"effects": {"nope": "deny"}}',
        b'{"objects": [{"kind": 1}]}',
        b'{"initiatives": "x"}',
    ):
        assert up.put("/v1/clusters/local/policy", bad)[0] == 400, bad
    assert up.put("/v1/clusters/nope/policy", b"{}")[0] == 404


def test_assign_cli_refuses_what_would_not_load(up: Up, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: NoSuchKind\nmetadata: {name: x}\n"
    )
    result = up.cli("policy", "assign", "local", "--policy", str(bad))
    assert result.returncode == 2 and "no ConstraintTemplate defines" in result.stderr
    result = up.cli("policy", "assign", "local", "--initiative", "nope")
    assert result.returncode == 2 and "unknown initiative" in result.stderr


def test_webhook_enforces_the_assignment_and_follows_changes(up: Up, tmp_path: Path) -> None:
    result = up.cli("policy", "assign", "local", "--initiative", "pod-security-baseline")
    assert result.returncode == 0, result.stderr
    assert "policy assignment version" in result.stdout
    token_file = tmp_path / "cluster-token"
    token_file.write_text(up.cluster_token)
    files = issue_certificate(up.home / "tls", tmp_path, "webhook", hosts=["127.0.0.1"])
    with serve_admission(
        files.cert,
        files.key,
        tmp_path / "webhook.log",
        "--reload-interval",
        "0.2",
        "--assignment-url",
        up.api,
        "--cluster-token-file",
        str(token_file),
        "--backend-ca",
        str(up.ca),
    ) as serving:
        assert serving.constraints == 12

        def allowed(namespace: str) -> bool:
            review = admission_review(pod(namespace, privileged=True))
            return bool(post_review(serving.url, client_context(up.ca), review)["allowed"])

        assert not allowed("shop")
        result = up.cli(
            "policy",
            "assign",
            "local",
            "--initiative",
            "pod-security-baseline",
            "--exempt-namespace",
            "shop",
        )
        assert result.returncode == 0, result.stderr
        deadline = time.monotonic() + 15
        while not allowed("shop"):
            assert time.monotonic() < deadline, "assignment change not picked up"
            time.sleep(0.2)
        assert not allowed("web")
        # a revoked credential (the backend refuses the pull) keeps the running set
        assert up.cli("clusters", "revoke", "local").returncode == 0
        time.sleep(0.5)
        assert not allowed("web") and allowed("shop")
        assert serving.process.poll() is None
