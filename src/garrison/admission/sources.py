"""Where an admission deployment's policies come from: files, built-in initiatives, inventory.

``PolicySources.load()`` reads everything into one bundle: the templates and constraints
for the evaluation worker, the mutators, the inventory objects and the Namespaces (for
``namespaceObject`` and namespaceSelector). ``fingerprint()`` changes when any file does,
so a running webhook reloads policies without a restart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from garrison.admission.builtins import Catalog
from garrison.admission.files import POLICY_SUFFIXES, read_objects, read_tree
from garrison.admission.model import PolicyError
from garrison.admission.mutation import MUTATION_GROUP, MutatorSet
from garrison.admission.result_cache import DEFAULT_ENTRIES
from garrison.events.policy import PolicyAssignment


@dataclass
class Bundle:
    objects: list[Mapping[str, Any]]  # ConstraintTemplates and Constraints
    mutators: MutatorSet
    inventory: list[Mapping[str, Any]]
    namespaces: dict[str, Mapping[str, Any]]
    exempt_namespaces: tuple[str, ...] = ()  # from the central assignment

    def load_message(self, engine: str, cache_entries: int = DEFAULT_ENTRIES) -> dict[str, Any]:
        return {
            "op": "load",
            "objects": self.objects,
            "inventory": self.inventory,
            "engine": engine,
            "cache_entries": cache_entries,
        }


def parse_effects(items: Sequence[str]) -> dict[str, dict[str, str]]:
    """``INITIATIVE/CONSTRAINT=EFFECT`` overrides, by initiative."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, effect = item.partition("=")
        initiative, slash, name = target.partition("/")
        if not sep or not slash or not initiative or not name or not effect:
            raise PolicyError(f"--effect {item!r}: expected INITIATIVE/CONSTRAINT=EFFECT")
        out.setdefault(initiative, {})[name] = effect
    return out


@dataclass
class PolicySources:
    paths: list[Path] = field(default_factory=list)
    initiatives: list[str] = field(default_factory=list)
    effects: dict[str, dict[str, str]] = field(default_factory=dict)
    inventory_paths: list[Path] = field(default_factory=list)
    assignment: PolicyAssignment | None = None  # pulled from the backend

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for path in [*self.paths, *self.inventory_paths]:
            if path.is_dir():
                files.extend(sorted(p for p in path.rglob("*") if p.suffix in POLICY_SUFFIXES))
            else:
                files.append(path)
        return files

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path in self._files():
            try:
                stat = path.stat()
            except OSError:
                digest.update(f"{path}:missing".encode())
                continue
            digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode())
        if self.assignment is not None:
            digest.update(f"assignment:{self.assignment.version}".encode())
        return digest.hexdigest()

    def load(self) -> Bundle:
        """Local files and built-ins, and the central assignment on top of them."""
        remote = self.assignment or PolicyAssignment()
        initiatives = list(dict.fromkeys([*self.initiatives, *remote.initiatives]))
        effects = {k: dict(v) for k, v in self.effects.items()}
        for initiative, overrides in parse_effects(
            [f"{k}={v}" for k, v in remote.effects.items()]
        ).items():
            effects.setdefault(initiative, {}).update(overrides)
        objects: list[Mapping[str, Any]] = []
        if initiatives:
            catalog = Catalog()
            objects.extend(catalog.template_objects())
            for name in initiatives:
                objects.extend(catalog.constraint_objects(name, effects.get(name)))
        mutator_objects: list[Mapping[str, Any]] = []
        for obj in [*read_tree(self.paths), *remote.objects]:
            if str(obj.get("apiVersion", "")).startswith(MUTATION_GROUP + "/"):
                mutator_objects.append(obj)
            else:
                objects.append(obj)
        inventory = [o for p in self.inventory_paths for o in read_objects(p)]
        namespaces = {
            str(o["metadata"]["name"]): o
            for o in inventory
            if o.get("kind") == "Namespace" and isinstance(o.get("metadata"), Mapping)
        }
        exempt = tuple(remote.exempt_namespaces)
        if exempt:
            objects = [_exclude(o, exempt) for o in objects]
        return Bundle(
            objects, MutatorSet.from_objects(mutator_objects), inventory, namespaces, exempt
        )


def _exclude(obj: Mapping[str, Any], namespaces: tuple[str, ...]) -> Mapping[str, Any]:
    """A constraint that also excludes ``namespaces`` (so the audit honours exemptions too)."""
    if not str(obj.get("apiVersion", "")).startswith("constraints.gatekeeper.sh/"):
        return obj
    spec = dict(obj.get("spec") or {})
    match = dict(spec.get("match") or {})
    match["excludedNamespaces"] = [*(match.get("excludedNamespaces") or []), *namespaces]
    spec["match"] = match
    return {**obj, "spec": spec}
