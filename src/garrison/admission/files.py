"""Reading policy objects (templates, constraints, Kubernetes objects) from YAML or JSON files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from garrison.admission.model import PolicyError
from garrison.yaml12 import load_all

POLICY_SUFFIXES = (".yaml", ".yml", ".json")


def read_objects(path: Path) -> list[Mapping[str, Any]]:
    """Every object in a file (YAML streams, JSON, ``kind: List`` items flattened)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        docs = list(load_all(text))
    except Exception as exc:  # yaml.YAMLError and its kin: say where, never a traceback
        raise PolicyError(f"{path}: not valid YAML or JSON: {exc}") from None
    out: list[Mapping[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, Mapping):
            raise PolicyError(f"{path}: a document is not an object")
        if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
            out.extend(i for i in doc["items"] if isinstance(i, Mapping))
        else:
            out.append(doc)
    return out


def read_tree(paths: Iterable[Path]) -> list[Mapping[str, Any]]:
    """Objects of files, and of every policy file under directories (sorted, recursive)."""
    out: list[Mapping[str, Any]] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.suffix in POLICY_SUFFIXES):
                out.extend(read_objects(child))
        else:
            out.extend(read_objects(path))
    return out
