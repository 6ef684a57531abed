"""Shared evaluations: what a template can read is found right, and sharing never changes an answer."""

from __future__ import annotations

import copy
import glob
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import regorus
import yaml

from garrison.admission.builtins import Catalog
from garrison.admission.evaluate import PolicySet, load_policy_set
from garrison.admission.input_reads import input_prefixes
from garrison.admission.review import as_request
from tests.conftest import corpus

LIBRARY = corpus("gatekeeper-library-general") / "library" / "general"


def prefixes(rego: str, parameters: dict[str, Any] | None = None) -> set[str] | None:
    """The paths a rule ``v`` reads, as dotted text (for these parameters: none by default)."""
    engine = regorus.Engine()
    engine.add_policy("t.rego", "package t\nimport rego.v1\n" + rego)
    given = {} if parameters is None else parameters
    found = input_prefixes(engine.get_ast_as_json(), given, entry="v")
    return None if found is None else {".".join(p) for p in found}


P = "\0present"
W = "\0*"


@pytest.mark.parametrize(
    ("rego", "expected"),
    [
        ("v contains 1 if input.review.object.spec.hostPID", {"review.object.spec.hostPID"}),
        (  # iteration: every element's field, and which elements there are
            "v contains c.name if { some c in input.review.object.spec.containers }",
            {f"review.object.spec.containers.{W}.name", f"review.object.spec.containers.{W}.{P}"},
        ),
        (  # a constant key is a static step
            'v contains 1 if { f := "hostIPC"; input.review.object.spec[f] == true }',
            {"review.object.spec.hostIPC"},
        ),
        (  # a key that is one of several constants: each of those children
            'v contains 1 if { some f in ["a", "b"]; input.review.object.spec[f] == true }',
            {"review.object.spec.a", "review.object.spec.b"},
        ),
        (  # object.get with such keys, alone or in a key path: those paths only
            'v contains 1 if { some f in ["a", "b"]; object.get(input.review.object, f, 0) }\n'
            'v contains 2 if { some f in ["c", "d"]\n'
            '  object.get(input.review.object, ["x", f, "y"], 0) }',
            {f"review.object.{P}", *(f"review.object.{k}" for k in ("a", "b", "x.c.y", "x.d.y"))},
        ),
        (  # a key from a variable not known: every child
            "v contains 1 if { f := input.review.name; input.review.object.spec[f] == true }",
            {"review.name", f"review.object.spec.{W}"},
        ),
        (
            'v contains 1 if input["review"].object.metadata.labels.team == "a"',
            {"review.object.metadata.labels.team"},
        ),
        (  # object.get with a static key: that path, whether it is there, the object's type
            'v contains 1 if object.get(input.review.object, ["metadata", "labels"], {}).x',
            {
                "review.object.metadata.labels.x",
                f"review.object.metadata.labels.{P}",
                f"review.object.{P}",
            },
        ),
        (  # with a key that is not known, the whole object
            "v contains 1 if { k := input.review.object.k; object.get(input.review.object, k, 1) }",
            {"review.object"},
        ),
        (  # a rule standing for a part of input: what is read through it
            "o := input.review.object\nv contains 1 if o.metadata.name",
            {"review.object.metadata.name"},
        ),
        (  # the smallest set: a subtree read whole covers the reads inside it
            "v contains 1 if input.review.object.a\nv contains 2 if input.review.object",
            {"review.object"},
        ),
        (  # a dynamic index then more steps: the fields below, and the shape on the way
            "v contains c.name if { some f; c := input.review.object.spec[f][_] }",
            {
                f"review.object.spec.{W}.{W}.name",
                f"review.object.spec.{W}.{W}.{P}",
                f"review.object.spec.{W}.{P}",
            },
        ),
        (  # object.remove: a key that was not removed is read as it is
            'v contains 1 if { s := object.remove(input.review.object.spec, {"nodeName"}); s.x }',
            {"review.object.spec.x", f"review.object.spec.{P}"},
        ),
        (  # ... and the object whole, less the keys removed
            'v contains s if { s := object.remove(input.review.object.spec, {"nodeName"}) }',
            {"review.object.spec.\0without.nodeName", f"review.object.spec.{P}"},
        ),
        (  # with keys it cannot know, the subtree whole
            "v contains 1 if { s := object.remove(input.review.object.spec, input.review.k) }",
            {"review.object.spec", "review.k"},
        ),
        (  # a part of input given to a function: what the function reads of it
            'f(r) := r.operation\nv contains 1 if f(input.review) == "CREATE"',
            {"review.operation", f"review.{P}"},
        ),
        (  # through functions calling functions
            "g(o) := o.spec.hostPID\nf(r) := g(r.object)\nv contains 1 if f(input.review)",
            {"review.object.spec.hostPID", f"review.object.{P}", f"review.{P}"},
        ),
        (  # a function returning its argument: what the caller reads of it
            "f(r) := r\nv contains 1 if f(input.review.object).x",
            {"review.object.x", f"review.object.{P}"},
        ),
        (  # matched against a pattern: read whole
            'f("x") := 1\nv contains 1 if f(input.review.name)',
            {"review.name"},
        ),
        (  # a value used whole (a violation's details): the subtree whole
            'v contains {"c": c} if { some c in input.review.object.spec.containers }',
            {f"review.object.spec.containers.{W}"},
        ),
        (  # an exemption list that is empty: the image is not read
            'exempt(c) if { some e in object.get(input.parameters, "exemptImages", []); '
            "c.image == e }\n"
            "v contains c.name if { some c in input.review.object.spec.containers; not exempt(c) }",
            {f"review.object.spec.containers.{W}.name", f"review.object.spec.containers.{W}.{P}"},
        ),
        (  # a parameter that is absent is undefined: the body never runs
            "v contains 1 if { input.parameters.strict; input.review.object.spec.x }",
            set(),
        ),
        (  # input handed to a variable whole
            "v contains 1 if { x := input; x.review }",
            {"review"},
        ),
    ],
)
def test_prefixes_of_references(rego: str, expected: set[str]) -> None:
    assert prefixes(rego) == expected


