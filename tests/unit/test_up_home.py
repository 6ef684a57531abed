"""``garrison up`` keeps the webhook token across restarts; an API server keeps working."""

from __future__ import annotations

from pathlib import Path

from garrison.cli.home import Home
from garrison.cli.server_cmd import _local_tls, prepare_home
from garrison.server.store import SQLiteStore


def test_restart_keeps_the_webhook_token_and_a_lost_kubeconfig_gets_a_new_one(
    tmp_path: Path,
) -> None:
    home = Home(tmp_path)
    home.ensure()
    _local_tls(home)
    store = SQLiteStore(home.db)
    first = prepare_home(home, store, "127.0.0.1", 8765)
    again = prepare_home(home, store, "127.0.0.1", 8766)
    assert again["cluster_token"] == first["cluster_token"]
    assert "https://127.0.0.1:8766/k8s-audit" in home.kubeconfig.read_text()
    assert store.cluster_for_token(first["cluster_token"]) is not None
    home.kubeconfig.unlink()
    fresh = prepare_home(home, store, "127.0.0.1", 8765)
    assert fresh["cluster_token"] != first["cluster_token"]
    assert store.cluster_for_token(first["cluster_token"]) is None
    assert (home.kubeconfig.stat().st_mode & 0o777) == 0o600
