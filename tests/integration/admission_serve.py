"""Start the real ``garrison admission serve`` on a free port and wait until it serves."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

GARRISON = [sys.executable, "-m", "garrison.cli"]


@dataclass
class Serving:
    url: str  # https://127.0.0.1:PORT (append /v1/admit or /v1/mutate)
    templates: int
    constraints: int
    process: subprocess.Popen[str]


@contextmanager
def serve_admission(cert: Path, key: Path, log_path: Path, *args: str) -> Iterator[Serving]:
    """The webhook with ``args`` (policies, sources, timings); its stderr goes to ``log_path``."""
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            *GARRISON,
            "admission",
            "serve",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert process.stdout is not None
    try:
        line = process.stdout.readline()
        match = re.search(
            r"serving (https://\S+)/v1/admit \((\d+) templates, (\d+) constraints\)", line
        )
        if match is None:
            process.kill()
            process.wait()
            pytest.fail(f"webhook did not start: {line!r} {log_path.read_text()}")
        yield Serving(match.group(1), int(match.group(2)), int(match.group(3)), process)
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=20)
        process.stdout.close()
        log.close()


def post_review(url: str, context: ssl.SSLContext, review: dict[str, Any]) -> dict[str, Any]:
    """POST one AdmissionReview to ``url``/v1/admit; the ``response`` it answers."""
    request = urllib.request.Request(
        url + "/v1/admit",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        return json.load(answer)["response"]  # type: ignore[no-any-return]