NAME = "review.object.metadata.name"
NAMED = (
    'v contains {"msg": msg} if {\n  input.review.object.spec.hostPID\n'
    '  msg := sprintf("%v uses the host PID namespace", [input.review.object.metadata.name])\n}'
)


@pytest.mark.parametrize(
    ("rego", "reads_name"),
    [
        (NAMED, False),  # in a message only: its presence (and type) alone
        (  # through a function that formats, and a message in an object with details
            'm(o) := sprintf("<%v> <%v>", [o.kind, o.metadata.name])\n'
            'v contains {"msg": m(o), "details": {}} if {\n'
            "  o := input.review.object\n  o.spec.hostPID\n}",
            False,
        ),
        (NAMED.replace("%v uses", "%d uses"), True),  # another verb: formatting could fail
        (NAMED.replace("\n}", '\n  msg != "x uses the host PID namespace"\n}'), True),
        (NAMED.replace("\n}", '\n  startswith(msg, "web")\n}'), True),
        (  # a message stepped into (an array of them indexed): read whole
            'v contains 1 if {\n  ms := [sprintf("%v", [input.review.object.metadata.name])]\n'
            '  ms[0] == "web"\n}',
            True,
        ),
    ],
)
def test_what_only_reaches_messages_counts_by_presence(rego: str, reads_name: bool) -> None:
    """``outputs=True``: whether any violation exists. The full reads keep the name always."""
    engine = regorus.Engine()
    engine.add_policy("t.rego", "package t\nimport rego.v1\n" + rego)
    ast = engine.get_ast_as_json()
    full = input_prefixes(ast, {}, entry="v")
    any_violation = input_prefixes(ast, {}, entry="v", outputs=True)
    assert full is not None and any_violation is not None
    assert ("review", "object", "metadata", "name") in full
    assert (("review", "object", "metadata", "name") in any_violation) == reads_name
    if not reads_name:
        assert ("review", "object", "metadata", "name", P) in any_violation


