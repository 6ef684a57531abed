"""Operator semantics and the engine, on real audit events."""

from __future__ import annotations

import pytest
import yaml

from garrison.rules import Engine, default_sources, load_texts
from tests.conftest import audit_event, pod

SOURCE = default_sources()["k8s_audit"]


def engine_for(condition: str, extra: str = "") -> Engine:
    rule = {
        "rule": "r",
        "desc": "d",
        "condition": condition,
        "output": "out %ka.user.name %ka.req.pod.containers.image",
        "priority": "WARNING",
        "source": "k8s_audit",
    }
    text = f"{extra}\n{yaml.safe_dump([rule])}"
    loaded = load_texts([("t.yaml", text)])
    assert loaded.errors == []
    engine, report = Engine.build(loaded.ruleset, SOURCE)
    assert report.errors == [], report.errors
    return engine


def fires(condition: str, event: object, extra: str = "") -> bool:
    return bool(engine_for(condition, extra).evaluate(event))


EVENT = audit_event(request_object=pod(image="nginx:1.27", privileged=True, host_paths=["/etc"]))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("ka.verb = create", True),
        ("ka.verb != create", False),
        ("ka.verb in (get, create)", True),
        ("ka.user.name startswith ali", True),
        ("ka.user.name endswith ice", True),
        ("ka.user.name contains lic", True),
        ("ka.user.name icontains LIC", True),
        ("ka.uri glob '/api/v1/*/default/pods'", True),
        ("ka.uri pmatch (/api/v1)", True),
        ("ka.uri pmatch (/api/v)", False),
        ("ka.response.code startswith 2", True),
        ("jevt.rawtime > 0", True),
        ("jevt.rawtime = 0", False),
        ("ka.req.pod.containers.privileged intersects (true)", True),
        ("ka.req.pod.containers.image.repository in (nginx, redis)", True),
        ("ka.req.pod.containers.image.repository in (redis)", False),
        ("ka.req.pod.volumes.hostpath intersects (/etc, /proc)", True),
        ("ka.target.subresource exists", False),
        ("not ka.target.subresource exists", True),
        ("ka.impuser.name = bob", False),
        ("not ka.impuser.name = bob", True),
        ("ka.user.name regex '^al.ce$'", True),
        ("tolower(ka.verb) = create", True),
        ("len(ka.req.pod.containers.image) = 1", True),
        ("ka.user.name = val(ka.user.name)", True),
        ("ka.verb = anyof (get, create)", True),
        ("ka.verb = allof (get, create)", False),
        ("ka.uri.param[command] exists", False),
        ("jevt.value[/requestObject/spec/containers/0/image] = 'nginx:1.27'", True),
        ("jevt.value[/requestObject/spec/nothing] exists", False),
    ],
)
def test_operators(condition: str, expected: bool) -> None:
    assert fires(condition, EVENT) is expected


def test_list_references_expand_and_unknown_names_stay_strings() -> None:
    extra = "- list: verbs\n  items: [get, more]\n- list: more\n  items: [create]\n"
    assert fires("ka.verb in (verbs)", EVENT, extra)
    assert not fires("ka.verb in (not_a_list)", EVENT, extra)


def test_macros_expand_and_unknown_macro_is_an_error() -> None:
    assert fires("is_create", EVENT, "- macro: is_create\n  condition: ka.verb=create\n")
    loaded = load_texts(
        [
            (
                "t.yaml",
                "- rule: r\n  condition: nope\n  output: o\n  priority: INFO\n  source: k8s_audit\n",
            )
        ]
    )
    _, report = Engine.build(loaded.ruleset, SOURCE)
    assert "undefined macro 'nope'" in str(report.errors[0])
    assert "t.yaml:1 (r)" in str(report.errors[0])


def test_unknown_field_is_reported_by_name() -> None:
    text = "- rule: r\n  condition: ka.nothing = 1\n  output: o\n  priority: INFO\n  source: k8s_audit\n"
    _, report = Engine.build(load_texts([("t.yaml", text)]).ruleset, SOURCE)
    assert report.missing_fields == {"ka.nothing": ["r"]}


def test_exceptions_compile_to_and_not() -> None:
    text = """
- rule: r
  condition: ka.verb = create
  output: o
  priority: INFO
  source: k8s_audit
  exceptions:
    - name: known
      fields: [ka.user.name, ka.target.namespace]
      comps: [=, in]
      values: [[alice, [default, prod]]]
"""
    engine, report = Engine.build(load_texts([("t.yaml", text)]).ruleset, SOURCE)
    assert report.errors == []
    assert engine.evaluate(EVENT) == []
    assert engine.evaluate(audit_event(user="mallory")) != []


def test_output_renders_lists_and_missing_values() -> None:
    match = engine_for("ka.verb = create").evaluate(EVENT)[0]
    assert match.output == "out alice (nginx:1.27)"
    match = engine_for("ka.verb = get").evaluate(audit_event(verb="get"))[0]
    assert match.output == "out alice <NA>"


def test_index_only_tests_rules_that_can_match() -> None:
    engine = engine_for("ka.verb = delete and ka.target.resource in (secrets)")
    assert engine.candidates(EVENT) == ()
    assert len(engine.candidates(audit_event("delete", "secrets"))) == 1


def test_rule_values_never_become_code(tmp_path: object) -> None:
    """Generated rule functions bind values as constants: code-like text stays text."""
    hostile = "x') or __import__('os').system('touch /tmp/garrison-pwned') or ('"
    engine = engine_for(f"ka.user.name = {hostile!r} or ka.verb in ({hostile!r}, get)")
    assert engine.evaluate(EVENT) == []
    assert engine.evaluate(audit_event(user=hostile, verb="list")) != []
    import os

    assert not os.path.exists("/tmp/garrison-pwned")


def test_inline_and_closure_paths_agree() -> None:
    """Inline field templates give the same answers as the extractors' closures."""
    from garrison.rules.codegen import RuleCodegen
    from garrison.rules.compiler import Compiler
    from garrison.rules.condition import parse_condition
    from garrison.rules.fields import EvalContext

    compiler = Compiler(SOURCE.table, {}, {})
    events = [
        EVENT,
        audit_event("get", "secrets", code=403, namespace=""),
        audit_event(impersonated="bob"),
    ]
    for text in (
        "ka.verb = create and ka.response.code startswith 2",
        "ka.target.namespace = default or ka.impuser.name exists",
        "ka.target.subresource != exec and jevt.rawtime > 5",
        "ka.user.name in (alice, bob) and not ka.auth.decision = forbid",
        "jevt.value[/stage] = ResponseComplete and ka.target.name contains we",
    ):
        node = parse_condition(text)
        inline = RuleCodegen(compiler).function(node)
        closures = RuleCodegen(compiler, inline=False).function(node)
        for event in events:
            assert inline(EvalContext(event)) == closures(EvalContext(event)), (
                text,
                event.audit_id,
            )
