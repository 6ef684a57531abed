"""The exec probe on the real kernel: tracepoint program, ring buffer, decoding, attribution."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from garrison.events.runtime import RuntimeEvent
from garrison.sensor.probe import (
    FILE_OBJECT,
    NET_OBJECT,
    OBJECT_DIR,
    PROCESS_OBJECT,
    SYSCALL_OBJECT,
    ProcessProbe,
)
from garrison.sensor.wire import WIRE_STRUCTS

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("kernel tests need root (CI runs them as root)", allow_module_level=True)


def wait_attached(sensor: subprocess.Popen[str]) -> None:
    """Read the sensor's stderr until it says its programs are attached."""
    assert sensor.stderr is not None
    for line in sensor.stderr:
        if "garrison sensor: attached" in line:
            return
    raise AssertionError("the sensor exited before attaching")


def collect(probe: ProcessProbe, seen: list[RuntimeEvent], until: float = 2.0) -> None:
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        probe.poll(50)


def test_exec_events_carry_pid_parent_args_and_attribution() -> None:
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append)
    try:
        child = subprocess.Popen(
            ["/bin/echo", "garrison-exec-test", "two words"], stdout=subprocess.DEVNULL
        )
        child.wait()
        collect(probe, seen, 1.0)
    finally:
        probe.close()
    mine = [e for e in seen if e.type == "exec" and "garrison-exec-test" in e.args]
    assert len(mine) == 1
    event = mine[0]
    assert event.pid == child.pid and event.ppid == os.getpid()
    assert event.exe == "/bin/echo" and event.comm == "echo"
    assert event.args == ["/bin/echo", "garrison-exec-test", "two words"]
    assert event.container_id == "host" and event.uid == os.getuid()
    assert (
        event.ancestry
        and event.ancestry[0] == Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    )
    assert abs(event.time - time.time()) < 5
    assert probe.drops() == 0


def test_sensor_command_prints_json_lines() -> None:
    sensor = subprocess.Popen(
        [sys.executable, "-m", "garrison.cli", "sensor", "--format", "jsonl", "--duration", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_attached(sensor)
    subprocess.run(["/bin/true", "garrison-sensor-cli-test"], check=True)
    out, err = sensor.communicate(timeout=30)
    assert sensor.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    mine = [e for e in events if e["type"] == "exec" and "garrison-sensor-cli-test" in e["args"]]
    assert len(mine) == 1
    for key in (
        "type",
        "time",
        "pid",
        "ppid",
        "comm",
        "exe",
        "args",
        "uid",
        "container_id",
        "ancestry",
    ):
        assert key in mine[0], key
    assert re.search(r"\d+ events, 0 dropped in the kernel", err)


def btf_layout(obj: Path, struct: str) -> tuple[int, dict[str, int]]:
    text = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(obj), "format", "raw"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(rf"\[\d+\] STRUCT '{struct}' size=(\d+) vlen=(\d+)", line)
        if match:
            members = {}
            for member in lines[index + 1 : index + 1 + int(match.group(2))]:
                found = re.match(r"\s+'(\w+)' type_id=\d+ bits_offset=(\d+)", member)
                assert found, member
                members[found.group(1)] = int(found.group(2)) // 8
            return int(match.group(1)), members
    raise AssertionError(f"struct {struct} not in the BTF of {obj}")


def test_wire_format_matches_the_compiled_object() -> None:
    """The Python mirror of kernel/include/garrison_events.h agrees with the object's BTF."""
    homes = {
        "garrison_net_event": NET_OBJECT,
        "garrison_file_event": FILE_OBJECT,
        "garrison_path_key": FILE_OBJECT,
        "garrison_fsop_event": FILE_OBJECT,
        "garrison_syscall_event": SYSCALL_OBJECT,
    }
    for name, mirror in WIRE_STRUCTS.items():
        size, offsets = btf_layout(OBJECT_DIR / homes.get(name, PROCESS_OBJECT), name)
        import ctypes

        assert ctypes.sizeof(mirror) == size, name
        assert {field: getattr(mirror, field).offset for field, _ in mirror._fields_} == offsets, (
            name
        )


def test_unprivileged_run_gets_one_clear_line() -> None:
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            "-m",
            "garrison.cli",
            "sensor",
            "--duration",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": "/tmp"},
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: missing capability: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)"
    ]


def test_fork_exec_exit_keep_the_tree_for_short_lived_chains() -> None:
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append)
    try:
        outer = subprocess.run(
            ["/bin/sh", "-c", "/bin/sh -c '/bin/echo garrison-deep-chain'; exit 3"],
            stdout=subprocess.DEVNULL,
            check=False,
        )
        collect(probe, seen, 1.0)
    finally:
        probe.close()
    assert outer.returncode == 3
    echo = [e for e in seen if e.type == "exec" and "garrison-deep-chain" in e.args]
    assert len(echo) == 1
    own = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    # both shells had exited before these events were read: the names come from the tree
    assert echo[0].ancestry[:3] == ["sh", "sh", own]
    forks = [e for e in seen if e.type == "fork" and e.ppid == os.getpid()]
    assert forks, "the fork of the outer shell is an event"
    exits = {e.pid: e.exit_code for e in seen if e.type == "exit"}
    assert exits.get(forks[0].pid) == 3 << 8  # as wait(2) reports it


def test_sensor_serves_event_and_drop_metrics() -> None:
    import socket as sockets
    import urllib.request

    with sockets.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    sensor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "garrison.cli",
            "sensor",
            "--duration",
            "5",
            "--metrics-port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_attached(sensor)
        subprocess.run(["/bin/true", "garrison-metrics-test"], check=True)
        text = ""
        for _ in range(40):  # event counts reach the metrics once a second
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                text = response.read().decode()
            if re.search(r'garrison_sensor_events_total\{type="exec"\} [1-9]', text):
                break
            time.sleep(0.1)
    finally:
        sensor.communicate(timeout=30)
    assert re.search(r'garrison_sensor_events_total\{type="exec"\} [1-9]', text)
    assert "garrison_sensor_kernel_drops 0.0" in text
    assert re.search(r"garrison_sensor_processes [1-9]", text)


def test_the_mapped_ring_reader_sees_what_the_callback_sees() -> None:
    """Reading the ring's pages directly (--ring mapped): every exec, in order, none lost."""
    seen: list[RuntimeEvent] = []
    probe = ProcessProbe(seen.append, mapped=True)
    try:
        for index in range(200):
            subprocess.run(["/bin/true", f"garrison-mapped-{index}"], check=True)
        collect(probe, seen, 1.0)
    finally:
        probe.close()
    mine = [
        e.args[1]
        for e in seen
        if e.type == "exec" and e.args[1:2] and e.args[1].startswith("garrison-mapped-")
    ]
    assert mine == [f"garrison-mapped-{index}" for index in range(200)]