def named_policy(code: dict[str, Any]) -> PolicySet:
    """A template ``Named`` with this target code (``rego`` or ``code``) and its constraint."""
    template = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": "named"},
        "spec": {
            "crd": {"spec": {"names": {"kind": "Named"}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh", **code}],
        },
    }
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "Named",
        "metadata": {"name": "named"},
        "spec": {},
    }
    return load_policy_set([template, constraint])


def test_replicas_share_no_violation_but_never_a_message() -> None:
    rego = "package t\nimport rego.v1\n" + NAMED.replace("v contains", "violation contains")
    policy = named_policy({"code": [{"engine": "Rego", "source": {"version": "v1", "rego": rego}}]})

    def pod(name: str, host_pid: bool) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"hostPID": host_pid, "containers": []},
        }

    def messages(obj: dict[str, Any]) -> list[str]:
        return [r.msg for r in policy.review(as_request(obj))]

    assert messages(pod("web-1", False)) == []
    assert messages(pod("web-2", False)) == [] and policy.cache.hits == 1
    assert messages(pod("web-3", True)) == ["web-3 uses the host PID namespace"]
    assert messages(pod("web-4", True)) == ["web-4 uses the host PID namespace"]
    assert policy.cache.hits == 1
    nameless = pod("web-5", False)
    del nameless["metadata"]["name"]  # no name: the message could not be made; not shared
    policy.cache.hits = 0
    messages(nameless)
    assert policy.cache.hits == 0


def test_an_exemption_list_given_makes_the_image_read() -> None:
    rego = (
        'exempt(c) if { some e in object.get(input.parameters, "exemptImages", []); '
        "c.image == e }\n"
        "v contains c.name if { some c in input.review.object.spec.containers; not exempt(c) }"
    )
    image = f"review.object.spec.containers.{W}.image"
    assert image in (prefixes(rego, {"exemptImages": ["x:1"]}) or set())
    engine = regorus.Engine()
    engine.add_policy("t.rego", "package t\nimport rego.v1\n" + rego)
    unknown = input_prefixes(engine.get_ast_as_json(), None, entry="v")  # parameters unknown
    assert unknown is not None and ("review", "object", "spec", "containers", W, "image") in unknown


@pytest.mark.parametrize(
    "rego",
    [
        "v contains 1 if count(input) > 0",  # input handed around whole
        'v contains 1 if object.get(input, "review", {}).uid == "" with input as {}',
        "v contains t if t := time.now_ns()",  # answers differ between calls
        'v contains 1 if http.send({"method": "GET", "url": "https://x"})',
        "v contains x if { some k; x := data.lib[k] }",  # data beyond its rules
        "a.b := input.review.x\nv contains 1 if a.b",  # a rule at a longer path
    ],
)
def test_unbounded_reads(rego: str) -> None:
    assert prefixes(rego) is None


def test_a_hoisted_negated_argument_reads_what_the_function_reads() -> None:
    """OPA's negation hoisting (``t := input.review; not f(t)``) keeps the call's precision;
    that ``input.review`` is there at all is part of the key."""
    from garrison.admission.rego import rewrite_v0

    engine = regorus.Engine()
    engine.set_rego_v0(True)
    source = (
        "package t\n"
        'is_update(review) { review.operation == "UPDATE" }\n'
        "violation[1] {\n  not is_update(input.review)\n}\n"
    )
    engine.add_policy("t.rego", rewrite_v0(source))
    assert input_prefixes(engine.get_ast_as_json()) == {
        ("review", "operation"),
        ("review", "\0present"),
    }


def test_imports_of_input_count_as_reads() -> None:
    engine = regorus.Engine()
    engine.set_rego_v0(True)
    engine.add_policy(
        "t.rego",
        "package t\nimport input.review.object as o\nv[1] { o.spec.x }\n",
    )
    assert input_prefixes(engine.get_ast_as_json(), entry="v") == {
        ("review", "object", "spec", "x")
    }


