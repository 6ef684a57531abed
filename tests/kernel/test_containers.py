"""Events from inside real runc containers carry the container's id and their ancestry."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from garrison.events.runtime import RuntimeEvent
from garrison.sensor.probe import ProcessProbe
from tests.kernel.containers import run, runc_bundle

pytestmark = pytest.mark.kernel

if os.geteuid() != 0:
    pytest.skip("kernel tests need root (CI runs them as root)", allow_module_level=True)


class Collector:
    """Drains a probe on a thread while the test drives a container."""

    def __init__(self) -> None:
        self.events: list[RuntimeEvent] = []
        self.probe = ProcessProbe(self.events.append)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain)

    def _drain(self) -> None:
        while not self._stop.is_set():
            self.probe.poll(50)

    def __enter__(self) -> Collector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.probe.poll(0)
        self.probe.close()


def test_exec_inside_a_runc_container_is_attributed_to_it(tmp_path: Path) -> None:
    name = f"garrison-test-{os.getpid()}"
    with runc_bundle(tmp_path, name) as bundle, Collector() as collected:
        result = run(bundle, "/bin/sh", "-c", "/bin/echo garrison-in-container; /bin/sleep 0.3")
    assert result.returncode == 0 and "garrison-in-container" in result.stdout
    inside = [e for e in collected.events if e.type == "exec" and "garrison-in-container" in e.args]
    assert len(inside) == 1
    event = inside[0]
    assert event.container_id == name
    assert event.exe == "/bin/echo" and event.comm == "echo"
    assert event.args == ["/bin/echo", "garrison-in-container"]
    shell = [e for e in collected.events if e.pid == event.ppid and e.type == "exec"]
    assert shell and shell[0].container_id == name and shell[0].comm == "sh"
    assert event.ancestry[0] == "sh"
    host = [e for e in collected.events if e.comm == "runc" and e.container_id == "host"]
    assert host, "runc itself runs on the host"


def test_binary_written_after_start_is_flagged_upper_layer(tmp_path: Path) -> None:
    name = f"garrison-drift-{os.getpid()}"
    with runc_bundle(tmp_path, name) as bundle, Collector() as collected:
        result = run(
            bundle,
            "/bin/sh",
            "-c",
            "/bin/cp /bin/busybox /tmp/busybox && /tmp/busybox echo garrison-drift && /bin/echo garrison-image; /bin/sleep 0.3",
        )
    assert result.returncode == 0 and "garrison-drift" in result.stdout, result.stderr
    assert (bundle.upper / "tmp" / "busybox").exists()  # it lives in the container's own layer
    drifted = [e for e in collected.events if e.type == "exec" and e.exe == "/tmp/busybox"]
    image = [
        e
        for e in collected.events
        if e.type == "exec" and e.args == ["/bin/echo", "garrison-image"]
    ]
    assert len(drifted) == 1 and drifted[0].exe_upper_layer and drifted[0].container_id == name
    assert len(image) == 1 and not image[0].exe_upper_layer
    assert not drifted[0].exe_from_memfd


def test_fileless_execution_from_a_memfd_is_flagged() -> None:
    import shutil
    import subprocess
    import sys

    busybox = shutil.which("busybox")
    assert busybox
    program = (
        "import os, sys\n"
        "fd = os.memfd_create('garrison-test', 0)\n"
        f"os.write(fd, open({busybox!r}, 'rb').read())\n"
        "os.execv(f'/proc/self/fd/{fd}', ['true', 'garrison-memfd-test'])\n"
    )
    with Collector() as collected:
        subprocess.run([sys.executable, "-c", program], check=True)
        import time

        time.sleep(0.3)
    fileless = [e for e in collected.events if e.type == "exec" and "garrison-memfd-test" in e.args]
    assert len(fileless) == 1
    assert fileless[0].exe_from_memfd and not fileless[0].exe_upper_layer
    assert fileless[0].container_id == "host"


def test_connect_from_inside_a_container(tmp_path: Path) -> None:
    name = f"garrison-net-{os.getpid()}"
    with runc_bundle(tmp_path, name) as bundle, Collector() as collected:
        run(bundle, "/bin/sh", "-c", "/bin/nc -w 1 127.0.0.1 9 </dev/null; /bin/sleep 0.3")
    connects = [e for e in collected.events if e.type == "connect" and e.dest_port == 9]
    assert connects and connects[0].container_id == name and connects[0].dest_ip == "127.0.0.1"
    # the parent by pid: names in ancestry can already show the shell's next image, since
    # net and process events travel in different ring buffers (no total order between them)
    shells = {
        e.pid
        for e in collected.events
        if e.type == "exec" and e.comm == "sh" and e.container_id == name
    }
    assert connects[0].comm == "nc" and connects[0].ppid in shells
