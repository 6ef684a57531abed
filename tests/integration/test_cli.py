"""The ``garrison`` command as users and scripts run it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from garrison.content import CONTENT_DIR
from garrison.events.audit import audit_event_to_builtins
from garrison.tls import client_context
from tests.conftest import audit_event, corpus, pod

pytestmark = pytest.mark.integration
GARRISON = [sys.executable, "-m", "garrison.cli"]


def run(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GARRISON, *args],
        input=stdin.decode() if stdin else None,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def log_file(tmp_path: Path) -> Path:
    lines = [
        json.dumps(audit_event_to_builtins(audit_event(request_object=pod(privileged=True)))),
        "{truncated",
        json.dumps(audit_event_to_builtins(audit_event("get", "pods", code=200))),
    ]
    path = tmp_path / "audit.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_audit_analyze_json_lines(tmp_path: Path) -> None:
    result = run(
        "audit", "analyze", "--format", "json", "--cluster", "prod", str(log_file(tmp_path))
    )
    assert result.returncode == 0
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["rule_id"] for a in alerts] == ["k8s_privileged_container"]
    first = alerts[0]
    for key in ("rule", "severity", "priority", "output", "time", "audit_id", "mitre", "cluster"):
        assert first[key], key
    assert first["cluster"] == "prod" and "T1611" in first["mitre"]["techniques"]
    assert ":2: malformed JSON" in result.stderr
    assert "2 events analyzed, 1 alerts, 1 input items rejected" in result.stderr


def test_audit_analyze_stdin_and_table(tmp_path: Path) -> None:
    data = (CONTENT_DIR / "examples" / "privileged-pod.json").read_bytes()
    result = run("audit", "analyze", "-", stdin=data)
    assert result.returncode == 0
    assert "Privileged container detected" in result.stdout and "SEVERITY" in result.stdout


def test_audit_analyze_with_falco_rules_only() -> None:
    root = corpus("k8s-audit-falco")
    result = run(
        "audit",
        "analyze",
        "--no-default-rules",
        "--format",
        "json",
        "--rules",
        str(root / "rules" / "k8s_audit_rules.yaml"),
        str(root / "events" / "create_nginx_pod_privileged.json"),
    )
    assert result.returncode == 0
    rules = {json.loads(line)["rule"] for line in result.stdout.splitlines()}
    assert "Create Privileged Pod" in rules


def test_audit_analyze_bad_rules_file(tmp_path: Path) -> None:
    rules = tmp_path / "bad.yaml"
    rules.write_text(
        "- rule: X\n  condition: ka.verb = \n  output: o\n  priority: INFO\n  source: k8s_audit\n"
    )
    result = run("audit", "analyze", "--rules", str(rules), str(log_file(tmp_path)))
    assert result.returncode == 1 and f"{rules}:1 (X)" in result.stderr


def test_rules_check_reports_every_error_with_location(tmp_path: Path) -> None:
    rules = tmp_path / "r.yaml"
    rules.write_text(
        "- rule: A\n  condition: ka.nope = 1\n  output: o\n  priority: INFO\n  source: k8s_audit\n"
        "- rule: B\n  condition: missing_macro\n  output: o\n  priority: INFO\n  source: k8s_audit\n"
    )
    result = run("rules", "check", str(rules))
    assert result.returncode == 1
    assert f"{rules}:1 (A): field 'ka.nope' is not provided by source 'k8s_audit'" in result.stderr
    assert f"{rules}:6 (B)" in result.stderr and "2 errors" in result.stdout


def test_rules_check_passes_on_the_shipped_packs() -> None:
    root = corpus("k8s-audit-falco")
    files = [
        str(root / "rules" / "k8s_audit_rules.yaml"),
        *(str(p) for p in sorted((CONTENT_DIR).rglob("*.yaml")) if "policies" not in p.parts),
    ]
    result = run("rules", "check", *files)
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"^\d+ rules \(\d+ k8s_audit, \d+ syscall\), \d+ macros, \d+ lists loaded; "
        r"\d+ rules compiled; 0 errors",
        result.stdout,
    )


def test_rules_check_reports_what_falco_stable_rules_need() -> None:
    result = run("rules", "check", str(corpus("falco-rules") / "falco_rules.yaml"))
    assert result.returncode == 1  # three rules need what the sensor does not carry
    assert "25 rules (25 syscall)" in result.stdout and "22 rules compiled" in result.stdout
    assert "field 'proc.cwd' is not carried" in result.stderr
    assert "(symlink, symlinkat)" in result.stderr


def test_intel_tor_list(tmp_path: Path) -> None:
    source = tmp_path / "exits.txt"
    source.write_text("# exits\n198.51.100.7\nnot-an-ip\n2001:db8::1\n")
    result = run("intel", "tor-list", str(source))
    assert result.returncode == 0 and "not an IP address" in result.stderr
    out = tmp_path / "tor.yaml"
    out.write_text(result.stdout)
    event = audit_event_to_builtins(
        audit_event("get", "pods", code=200, source_ips=["198.51.100.7"])
    )
    log = tmp_path / "a.log"
    log.write_text(json.dumps(event) + "\n")
    analyzed = run("audit", "analyze", "--format", "json", "--rules", str(out), str(log))
    assert "k8s_proxy_ip" in analyzed.stdout


def test_up_runs_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "GARRISON_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*GARRISON, "up", "--api-port", "0", "--audit-port", "0", "--no-sensor"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        output = ""
        deadline = time.monotonic() + 30
        while "Ctrl-C stops garrison" not in output and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output += line
        match = re.search(r"audit webhook\s+(https://\S+)", output)
        assert match, output
        kubeconfig = (home / "audit-webhook.kubeconfig").read_text()
        assert match.group(1) in kubeconfig and (home / "audit-policy.yaml").exists()
        assert oct((home / "client.json").stat().st_mode & 0o777) == "0o600"
        token = re.search(r"token: (\S+)", kubeconfig).group(1)  # type: ignore[union-attr]
        request = urllib.request.Request(
            match.group(1),
            data=(CONTENT_DIR / "examples" / "privileged-pod.json").read_bytes(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(
            request, context=client_context(home / "tls" / "ca.crt")
        ) as response:
            assert json.load(response)["accepted"] == 1
        rules: set[str] = set()
        for _ in range(50):
            listed = run("alerts", "list", "--format", "json", env={"GARRISON_HOME": str(home)})
            rules = {json.loads(line)["rule_id"] for line in listed.stdout.splitlines()}
            if rules:
                break
            time.sleep(0.1)
        assert "k8s_privileged_container" in rules
        assert token not in output  # the agent token is never printed
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()
    assert code == 0


def test_alerts_list_without_a_reachable_backend(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "client.json").write_text(
        json.dumps(
            {"url": "https://127.0.0.1:9", "token": "gat_x", "ca": str(tmp_path / "none.crt")}
        )
    )
    result = run("alerts", "list", env={"GARRISON_HOME": str(home)})
    assert (
        result.returncode == 2
        and "CA certificate" in result.stderr
        and "Traceback" not in result.stderr
    )
    nothing = run("alerts", "list", env={"GARRISON_HOME": str(tmp_path / "empty")})
    assert nothing.returncode == 2 and "no backend configured" in nothing.stderr


def test_audit_analyze_keeps_the_baseline_between_runs(tmp_path: Path) -> None:
    sa = "system:serviceaccount:shop:cart"
    learn = tmp_path / "day1.log"
    learn.write_text(
        json.dumps(
            audit_event_to_builtins(
                audit_event("get", "configmaps", user=sa, code=200, time="2026-11-01T10:00:00Z")
            )
        )
        + "\n"
    )
    later = tmp_path / "day9.log"
    later.write_text(
        json.dumps(
            audit_event_to_builtins(
                audit_event("list", "secrets", user=sa, code=200, time="2026-11-09T10:00:00Z")
            )
        )
        + "\n"
    )
    state = tmp_path / "baseline.json"
    assert run("audit", "analyze", "--state", str(state), str(learn)).returncode == 0
    assert state.exists()
    result = run("audit", "analyze", "--format", "json", "--state", str(state), str(later))
    assert "k8s_serviceaccount_rare_operation" in result.stdout
    without = run("audit", "analyze", "--format", "json", str(later))
    assert "k8s_serviceaccount_rare_operation" not in without.stdout
    state.write_text("{corrupt")
    broken = run("audit", "analyze", "--state", str(state), str(later))
    assert broken.returncode == 1 and "cannot read baseline state" in broken.stderr


def test_server_with_its_own_certificate(tmp_path: Path) -> None:
    from garrison.tls import ensure_ca, issue_certificate

    ca_dir = tmp_path / "pki"
    ensure_ca(ca_dir)
    files = issue_certificate(ca_dir, ca_dir, "api", hosts=["127.0.0.1"])
    home = tmp_path / "home"
    env = {"GARRISON_HOME": str(home)}
    added = run("clusters", "add", "edge", env=env)
    token = re.search(r"token: (\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    assert run("clusters", "list", env=env).stdout.startswith("edge\t")
    bad = run("server", "--tls-cert", str(files.cert), env=env)
    assert bad.returncode == 2 and "go together" in bad.stderr
    process = subprocess.Popen(
        [
            *GARRISON,
            "server",
            "--tls-cert",
            str(files.cert),
            "--tls-key",
            str(files.key),
            "--api-port",
            "0",
            "--audit-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = ""
        deadline = time.monotonic() + 30
        while "garrison server:" not in line and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
        match = re.search(r"audit webhook (https://\S+)", line)
        assert match, line
        request = urllib.request.Request(
            match.group(1),
            data=(CONTENT_DIR / "examples" / "privileged-pod.json").read_bytes(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=client_context(ca_dir / "ca.crt")) as response:
            assert json.load(response)["accepted"] == 1
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()
    assert code == 0


def test_publisher_refuses_clear_text_and_missing_tokens(tmp_path: Path) -> None:
    env = {"GARRISON_HOME": str(tmp_path), "GARRISON_CLUSTER_TOKEN": ""}
    plain = run("publisher", "--url", "http://backend:8443", "--cluster", "c", env=env)
    assert plain.returncode == 2 and "https://" in plain.stderr
    missing = run("publisher", "--url", "https://backend:8443", "--cluster", "c", env=env)
    assert missing.returncode == 2 and "no cluster credential" in missing.stderr
    unreadable = run(
        "publisher",
        "--url",
        "https://b",
        "--cluster",
        "c",
        "--token-file",
        str(tmp_path / "nope"),
        env=env,
    )
    assert unreadable.returncode == 2 and "cannot read token file" in unreadable.stderr


def test_clusters_revoke(tmp_path: Path) -> None:
    env = {"GARRISON_HOME": str(tmp_path)}
    added = run("clusters", "add", "edge", "--url", "https://garrison.internal:8443", env=env)
    assert "url: https://garrison.internal:8443" in added.stdout and "token: gct_" in added.stdout
    assert run("clusters", "revoke", "edge", env=env).returncode == 0
    assert "revoked" in run("clusters", "list", env=env).stdout
    assert run("clusters", "revoke", "nope", env=env).returncode == 1


def test_metrics_listeners_refuse_plain_http_off_loopback(tmp_path: Path) -> None:
    env = {"GARRISON_HOME": str(tmp_path), "GARRISON_CLUSTER_TOKEN": "gct_x"}
    everywhere = "0.0.0.0"  # noqa: S104 - the address being refused
    publisher = run(
        "publisher", "--url", "https://b", "--cluster", "c", "--metrics-host", everywhere, env=env
    )
    assert publisher.returncode == 2 and "plain HTTP" in publisher.stderr
    sensor = run("sensor", "--metrics-port", "9465", "--metrics-host", "10.1.2.3", env=env)
    assert sensor.returncode == 2 and "plain HTTP" in sensor.stderr
