"""Start ``garrison up`` and a bare HTTPS baseline server as subprocesses (benchmarks and tests)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Garrison:
    api: str
    audit: str
    home: Path
    cluster_token: str
    api_token: str
    pid: int


@contextmanager
def garrison_up(home: Path, *extra: str) -> Iterator[Garrison]:
    """``garrison up`` on free ports with its data in ``home``; ``extra`` are more flags."""
    env = {**os.environ, "GARRISON_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "garrison.cli",
            "up",
            "--api-port",
            "0",
            "--audit-port",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        output = ""
        deadline = time.monotonic() + 60
        while "Ctrl-C stops garrison" not in output and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"garrison up exited:\n{output}")
            output += line
        api = re.search(r"API\s+(https://\S+)", output)
        audit = re.search(r"audit webhook\s+(https://\S+)", output)
        if not api or not audit:
            raise RuntimeError(output)
        kubeconfig = (home / "audit-webhook.kubeconfig").read_text()
        token = re.search(r"token: (\S+)", kubeconfig)
        client = (home / "client.json").read_text()
        api_token = re.search(r'"token": "([^"]+)"', client)
        assert token and api_token
        yield Garrison(
            api.group(1), audit.group(1), home, token.group(1), api_token.group(1), process.pid
        )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


BASELINE_SERVER = """
import ssl, sys
from aiohttp import web
async def handle(request):
    body = await request.read()
    return web.json_response({"accepted": len(body)})
app = web.Application(client_max_size=16 * 1024 * 1024)
app.router.add_post("/k8s-audit", handle)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(sys.argv[1], sys.argv[2])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[3]), ssl_context=context, print=lambda *a: print("ready", flush=True), access_log=None)
"""


@contextmanager
def baseline_server(cert: Path, key: Path, port: int) -> Iterator[str]:
    """An HTTPS server that only reads the body and answers 200 (no auth, decode or queue)."""
    process = subprocess.Popen(
        [sys.executable, "-c", BASELINE_SERVER, str(cert), str(key), str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        if "ready" not in process.stdout.readline():
            raise RuntimeError("baseline server did not start")
        yield f"https://127.0.0.1:{port}/k8s-audit"
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
