"""The ``syscall`` source: Falco's field semantics over sensor events, and Falco's own rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from garrison.rules.engine import Engine
from garrison.rules.loader import load_files, load_texts
from garrison.rules.syscall_fields import SyscallSource, repository
from tests.runtime_events import connect, dup_socket, event, open_file, spawn, syscall

FALCO_RULES = Path(__file__).resolve().parents[3].parent / "shared/corpora/falco-rules"
SOURCE = SyscallSource(
    hostname="node-1", known_names={"10.96.0.1": "kubernetes.default.svc.cluster.local"}
)


def rules(text: str) -> Engine:
    loaded = load_texts([("test.yaml", text)])
    assert not loaded.errors, loaded.errors
    engine, report = Engine.build(loaded.ruleset, SOURCE)
    assert not report.errors, report.errors
    return engine


def fires(engine: Engine, event: object) -> bool:
    return bool(engine.evaluate(event))


def rule(condition: str, output: str = "x") -> str:
    return (
        f"- rule: r\n  desc: d\n  condition: {condition}\n  output: {output}\n  priority: WARNING\n"
    )


def test_process_fields_and_ancestors() -> None:
    event = spawn(
        "/usr/bin/curl",
        "-s",
        "http://x",
        ancestry=["sh", "php-fpm8.2", "containerd-shim"],
        ancestry_exe=["/bin/sh", "/usr/sbin/php-fpm8.2", ""],
        parent_args=["/bin/sh", "-c", "curl -s http://x"],
    )
    assert fires(rules(rule("proc.name = curl and proc.exepath = /usr/bin/curl")), event)
    assert fires(rules(rule('proc.cmdline = "curl -s http://x"')), event)
    assert fires(rules(rule('proc.args = "-s http://x"')), event)
    assert fires(rules(rule('proc.pcmdline = "sh -c curl -s http://x"')), event)
    assert fires(rules(rule("proc.pexe = /bin/sh and proc.pexepath = /bin/sh")), event)
    assert fires(rules(rule("proc.aname[2] = php-fpm8.2 and proc.aname[0] = curl")), event)
    # without an index: some ancestor, for = and for in
    assert fires(rules(rule("proc.aname = containerd-shim")), event)
    assert fires(rules(rule("proc.aname in (nginx, php-fpm8.2)")), event)
    assert not fires(rules(rule("proc.aname in (nginx, httpd)")), event)
    assert fires(rules(rule("proc.aexepath[2] = /usr/sbin/php-fpm8.2")), event)
    session = spawn("/bin/ls", sid=77, session_leader="bash")
    assert fires(rules(rule("proc.sid = 77 and proc.sname = bash")), session)


def test_file_fields_and_open_flags() -> None:
    write = open_file("/etc/../etc/shadow", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, comm="sh")
    engine = rules(
        rule(
            "evt.type = openat and evt.is_open_write = true and fd.typechar = f and fd.num >= 0"
            " and fd.name = /etc/shadow and fd.nameraw contains ../ and fd.directory = /etc"
            " and fd.filename = shadow and evt.arg.flags contains O_TRUNC and evt.res = SUCCESS"
        )
    )
    assert fires(engine, write)
    failed = open_file("/etc/shadow", fd=-1, res=-13)
    assert fires(rules(rule("fd.num = -1 and evt.res = EACCES and evt.rawres = -13")), failed)
    assert not fires(rules(rule("evt.is_open_write = true")), open_file("/etc/shadow"))


def test_network_fields_with_cidr_semantics() -> None:
    out = connect("203.0.113.7", 443, comm="curl")
    assert fires(rules(rule("fd.sip = 203.0.113.7 and fd.sport = 443 and fd.l4proto = tcp")), out)
    assert fires(
        rules(rule('fd.snet = "203.0.113.0/24" and fd.typechar = 4 and fd.type = ipv4')), out
    )
    assert fires(rules(rule('not fd.snet in ("10.0.0.0/8", "192.168.0.0/16")')), out)
    assert not fires(rules(rule('fd.net != "203.0.0.0/8"')), out)
    api = connect("10.96.0.1", 443)
    assert fires(rules(rule('fd.sip.name = "kubernetes.default.svc.cluster.local"')), api)
    assert fires(rules(rule("fd.typechar = 6")), connect("2001:db8::1", 80))
    accepted = event(
        "accept", syscall="accept4", dest_ip="198.51.100.2", dest_port=51000, local_port=22, fd=4
    )
    engine = rules(
        rule(
            "evt.type = accept4 and fd.lport = 22 and fd.sport = 22 and fd.cip = 198.51.100.2"
            " and fd.rport = 51000 and fd.is_server = true and fd.typechar = 4"
        )
    )
    assert fires(engine, accepted)
    listening = event("listen", syscall="listen", local_port=8080, fd=3)
    assert fires(
        rules(rule("evt.type = listen and fd.lport = 8080 and not fd.sip exists")), listening
    )
    dup = dup_socket("203.0.113.7", 4444, 1)
    assert fires(rules(rule("evt.type = dup2 and evt.rawres in (0, 1, 2) and fd.type = ipv4")), dup)


def test_syscall_arguments_and_capabilities() -> None:
    attach = syscall("ptrace", 16, 99, comm="x", cap_effective=(1 << 21) | (1 << 19))
    engine = rules(
        rule(
            "evt.type = ptrace and evt.arg.request contains PTRACE_ATTACH"
            " and thread.cap_effective contains CAP_SYS_ADMIN"
        )
    )
    assert fires(engine, attach)
    assert fires(rules(rule("evt.arg.domain = AF_PACKET")), syscall("socket", 17, 3, 0))
    assert fires(
        rules(rule("evt.arg.flags contains CLONE_NEWUSER")), syscall("unshare", 0x10000000)
    )


def test_container_and_kubernetes_fields() -> None:
    event = spawn(
        "/bin/sh",
        image="registry.example:5000/team/web:1.2@sha256:abc",
        container_name="web",
        pod="web-7c9f8d6b5-x2x4q",
        namespace="shop",
        privileged=True,
        pod_labels={"app": "web"},
    )
    engine = rules(
        rule(
            "container.image.repository = registry.example:5000/team/web"
            " and container.image.tag = 1.2 and container.name = web and container.privileged = true"
            " and k8s.ns.name = shop and k8s.pod.name = web-7c9f8d6b5-x2x4q"
            " and k8s.pod.label[app] = web"
        )
    )
    assert fires(engine, event)
    assert repository("busybox") == "busybox" and repository("busybox:1.36") == "busybox"
    host = spawn("/bin/sh", container_id="host")
    assert fires(rules(rule("container.id = host and not container.privileged exists")), host)


def test_fields_not_carried_are_refused_by_name_and_print_na_in_outputs() -> None:
    loaded = load_texts([("t.yaml", rule("proc.cwd startswith /dev/shm"))])
    _, report = Engine.build(loaded.ruleset, SOURCE)
    assert report.missing_fields == {"proc.cwd": ["r"]}
    assert "not carried" in str(report.errors[0])
    engine = rules(rule("proc.name = sh", output="cwd=%proc.cwd name=%proc.name"))
    assert engine.evaluate(spawn("/bin/sh"))[0].output == "cwd=<NA> name=sh"


def test_rules_on_event_types_never_produced_are_reported() -> None:
    loaded = load_texts(
        [("t.yaml", rule("evt.type in (symlink, symlinkat) and evt.arg.target = /etc"))]
    )
    _, report = Engine.build(loaded.ruleset, SOURCE)
    assert report.compiled == 0 and report.missing_fields == {"evt.type": ["r"]}
    assert "symlink, symlinkat" in str(report.errors[0])
    # a branch on types never produced is settled; the rest of the rule still works
    engine = rules(rule("(evt.type = connect or (evt.type = sendto and fd.connected = false))"))
    assert fires(engine, connect("203.0.113.7", 80))


@pytest.mark.skipif(not FALCO_RULES.exists(), reason="shared corpus not present")
def test_falco_stable_rules_load_and_compile() -> None:
    loaded = load_files([FALCO_RULES / "falco_rules.yaml"])
    assert not loaded.errors
    engine, report = Engine.build(loaded.ruleset, SOURCE, include_disabled=True)
    total = len(loaded.ruleset.rules)
    print(f"falco stable rules (syscall source): {report.compiled}/{total} compiled")
    assert total == 25 and report.compiled == 22
    assert report.missing_fields == {
        "evt.type": ["Create Symlink Over Sensitive Files", "Create Hardlink Over Sensitive Files"],
        "proc.cwd": ["Execution from /dev/shm"],
    }
    # and they detect: Falco's drift and memfd rules on the sensor's events
    drift = spawn("/tmp/x", exe_upper_layer=True)
    assert "Drop and execute new binary in container" in {
        m.rule.name for m in engine.evaluate(drift)
    }
    shadow = open_file("/etc/shadow", comm="python3", exe="/usr/bin/python3")
    names = {m.rule.name for m in engine.evaluate(shadow)}
    assert "Read sensitive file untrusted" in names


@pytest.mark.parametrize(
    "path",
    [
        "/etc/shadow",
        "/shadow",
        "/",
        "//etc/x",
        "///etc/x",
        "/etc//shadow",
        "/etc/./shadow",
        "/etc/../etc/shadow",
        "/etc/.hidden",
        "/etc/dir/",
        "etc/shadow",
        "./shadow",
        "shadow",
        "../x",
        ".",
    ],
)
def test_path_fields_match_os_path(path: str) -> None:
    """fd.name, fd.directory and fd.filename skip normpath's work only where it changes nothing."""
    import os.path

    from garrison.rules.syscall_fields import normal_path, split_path

    clean = os.path.normpath(path)
    assert normal_path(path) == clean
    assert split_path(path) == (os.path.dirname(clean), os.path.basename(clean))


def test_matches_are_reused_only_between_events_vouched_alike() -> None:
    """evaluate(memo_key=...): the second event of a key gets the first's rules (its output
    rendered from itself); a rule set reading a clock or sequence field never reuses them."""
    engine = rules(rule("fd.name = /etc/shadow", output="read by %proc.pid seq %evt.num"))
    first, second = open_file("/etc/shadow"), open_file("/etc/shadow")
    second.seq, second.pid = 2, 999  # not in the key: the caller vouched they are alike
    assert [m.output for m in engine.evaluate(first, memo_key=("k",))] == ["read by 4242 seq 1"]
    assert [m.output for m in engine.evaluate(second, memo_key=("k",))] == ["read by 999 seq 2"]
    assert engine.memo_hits == 1
    other = open_file("/etc/hosts")
    assert engine.evaluate(other, memo_key=("k2",)) == [] and engine.memo_hits == 1
    clocked = rules(rule("fd.name = /etc/shadow and evt.num > 1"))
    assert not clocked.memoizable
    assert not clocked.evaluate(first, memo_key=("k",))
    assert clocked.evaluate(second, memo_key=("k",)) and clocked.memo_hits == 0
