"""A real backend on loopback: HTTPS with a fresh CA, SQLite on disk, ports chosen by the OS."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from garrison.audit.analyzer import AnalyzerConfig
from garrison.cli.serve import Backend, ServeConfig
from garrison.server.store.sqlite import SQLiteStore
from garrison.tls import TLSFiles, client_context, ensure_ca, issue_certificate


@dataclass
class Running:
    backend: Backend
    store: SQLiteStore
    api: str
    audit: str
    cluster_token: str
    api_token: str
    tls_dir: Path
    context: ssl.SSLContext

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def make_tls(tmp_path: Path) -> TLSFiles:
    tls_dir = tmp_path / "tls"
    ensure_ca(tls_dir)
    return issue_certificate(tls_dir, tls_dir, "server", hosts=["127.0.0.1", "localhost"])


async def start_backend(tmp_path: Path, **overrides: object) -> Running:
    tls = make_tls(tmp_path)
    store = SQLiteStore(tmp_path / "garrison.db")
    _, cluster_token = store.add_cluster("prod")
    api_token = store.add_api_token("tests")
    config = ServeConfig(
        db=tmp_path / "garrison.db",
        tls=tls,
        client_ca=tls.ca,
        api_port=0,
        audit_port=0,
        analyzer=AnalyzerConfig(learning_seconds=3600),
        **overrides,  # type: ignore[arg-type]
    )
    backend = Backend(config, store)
    await backend.start()
    return Running(
        backend=backend,
        store=store,
        api=f"https://127.0.0.1:{backend.bound['api']}",
        audit=f"https://127.0.0.1:{backend.bound['audit']}/k8s-audit",
        cluster_token=cluster_token,
        api_token=api_token,
        tls_dir=tls.cert.parent,
        context=client_context(tls.ca),
    )


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    server = await start_backend(tmp_path)
    yield server
    await server.backend.stop(drain_seconds=2)
    server.store.close()


@pytest.fixture
async def session(running: Running) -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(ssl=running.context)
    async with aiohttp.ClientSession(connector=connector) as client:
        yield client
