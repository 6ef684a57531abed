"""``data.inventory``: the replicated objects referential policies read, bounded.

Laid out as Gatekeeper syncs it: ``cluster[<groupVersion>][<kind>][<name>]`` for
cluster-scoped objects and ``namespace[<ns>][<groupVersion>][<kind>][<name>]`` for the rest
(groupVersion ``v1`` for the core group). Namespaces also answer the namespaceSelector.
Only the kinds some policy needs are kept (the caller decides which), and at most
``max_objects``: past that, new objects are refused and counted rather than growing memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from garrison.admission.review import as_map


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    metadata = as_map(obj.get("metadata"))
    name = metadata.get("name")
    if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(name, str)):
        return None
    namespace = metadata.get("namespace")
    return (namespace if isinstance(namespace, str) else "", api_version, kind, name)


class Inventory:
    def __init__(self, objects: Iterable[Mapping[str, Any]] = (), max_objects: int = 200_000):
        self.max_objects = max_objects
        self.refused = 0
        self._objects: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
        self.version = 0
        for obj in objects:
            self.put(obj)

    def __len__(self) -> int:
        return len(self._objects)

    def put(self, obj: Mapping[str, Any]) -> bool:
        key = _key(obj)
        if key is None:
            return False
        if key not in self._objects and len(self._objects) >= self.max_objects:
            self.refused += 1
            return False
        self._objects[key] = obj
        self.version += 1
        return True

    def remove(self, obj: Mapping[str, Any]) -> None:
        key = _key(obj)
        if key is not None and self._objects.pop(key, None) is not None:
            self.version += 1

    def namespace(self, name: str) -> Mapping[str, Any] | None:
        return self._objects.get(("", "v1", "Namespace", name))

    def tree(self) -> dict[str, Any]:
        """The ``data.inventory`` document."""
        cluster: dict[str, Any] = {}
        namespaced: dict[str, Any] = {}
        for (namespace, api_version, kind, name), obj in self._objects.items():
            base = namespaced.setdefault(namespace, {}) if namespace else cluster
            base.setdefault(api_version, {}).setdefault(kind, {})[name] = obj
        return {"cluster": cluster, "namespace": namespaced}