def library_and_builtins(cache_entries: int) -> PolicySet:
    catalog = Catalog()
    objects: list[dict[str, Any]] = catalog.template_objects()
    names: dict[tuple[str, str], int] = {}
    for policy in sorted(LIBRARY.iterdir()):
        objects += [o for o in yaml.safe_load_all((policy / "template.yaml").read_text()) if o]
        for path in sorted(glob.glob(str(policy / "samples" / "*" / "constraint.yaml"))):
            for obj in yaml.safe_load_all(Path(path).read_text()):
                key = (obj["kind"], obj["metadata"]["name"])
                names[key] = names.get(key, 0) + 1
                if names[key] > 1:
                    obj["metadata"]["name"] += f"-{names[key]}"
                objects.append(obj)
    for name in ("pod-security-baseline", "pod-security-restricted", "azure-kubernetes-builtins"):
        objects += catalog.constraint_objects(name)
    objects += exempting(objects)
    return load_policy_set(objects, cache_entries=cache_entries)


EXEMPTED = "docker.io/other/*"  # the image the variants give containers


def exempting(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of every constraint whose template takes ``exemptImages``, exempting the
    variants' image: so sharing is tested where the image is read for exemptions too."""
    takes = set()
    for obj in objects:
        if obj.get("kind") != "ConstraintTemplate":
            continue
        schema = obj["spec"]["crd"]["spec"].get("validation", {}).get("openAPIV3Schema", {})
        if "exemptImages" in (schema.get("properties") or {}):
            takes.add(obj["spec"]["crd"]["spec"]["names"]["kind"])
    copies = []
    for obj in objects:
        if obj.get("kind") in takes:
            copy_ = copy.deepcopy(obj)
            copy_["metadata"]["name"] += "-exempting"
            spec = copy_.setdefault("spec", {})
            spec["parameters"] = {**(spec.get("parameters") or {}), "exemptImages": [EXEMPTED]}
            copies.append(copy_)
    return copies


def sample_objects() -> list[dict[str, Any]]:
    out = []
    for path in sorted(glob.glob(str(LIBRARY / "*" / "samples" / "*" / "example_*.yaml"))):
        out += [o for o in yaml.safe_load_all(Path(path).read_text()) if isinstance(o, dict)]
    return out


def variants(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The object, a replica of it (other name, uid, creation time), then ones changed where
    templates look (images, labels, annotations, host settings), then the object again."""
    replica = copy.deepcopy(obj)
    meta = replica.setdefault("metadata", {})
    meta["name"] = str(meta.get("name", "x")) + "-7c9f8"
    meta["uid"] = "1f0e-replica"
    meta["creationTimestamp"] = "2026-12-04T07:00:00Z"
    images = copy.deepcopy(replica)
    for container in (images.get("spec") or {}).get("containers") or []:
        if isinstance(container, dict):
            container["image"] = "docker.io/other/thing:latest"
            container.pop("resources", None)
    tagged = copy.deepcopy(replica)  # a rollout: a new tag, nothing else
    for container in (tagged.get("spec") or {}).get("containers") or []:
        if isinstance(container, dict) and isinstance(container.get("image"), str):
            container["image"] = container["image"].rsplit(":", 1)[0] + ":9.9.9"
    exempt = copy.deepcopy(replica)  # the first container's image becomes exempted
    for container in ((exempt.get("spec") or {}).get("containers") or [])[:1]:
        if isinstance(container, dict):
            container["image"] = EXEMPTED.replace("*", "thing:1")
    labels = copy.deepcopy(replica)
    labels["metadata"]["labels"] = {"other": "x"}
    labels["metadata"]["annotations"] = {"container.apparmor.security.beta.kubernetes.io/a": "x"}
    # scheduled: nodeName set; then a scalar child of spec made a collection, and a
    # collection made a scalar (the narrower keys must still tell these apart)
    scheduled, reshaped, flattened = (copy.deepcopy(replica) for _ in range(3))
    if isinstance(replica.get("spec"), dict):
        scheduled["spec"]["nodeName"] = "node-3"
        reshaped["spec"]["nodeName"] = {"name": "node-3", "image": "x:latest"}
        flattened["spec"]["containers"] = "none"
    # containers renamed, and one left without a name (messages name containers)
    renamed = copy.deepcopy(replica)
    for at, container in enumerate((renamed.get("spec") or {}).get("containers") or []):
        if isinstance(container, dict):
            if at == 0:
                container.pop("name", None)
            else:
                container["name"] = f"renamed-{at}"
    host = copy.deepcopy(replica)
    if isinstance(host.get("spec"), dict):
        host["spec"]["hostNetwork"] = True
        host["spec"]["type"] = "LoadBalancer"
        for container in host["spec"].get("containers") or []:
            if isinstance(container, dict):
                container["securityContext"] = {"privileged": True}
    return [
        obj,
        replica,
        scheduled,
        reshaped,
        flattened,
        images,
        tagged,
        exempt,
        labels,
        renamed,
        host,
        copy.deepcopy(obj),
    ]


def answers(policy: PolicySet, obj: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    results = policy.review(as_request(obj))
    return sorted((r.constraint_kind, r.constraint_name, r.msg, r.action) for r in results)


def test_sharing_never_changes_an_answer() -> None:
    """Every library sample and its replicas through the whole set, shared and not."""
    shared, fresh = library_and_builtins(4096), library_and_builtins(0)
    compared = 0
    for obj in sample_objects():
        for variant in variants(obj):
            assert answers(shared, variant) == answers(fresh, variant), variant
            compared += 1
    assert compared > 400
    assert shared.cache.hits > 1000  # replicas and repeats shared their evaluations
    assert fresh.cache.hits == 0


def test_a_message_that_names_the_object_is_not_shared() -> None:
    policy = named_policy(
        {
            "rego": (
                "package named\n"
                'violation[{"msg": msg}] {\n'
                "  input.review.object.spec.hostNetwork\n"
                '  msg := sprintf("%v uses the host network", '
                "[input.review.object.metadata.name])\n"
                "}\n"
            )
        }
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop"},
        "spec": {"hostNetwork": True, "containers": []},
    }
    replica = copy.deepcopy(pod)
    replica["metadata"]["name"] = "web-2"
    assert [r.msg for r in policy.review(as_request(pod))] == ["web-1 uses the host network"]
    assert [r.msg for r in policy.review(as_request(replica))] == ["web-2 uses the host network"]
    assert policy.cache.hits == 0


def test_inventory_changes_clear_what_was_shared() -> None:
    from garrison.admission.inventory import Inventory

    policy = library_and_builtins(4096)
    obj = sample_objects()[0]
    answers(policy, obj)
    answers(policy, obj)
    hits = policy.cache.hits
    assert hits > 0 and len(policy.cache) > 0
    policy.replace_inventory(Inventory([]))
    answers(policy, obj)  # evaluated again: what was shared went with the old inventory
    assert policy.cache.hits == hits


def test_the_cache_is_bounded_and_keeps_no_errors() -> None:
    from garrison.admission.rego import Violation
    from garrison.admission.result_cache import MAX_VIOLATIONS_KEPT, ResultCache

    cache = ResultCache(entries=3)
    keys = [cache.key("K", "{}", {"object": {"n": i}}, (("object",),)) for i in range(5)]
    assert len(set(keys)) == 5
    for key in keys:
        cache.put(key, [Violation(msg="m")])
    assert len(cache) == 3 and cache.get(keys[0]) is None and cache.get(keys[4]) is not None
    cache.put(keys[0], [Violation(msg="boom", error=True)])
    cache.put(keys[1], [Violation(msg=str(i)) for i in range(MAX_VIOLATIONS_KEPT + 1)])
    assert cache.get(keys[0]) is None and cache.get(keys[1]) is None
    absent = cache.key("K", "{}", {}, (("object",),))
    null = cache.key("K", "{}", {"object": None}, (("object",),))
    assert absent != null  # a missing field and a null one are told apart


def test_narrower_keys_change_only_with_what_can_be_read() -> None:
    from garrison.admission.input_reads import PRESENT, WILD, WITHOUT
    from garrison.admission.result_cache import ResultCache

    cache = ResultCache()
    spec = {"nodeName": "a", "containers": [{"name": "web"}], "hostPID": False}

    def key(prefix: tuple[str, ...], **changes: object) -> bytes:
        return cache.key("K", "{}", {"object": {"spec": spec | changes}}, (prefix,))

    shape = ("object", "spec", WILD, PRESENT)  # each child's type only
    assert key(shape) == key(shape, nodeName="b") == key(shape, hostPID=True)
    assert key(shape) != key(shape, nodeName={"x": 1})
    assert key(shape) != key(shape, priority=1)  # a new child
    names = ("object", "spec", "containers", WILD, "name")
    assert key(names) == key(names, containers=[{"name": "web", "image": "x:2"}])
    assert key(names) != key(names, containers=[{"name": "api"}])
    assert key(names) != key(names, containers=[{"name": "web"}, {"name": "web"}])
    without = ("object", "spec", WITHOUT, "nodeName")
    assert key(without) == key(without, nodeName="b")
    assert key(without) != key(without, hostPID=True)


def test_no_value_in_a_review_keys_like_a_marker() -> None:
    """A crafted object must not take the key of another: values and markers never encode
    alike (a list ["a"] where nothing is, ["s"] where a scalar child is, ...)."""
    from garrison.admission.input_reads import PRESENT, WILD
    from garrison.admission.result_cache import ResultCache

    cache = ResultCache()

    def key(obj: object, prefix: tuple[str, ...]) -> bytes:
        return cache.key("K", "{}", {"object": obj}, (prefix,))

    for marker in (["a"], ["absent"], ["s"], ["p", "dict"], ["v", None]):
        assert key({"spec": marker}, ("object", "spec")) != key({}, ("object", "spec"))
        assert key({"spec": {"x": marker}}, ("object", "spec", WILD)) != key(
            {"spec": {"x": "node-1"}}, ("object", "spec", WILD)
        )
        assert key({"spec": [{"n": marker}]}, ("object", "spec", WILD, "n")) != key(
            {"spec": [{}]}, ("object", "spec", WILD, "n")
        )
        assert key(marker, ("object", PRESENT)) != key({}, ("object", PRESENT))
    assert key({"spec": None}, ("object", "spec")) != key({}, ("object", "spec"))


def test_rollouts_share_only_what_cannot_tell_them_apart() -> None:
    """The benchmark's rollouts (a Deployment with a new tag, good and bad in turn, then its
    pods) through the whole set, shared and not: the same answers, and most shared."""
    import json

    from bench.admission import review_bodies

    shared, fresh = library_and_builtins(4096), library_and_builtins(0)
    for body in review_bodies(96):
        request = json.loads(body)["request"]
        got = sorted((r.constraint_kind, r.constraint_name, r.msg) for r in shared.review(request))
        want = sorted((r.constraint_kind, r.constraint_name, r.msg) for r in fresh.review(request))
        assert got == want, request["object"]["metadata"]["name"]
    assert shared.cache.hits > shared.cache.misses


def test_generated_projections_equal_the_walk() -> None:
    """Each path set's generated walker projects every sample and variant as the generic
    walk does (the walk is the reference; the generated one is what keys use)."""
    from garrison.admission.result_cache import _walk, compile_paths, compile_walker
    from garrison.admission.review import as_request

    policy = library_and_builtins(4096)
    path_sets = set()
    for lc in policy.constraints:
        loaded = policy.templates[lc.constraint.kind]
        if loaded.rego is not None:
            keyed = loaded.keyed_by(lc.parameters_json, lc.parameters)
            if keyed is not None:
                path_sets.add(keyed)
    assert len(path_sets) > 20
    reviews = [as_request(v) for obj in sample_objects()[:40] for v in variants(obj)]
    for paths in path_sets:
        trie = compile_paths(paths)
        walker = compile_walker(trie)
        for review in reviews:
            assert walker(review) == _walk(review, trie)


def _reads(node: Any, prefix: tuple[str, ...], at: tuple[Any, ...] = ()) -> Iterator[Any]:
    """What a template reading ``prefix`` can see of ``node``: the values (or types, or
    shapes) at each concrete path it reaches; nothing where a step finds nothing."""
    from garrison.admission.input_reads import PRESENT, WILD, WITHOUT

    if not prefix:
        yield (at, "v", json.dumps(node))
        return
    step, rest = prefix[0], prefix[1:]
    if step == PRESENT:
        yield (at, "p", type(node).__name__)
    elif step == WITHOUT:
        kept = {k: v for k, v in node.items() if k not in rest} if type(node) is dict else node
        yield (at, "v", json.dumps(kept))
    elif step == WILD:
        members = list(node.items()) if type(node) is dict else None
        if type(node) is list:
            members = list(enumerate(node))
        if members is None:
            yield (at, "scalar")
            return
        yield (at, "members", json.dumps([k for k, _ in members]))
        for key, value in members:
            yield from _reads(value, rest, (*at, key))
    elif type(node) is dict and step in node:
        yield from _reads(node[step], rest, (*at, step))


def test_a_coarse_key_never_joins_reviews_a_template_can_tell_apart() -> None:
    """Equal subtrees must mean equal reads: for every keyed constraint, reviews with one
    coarse key read the same at every path of the template; and replicas do share."""
    from garrison.admission.result_cache import ReviewKeys, coarse_subtrees
    from garrison.admission.review import as_request

    policy = library_and_builtins(4096)
    reviews = [as_request(v) for obj in sample_objects()[:60] for v in variants(obj)]
    joined = 0
    planned = [lc for lc in policy.constraints if lc.plan is not None]
    assert len(planned) > 40
    for lc in planned:
        assert lc.plan is not None
        prefixes = policy.templates[lc.constraint.kind].keyed_by(lc.parameters_json, lc.parameters)
        assert prefixes is not None
        reads_of: dict[bytes, list[Any]] = {}
        for review in reviews:
            coarse = ReviewKeys(review).coarse(lc.plan)
            reads = [sorted(_reads(review, prefix), key=repr) for prefix in prefixes]
            joined += coarse in reads_of
            assert reads_of.setdefault(coarse, reads) == reads, lc.constraint.kind
    assert joined > 1000
    # a presence read at the top stays a presence read; wildcards and depth cut the path
    from garrison.admission.input_reads import PRESENT, WILD

    assert coarse_subtrees([(PRESENT,), ("object", "spec", WILD, "image")]) == [
        ((), True),
        (("object", "spec"), False),
    ]
    assert coarse_subtrees([("object", "metadata", "labels", "app")]) == [
        (("object", "metadata", "labels"), False)
    ]


def test_replicas_are_found_by_their_coarse_key() -> None:
    """A ReplicaSet's pods: the second finds every result without an exact projection."""
    from bench.admission import replica, workloads

    policy = library_and_builtins(4096)
    template = next(w for w in workloads() if w["kind"] == "Pod")
    first, second = (as_request(replica(template, "web-abc", i)) for i in (1, 2))
    policy.review(first)
    walked = []
    for lc in policy.constraints:
        if lc.plan is not None:
            walker = lc.plan.walker

            def counting(review: Any, walker: Any = walker) -> Any:
                walked.append(1)
                return walker(review)

            object.__setattr__(lc.plan, "walker", counting)
    hits = policy.cache.hits
    policy.review(second)
    assert policy.cache.hits > hits
    assert len(walked) <= 8  # only the few templates that read the pod's name
