"""``garrison up`` on a fresh home: a runtime alert from this machine reaches the API."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.kernel, pytest.mark.e2e]

if os.geteuid() != 0:
    pytest.skip("the runtime sensor needs root (CI runs this as root)", allow_module_level=True)

GARRISON = [sys.executable, "-m", "garrison.cli"]


def _reader(stream: object, lines: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.put(line)


def _wait_for(lines: queue.Queue[str], text: str, seen: list[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"no {text!r} in:\n" + "".join(seen))


def test_up_runs_sensor_and_publisher_and_a_runtime_alert_reaches_the_api(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "GARRISON_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*GARRISON, "up", "--api-port", "0", "--audit-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        _wait_for(lines, "Runtime sensor and publisher started", seen)
        _wait_for(lines, "[sensor] garrison sensor: attached", seen)
        subprocess.run(["/bin/cat", "/etc/shadow"], stdout=subprocess.DEVNULL, check=True)
        _wait_for(lines, "runtime_shadow_read", seen)  # shown in the console
        stored: list[dict[str, object]] = []
        for _ in range(100):  # sensor → outbox → publisher → HTTPS ingest → store
            listed = subprocess.run(
                [*GARRISON, "alerts", "list", "--format", "json", "--rule", "runtime_shadow_read"],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            stored = [json.loads(line) for line in listed.stdout.splitlines()]
            if stored:
                break
            time.sleep(0.2)
        assert stored, "".join(seen)
        alert = stored[0]
        assert alert["source"] == "syscall" and alert["entities"]["cluster"] == "local"  # type: ignore[index]
        assert alert["entities"]["process"] == "/bin/cat"  # type: ignore[index]
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=60)
        reader.join(timeout=5)
        process.stdout.close()
    assert code == 0, "".join(seen)
    leftovers = subprocess.run(
        ["pgrep", "-f", f"--baseline-state {home}"], capture_output=True, text=True, check=False
    )
    assert leftovers.stdout == ""  # the sensor ended with garrison up
