"""Which kinds the webhook replicates into data.inventory."""

from __future__ import annotations

import pytest

from garrison.admission.files import read_objects
from garrison.admission.sync import kinds_to_sync, parse_sync
from garrison.events.errors import GarrisonError
from tests.conftest import corpus

LIBRARY = corpus("gatekeeper-library-general") / "library" / "general"


def test_kinds_come_from_the_templates_annotation() -> None:
    templates = [
        *read_objects(LIBRARY / "uniqueingresshost" / "template.yaml"),
        *read_objects(LIBRARY / "storageclass" / "template.yaml"),
    ]
    kinds = kinds_to_sync(templates)
    assert {("extensions", "Ingress"), ("networking.k8s.io", "Ingress"), ("", "Namespace")} <= kinds
    assert ("storage.k8s.io", "StorageClass") in kinds
    assert kinds_to_sync(read_objects(LIBRARY / "requiredlabels" / "template.yaml")) == {
        ("", "Namespace")
    }


def test_parse_sync() -> None:
    assert parse_sync(["Namespace", "apps/Deployment"]) == {
        ("", "Namespace"),
        ("apps", "Deployment"),
    }
    with pytest.raises(GarrisonError):
        parse_sync(["apps/"])


def test_the_inventory_is_bounded_and_drops_managed_fields() -> None:
    from garrison.admission.audit import MemorySource
    from garrison.admission.sync import list_inventory

    def ingress(i: int) -> dict[str, object]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": f"i{i}", "namespace": "a", "managedFields": [{"big": "x" * 100}]},
        }

    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "a"}}
    source = MemorySource([*(ingress(i) for i in range(5)), secret])
    objects, refused = list_inventory(source, {("networking.k8s.io", "Ingress")}, max_objects=3)
    assert [o["metadata"]["name"] for o in objects] == ["i0", "i1", "i2"] and refused == 2
    assert all("managedFields" not in o["metadata"] for o in objects)
    assert source.objects[0]["metadata"]["managedFields"]  # the source's objects are not changed
