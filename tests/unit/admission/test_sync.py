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
