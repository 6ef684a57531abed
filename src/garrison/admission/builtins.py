"""garrison's built-in admission policies as Gatekeeper objects, grouped into initiatives.

The catalog (``content/policies/catalog.yaml``) names each ConstraintTemplate, its kind,
title and parameter schema; its Rego (v1) lives in ``templates/<name>.rego`` and the
libraries it imports in ``lib/``. Templates are built as ``templates.gatekeeper.sh/v1``
objects, so ``garrison policy export`` output applies to a plain Gatekeeper too.

An initiative assigns constraints with default effects — ``deny``, ``warn``, ``audit``
(Gatekeeper's ``dryrun``: found by the audit sweep, never blocking) or ``disabled`` — that
an assignment may override per constraint. kube-system, garrison's and Gatekeeper's own
namespaces are excluded by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from garrison.admission.model import ADMISSION_TARGET, PolicyError
from garrison.content import policy_catalog_file
from garrison.events.policy import EFFECTS
from garrison.yaml12 import load_all

ACTIONS = {"deny": "deny", "warn": "warn", "audit": "dryrun"}  # effect -> enforcementAction
INITIATIVE_LABEL = "garrison.dev/initiative"


class Catalog:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or policy_catalog_file()
        docs = list(load_all(self.path.read_text()))
        if len(docs) != 1 or not isinstance(docs[0], Mapping):
            raise PolicyError(f"{self.path}: the catalog must be one YAML map")
        self.data: Mapping[str, Any] = docs[0]
        self.root = self.path.parent

    def initiative_names(self) -> list[str]:
        return [str(i["name"]) for i in self.data.get("initiatives") or []]

    def template_objects(self) -> list[dict[str, Any]]:
        return [self._template(entry) for entry in self.data.get("templates") or []]

    def _template(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        name = str(entry["name"])
        rego = (self.root / "templates" / f"{name}.rego").read_text()
        libs = [(self.root / "lib" / f"{lib}.rego").read_text() for lib in entry.get("libs") or []]
        schema: dict[str, Any] = {"type": "object"}
        if entry.get("parameters"):
            schema["properties"] = dict(entry["parameters"])
        return {
            "apiVersion": "templates.gatekeeper.sh/v1",
            "kind": "ConstraintTemplate",
            "metadata": {
                "name": name,
                "annotations": {
                    "metadata.gatekeeper.sh/title": str(entry.get("title", name)),
                    "garrison.dev/builtin": "true",
                },
            },
            "spec": {
                "crd": {
                    "spec": {
                        "names": {"kind": str(entry["kind"])},
                        "validation": {"openAPIV3Schema": schema},
                    }
                },
                "targets": [
                    {
                        "target": ADMISSION_TARGET,
                        "code": [
                            {
                                "engine": "Rego",
                                "source": {"version": "v1", "rego": rego, "libs": libs},
                            }
                        ],
                    }
                ],
            },
        }

    def constraint_objects(
        self, initiative: str, effects: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """The constraints of one initiative; ``effects`` overrides by constraint name."""
        effects = effects or {}
        entry = next(
            (i for i in self.data.get("initiatives") or [] if i.get("name") == initiative), None
        )
        if entry is None:
            known = ", ".join(self.initiative_names())
            raise PolicyError(f"no built-in initiative {initiative!r} (known: {known})")
        excluded = list(self.data.get("excludedNamespaces") or [])
        out: list[dict[str, Any]] = []
        for item in entry.get("constraints") or []:
            short = str(item["name"])
            effect = effects.get(short, str(item.get("effect") or entry.get("effect") or "deny"))
            if effect == "disabled":
                continue
            if effect not in ACTIONS:
                raise PolicyError(
                    f"{initiative}/{short}: effect {effect!r} is not one of {list(EFFECTS)}"
                )
            spec: dict[str, Any] = {
                "enforcementAction": ACTIONS[effect],
                "match": {
                    "kinds": list(item.get("kinds") or entry.get("kinds") or []),
                    "excludedNamespaces": excluded,
                },
            }
            if item.get("parameters"):
                spec["parameters"] = dict(item["parameters"])
            out.append(
                {
                    "apiVersion": "constraints.gatekeeper.sh/v1beta1",
                    "kind": str(item["kind"]),
                    "metadata": {
                        "name": f"{initiative}-{short}",
                        "labels": {INITIATIVE_LABEL: initiative},
                    },
                    "spec": spec,
                }
            )
        return out
