"""Gatekeeper mutators as JSON Patches: the patch, applied, gives the mutated object."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from garrison.admission.model import PolicyError
from garrison.admission.mutation import MutatorSet, json_patch, parse_location, parse_mutator
from garrison.admission.review import as_request


def apply_patch(doc: Any, patch: list[dict[str, Any]]) -> Any:
    """A minimal RFC 6902 applier (add/replace/remove), independent of the code under test."""
    doc = copy.deepcopy(doc)
    for op in patch:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif isinstance(parent, list):
            if last == "-":
                parent.append(op["value"])
            else:
                parent[int(last)] = op["value"]
        else:
            parent[last] = op["value"]
    return doc


def assign(name: str, location: str, value: Any, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "mutations.gatekeeper.sh/v1",
        "kind": "Assign",
        "metadata": {"name": name},
        "spec": {
            "applyTo": [{"groups": [""], "kinds": ["Pod"], "versions": ["v1"]}],
            "location": location,
            "parameters": {"assign": {"value": value}, **spec.pop("parameters", {})},
            **spec,
        },
    }


def metadata(name: str, location: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "mutations.gatekeeper.sh/v1",
        "kind": "AssignMetadata",
        "metadata": {"name": name},
        "spec": {"location": location, "parameters": {"assign": {"value": value}}},
    }


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "shop", "labels": {"team": "a"}},
    "spec": {
        "containers": [
            {"name": "a", "image": "x"},
            {"name": "b", "image": "y", "securityContext": {"privileged": True}},
        ]
    },
}


def mutated(mutators: list[dict[str, Any]], obj: Any = POD) -> Any:
    review = as_request(obj)
    patch = MutatorSet.from_objects(mutators).patch(review)
    return apply_patch(obj, patch)


def test_assign_every_container() -> None:
    out = mutated([assign("no-priv", "spec.containers[name:*].securityContext.privileged", False)])
    assert [c["securityContext"]["privileged"] for c in out["spec"]["containers"]] == [False, False]


def test_assign_named_item_is_created_when_missing() -> None:
    out = mutated([assign("sidecar", "spec.containers[name:proxy].image", "envoy:1")])
    assert out["spec"]["containers"][-1] == {"name": "proxy", "image": "envoy:1"}


def test_assign_metadata_adds_but_never_changes() -> None:
    out = mutated(
        [
            metadata("owner", "metadata.labels.owner", "platform"),
            metadata("team", "metadata.labels.team", "b"),
        ]
    )
    assert out["metadata"]["labels"] == {"team": "a", "owner": "platform"}


def test_path_tests_guard_the_assignment() -> None:
    m = assign(
        "default-sc",
        "spec.containers[name:*].securityContext.runAsNonRoot",
        True,
        parameters={"pathTests": [{"subPath": "spec.securityContext", "condition": "MustExist"}]},
    )
    assert mutated([m]) == POD
    with_sc = copy.deepcopy(POD)
    with_sc["spec"]["securityContext"] = {}
    assert all(
        c["securityContext"]["runAsNonRoot"] for c in mutated([m], with_sc)["spec"]["containers"]
    )


def test_apply_to_and_match_select_objects() -> None:
    m = assign(
        "x", "spec.containers[name:*].imagePullPolicy", "Always", match={"namespaces": ["other"]}
    )
    assert mutated([m]) == POD
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "shop"},
        "spec": {},
    }
    assert mutated([assign("y", "spec.type", "ClusterIP")], svc) == svc


def test_mutators_apply_in_name_order() -> None:
    out = mutated([assign("b-second", "spec.priority", 2), assign("a-first", "spec.priority", 1)])
    assert out["spec"]["priority"] == 2


def test_invalid_mutators_are_refused() -> None:
    with pytest.raises(PolicyError, match="AssignMetadata"):
        parse_mutator(assign("m", "metadata.labels.x", "v"))
    with pytest.raises(PolicyError, match="labels"):
        parse_mutator(metadata("m", "spec.x", "v"))
    with pytest.raises(PolicyError, match="cannot read segment"):
        parse_location("spec.containers[name:*")


def test_json_patch_round_trips() -> None:
    before = {"a": 1, "b": {"c": [1, 2]}, "d/e": "x", "gone": True}
    after = {"a": 2, "b": {"c": [1, 3, 4]}, "d/e": "y", "new": None}
    assert apply_patch(before, json_patch(before, after)) == after


def mutator(kind: str, name: str, location: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "mutations.gatekeeper.sh/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "applyTo": [{"groups": [""], "kinds": ["Pod"], "versions": ["v1"]}],
            "location": location,
            "parameters": parameters,
        },
    }


def with_args(*args: list[str]) -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    for container, given in zip(pod["spec"]["containers"], args, strict=False):
        container["args"] = given
    return pod


def test_modify_set_merges_missing_values_at_the_end() -> None:
    m = mutator(
        "ModifySet",
        "log-args",
        "spec.containers[name: *].args",
        {"values": {"fromList": ["--v=2", "--logtostderr"]}},
    )
    out = mutated([m], with_args(["--logtostderr"], []))
    assert [c["args"] for c in out["spec"]["containers"]] == [
        ["--logtostderr", "--v=2"],
        ["--v=2", "--logtostderr"],
    ]
    created = mutated([m])  # no args at all: merge makes the list
    assert created["spec"]["containers"][0]["args"] == ["--v=2", "--logtostderr"]


def test_modify_set_prunes_and_creates_nothing() -> None:
    m = mutator(
        "ModifySet",
        "no-stderr",
        "spec.containers[name: *].args",
        {"operation": "prune", "values": {"fromList": ["--alsologtostderr"]}},
    )
    out = mutated([m], with_args(["--alsologtostderr", "-x", "--alsologtostderr"], ["-y"]))
    assert [c["args"] for c in out["spec"]["containers"]] == [["-x"], ["-y"]]
    named = mutator(
        "ModifySet",
        "no-stderr",
        "spec.containers[name: missing].args",
        {"operation": "prune", "values": {"fromList": ["-x"]}},
    )
    assert mutated([named]) == POD  # prune never makes the container it names


@pytest.mark.parametrize(
    ("image", "parameters", "expected"),
    [
        ("nginx", {"assignDomain": "mirror.example.com"}, "mirror.example.com/nginx"),
        (
            "docker.io/library/nginx:1.27",
            {"assignDomain": "mirror.example.com:5000"},
            "mirror.example.com:5000/library/nginx:1.27",
        ),
        ("nginx:1.27", {"assignTag": "@sha256:abc123"}, "nginx@sha256:abc123"),
        ("localhost:5000/app@sha256:def", {"assignTag": ":v2"}, "localhost:5000/app:v2"),
        (
            "my.registry.io:2000/repo/app:latest",
            {"assignDomain": "my.registry.io", "assignPath": "repo/app", "assignTag": "@sha256:1"},
            "my.registry.io/repo/app@sha256:1",
        ),
        ("team/app:1", {"assignPath": "other/app"}, "other/app:1"),
    ],
)
def test_assign_image_rewrites_domain_path_and_tag(
    image: str, parameters: dict[str, Any], expected: str
) -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["image"] = image
    m = mutator("AssignImage", "img", "spec.containers[name: a].image", parameters)
    out = mutated([m], pod)
    assert out["spec"]["containers"][0]["image"] == expected
    assert out["spec"]["containers"][1]["image"] == "y"  # only the named container


def test_assign_image_refuses_what_gatekeeper_refuses() -> None:
    for parameters, message in (
        ({}, "one of assignDomain"),
        ({"assignTag": "latest"}, "start with"),
        ({"assignDomain": "a.io/x"}, "cannot contain"),
        ({"assignPath": "my.repo.lib/app"}, "reads as a domain"),
    ):
        with pytest.raises(PolicyError, match=message):
            parse_mutator(mutator("AssignImage", "i", "spec.containers[name: *].image", parameters))
    with pytest.raises(PolicyError, match="end in a field"):
        parse_mutator(mutator("AssignImage", "i", "spec.containers[name: a]", {"assignTag": ":v1"}))


def test_assign_from_metadata_copies_the_name_or_namespace() -> None:
    namespace_label = metadata("ns-label", "metadata.labels.namespace", "")
    namespace_label["spec"]["parameters"] = {"assign": {"fromMetadata": {"field": "namespace"}}}
    hostname = mutator(
        "Assign", "hostname", "spec.hostname", {"assign": {"fromMetadata": {"field": "name"}}}
    )
    out = mutated([namespace_label, hostname])
    assert out["metadata"]["labels"]["namespace"] == "shop"
    assert out["spec"]["hostname"] == "p"
    bad = mutator("Assign", "bad", "spec.x", {"assign": {"fromMetadata": {"field": "uid"}}})
    with pytest.raises(PolicyError, match="namespace or name"):
        parse_mutator(bad)


def test_assign_a_whole_list_item() -> None:
    sidecar = {"name": "networking", "image": "quay.io/foo/bar:latest", "imagePullPolicy": "Always"}
    out = mutated([assign("sidecar", "spec.containers[name: networking]", sidecar)])
    assert out["spec"]["containers"][-1] == sidecar
    replaced = mutated([assign("a", "spec.containers[name: a]", {"name": "a", "image": "z"})])
    assert replaced["spec"]["containers"][0] == {"name": "a", "image": "z"}
    with pytest.raises(PolicyError, match="needs a value"):
        parse_mutator(assign("bad", "spec.containers[name: a]", {"name": "b"}))
    with pytest.raises(PolicyError, match="needs a value"):
        parse_mutator(assign("bad", "spec.containers[name: *]", {"name": "a"}))
