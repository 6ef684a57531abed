"""Runs the real ``garrison sensor --emit alerts`` while a test drives runc containers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SensorRun:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    def for_container(self, container: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["container_id"] == container]

    def rules_in(self, container: str) -> set[str]:
        return {a["rule_id"] for a in self.for_container(container)}


@contextmanager
def sensor(*options: str) -> Iterator[SensorRun]:
    """The sensor, attached, for the duration of the block; alerts parsed when it ends."""
    command = [sys.executable, "-m", "garrison.cli", "sensor", "--emit", "alerts", *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None and process.stdout is not None
    errors: list[str] = []
    for line in process.stderr:
        errors.append(line)
        if "garrison sensor: attached" in line:
            break
    else:
        raise AssertionError("the sensor exited before attaching: " + "".join(errors))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()))
    reader.start()
    run = SensorRun()
    try:
        yield run
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join()
        rest = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
        run.stderr = "".join(errors) + rest
        run.alerts = [json.loads(line) for line in lines if line.strip()]
    assert process.returncode == 0, run.stderr
