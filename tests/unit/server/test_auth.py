from __future__ import annotations

from garrison.server.auth import TokenCache
from garrison.server.store import ClusterRecord

PROD = ClusterRecord("id1", "prod", 0.0)


def test_cache_expires_so_revocation_takes_effect() -> None:
    now = [0.0]
    table: dict[str, ClusterRecord | None] = {"t": PROD}
    lookups: list[str] = []

    def lookup(token: str) -> ClusterRecord | None:
        lookups.append(token)
        return table.get(token)

    cache = TokenCache(lookup, ttl_seconds=5, clock=lambda: now[0])
    assert cache.resolve("t") == PROD and cache.resolve("t") == PROD
    assert lookups == ["t"]
    table["t"] = None  # revoked
    now[0] = 6.0
    assert cache.resolve("t") is None


def test_unknown_tokens_are_cached_and_the_cache_is_bounded() -> None:
    calls = 0

    def lookup(token: str) -> ClusterRecord | None:
        nonlocal calls
        calls += 1
        return None

    cache = TokenCache(lookup, max_entries=10)
    for _ in range(3):
        assert cache.resolve("wrong") is None
    assert calls == 1
    for i in range(100):
        cache.resolve(f"w{i}")
    assert len(cache) <= 10
