"""Content shipped with garrison: rules, lists and threat-intelligence data (data, not code)."""

from __future__ import annotations

from pathlib import Path

CONTENT_DIR = Path(__file__).resolve().parent


def default_audit_rule_files() -> list[Path]:
    """The default k8s_audit rule pack, in load order."""
    return [
        CONTENT_DIR / "threatintel" / "proxy_ips.yaml",
        CONTENT_DIR / "rules" / "k8s_audit.yaml",
    ]


def default_runtime_rule_files() -> list[Path]:
    """The default syscall (node runtime) rule pack, in load order."""
    return [CONTENT_DIR / "rules" / "runtime.yaml"]


def policy_catalog_file() -> Path:
    """The built-in admission policies' catalog (templates, initiatives, default effects)."""
    return CONTENT_DIR / "policies" / "catalog.yaml"
