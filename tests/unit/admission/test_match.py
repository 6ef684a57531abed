"""Gatekeeper's match semantics: kinds, scope, namespaces, selectors, name."""

from __future__ import annotations

from typing import Any

import pytest

from garrison.admission.match import matches
from garrison.admission.model import PolicyError, parse_match
from garrison.admission.review import as_request


def pod(namespace: str = "shop", labels: dict[str, str] | None = None, name: str = "web") -> Any:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if namespace:
        meta["namespace"] = namespace
    return as_request({"apiVersion": "v1", "kind": "Pod", "metadata": meta})


def m(spec: dict[str, Any]) -> Any:
    return parse_match(spec, "test")


NAMESPACES = {
    "shop": {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"env": "prod"}},
    }
}


@pytest.mark.parametrize(
    ("spec", "request_", "expected"),
    [
        ({}, pod(), True),
        ({"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, pod(), True),
        ({"kinds": [{"apiGroups": ["apps"], "kinds": ["Pod"]}]}, pod(), False),
        ({"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]}, pod(), True),
        ({"kinds": [{"apiGroups": [""], "kinds": ["Service"]}]}, pod(), False),
        ({"scope": "Cluster"}, pod(), False),
        ({"scope": "Namespaced"}, pod(), True),
        ({"scope": "Namespaced"}, pod(namespace=""), False),
        ({"namespaces": ["shop"]}, pod(), True),
        ({"namespaces": ["sh*"]}, pod(), True),
        ({"namespaces": ["*op"]}, pod(), True),
        ({"namespaces": ["other"]}, pod(), False),
        # an object without a namespace is never filtered by namespaces (gator's rule)
        ({"namespaces": ["other"]}, pod(namespace=""), True),
        ({"excludedNamespaces": ["shop"]}, pod(), False),
        ({"excludedNamespaces": ["kube-*"]}, pod(), True),
        ({"labelSelector": {"matchLabels": {"app": "web"}}}, pod(labels={"app": "web"}), True),
        ({"labelSelector": {"matchLabels": {"app": "web"}}}, pod(labels={"app": "db"}), False),
        (
            {
                "labelSelector": {
                    "matchExpressions": [{"key": "app", "operator": "In", "values": ["a", "b"]}]
                }
            },
            pod(labels={"app": "b"}),
            True,
        ),
        (
            {
                "labelSelector": {
                    "matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["b"]}]
                }
            },
            pod(labels={"app": "b"}),
            False,
        ),
        (
            {"labelSelector": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}},
            pod(),
            False,
        ),
        (
            {"labelSelector": {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}},
            pod(),
            True,
        ),
        ({"namespaceSelector": {"matchLabels": {"env": "prod"}}}, pod(), True),
        ({"namespaceSelector": {"matchLabels": {"env": "dev"}}}, pod(), False),
        ({"name": "we*"}, pod(), True),
        ({"name": "db"}, pod(), False),
    ],
)
def test_match(spec: dict[str, Any], request_: Any, expected: bool) -> None:
    assert matches(m(spec), request_, NAMESPACES.get) is expected


def test_namespace_object_matches_on_its_own_name_and_labels() -> None:
    ns = as_request(NAMESPACES["shop"])
    assert matches(m({"namespaces": ["shop"]}), ns)
    assert not matches(m({"excludedNamespaces": ["shop"]}), ns)
    assert matches(m({"namespaceSelector": {"matchLabels": {"env": "prod"}}}), ns)
    assert matches(m({"scope": "Cluster"}), ns)


def test_namespace_selector_without_the_namespace_is_an_error() -> None:
    with pytest.raises(PolicyError, match="needs the Namespace 'shop'"):
        matches(m({"namespaceSelector": {"matchLabels": {"env": "prod"}}}), pod(), lambda _: None)


def test_bad_selector_operator_is_refused() -> None:
    with pytest.raises(PolicyError, match="operator"):
        m({"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Gt"}]}})
