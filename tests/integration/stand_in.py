"""The tests' stand-in API servers: a quiet HTTP/1.1 handler with JSON answers, served on HTTPS.

A kube-apiserver cannot run on these machines; each test module that needs one subclasses
:class:`JsonHandler` with the answers it needs and serves it with :func:`serve_https`.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from garrison.tls import ensure_ca, issue_certificate, server_context


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        return None

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serve_https(tls_dir: Path, handler: type[BaseHTTPRequestHandler]) -> Iterator[tuple[str, Path]]:
    """``handler`` on a free loopback port with a certificate from a CA in ``tls_dir``:
    yields the server's URL and the CA file."""
    ensure_ca(tls_dir)
    files = issue_certificate(tls_dir, tls_dir, "apiserver", hosts=["127.0.0.1"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context: ssl.SSLContext = server_context(files)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", tls_dir / "ca.crt"
    finally:
        server.shutdown()
        server.server_close()
