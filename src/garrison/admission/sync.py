"""The synced cache behind ``data.inventory``: only the kinds the policies use, listed again
at an interval, bounded.

Which kinds: those a template names in ``metadata.gatekeeper.sh/requires-sync-data`` (as
Gatekeeper's library declares them) plus any the operator adds; Namespaces always (they
answer namespaceSelectors and ``namespaceObject``). Lists are paged; the cache keeps at
most ``max_objects`` objects and counts what it had to refuse.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from garrison.admission.audit import DEFAULT_CHUNK, ObjectSource
from garrison.admission.review import as_map
from garrison.events.errors import GarrisonError

log = logging.getLogger("garrison.admission.sync")
SYNC_ANNOTATION = "metadata.gatekeeper.sh/requires-sync-data"


def kinds_to_sync(objects: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(group, kind) pairs the templates among ``objects`` declare they read."""
    out: set[tuple[str, str]] = {("", "Namespace")}
    for obj in objects:
        if obj.get("kind") != "ConstraintTemplate":
            continue
        text = as_map(as_map(obj.get("metadata")).get("annotations")).get(SYNC_ANNOTATION)
        if not isinstance(text, str):
            continue
        text = text.strip()
        if len(text) > 1 and text[0] == text[-1] == '"':
            text = text[1:-1]  # the library wraps the JSON in quotes, unescaped
        try:
            value = json.loads(text)
        except ValueError:
            name = as_map(obj.get("metadata")).get("name")
            log.warning("template %s: unreadable %s", name, SYNC_ANNOTATION)
            continue
        for requirement in value if isinstance(value, list) else []:
            for alternative in requirement if isinstance(requirement, list) else []:
                for group in alternative.get("groups") or [""]:
                    for kind in alternative.get("kinds") or []:
                        out.add((str(group), str(kind)))
    return out


def parse_sync(items: Iterable[str]) -> set[tuple[str, str]]:
    """``GROUP/KIND`` (``KIND`` alone for the core group) from the command line."""
    out = set()
    for item in items:
        group, _, kind = item.rpartition("/")
        if not kind:
            raise GarrisonError(f"--sync {item!r}: expected GROUP/KIND or KIND")
        out.add((group, kind))
    return out


def list_inventory(
    source: ObjectSource, kinds: set[tuple[str, str]], max_objects: int
) -> tuple[list[Mapping[str, Any]], int]:
    """The objects of ``kinds`` (at most ``max_objects``) and how many were left out."""
    objects: list[Mapping[str, Any]] = []
    refused = 0
    for resource in source.resources(kinds):
        for obj in source.list(resource, DEFAULT_CHUNK):
            if len(objects) >= max_objects:
                refused += 1
                continue
            metadata = dict(as_map(obj.get("metadata")))
            metadata.pop("managedFields", None)  # never read by policies; often half an object
            objects.append({**obj, "metadata": metadata})
    return objects, refused
