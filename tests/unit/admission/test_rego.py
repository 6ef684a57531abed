"""The Rego adapter: OPA's semantics where regorus differs, error handling, the set contract."""

from __future__ import annotations

from typing import Any

import pytest

from garrison.admission.model import PolicyError, parse_template
from garrison.admission.rego import RegoProgram, rewrite_v0


def template(rego: str, libs: list[str] | None = None, v1: bool = False) -> Any:
    source: dict[str, Any] = {"rego": rego, "libs": libs or []}
    if v1:
        source["version"] = "v1"
    return parse_template(
        {
            "apiVersion": "templates.gatekeeper.sh/v1",
            "kind": "ConstraintTemplate",
            "metadata": {"name": "t"},
            "spec": {
                "crd": {"spec": {"names": {"kind": "T"}}},
                "targets": [
                    {
                        "target": "admission.k8s.gatekeeper.sh",
                        "code": [{"engine": "Rego", "source": source}],
                    }
                ],
            },
        }
    )


def msgs(rego: str, review: Any, parameters: Any = None, **kw: Any) -> list[str]:
    program = RegoProgram(template(rego, **kw))
    return sorted(v.msg for v in program.evaluate(review, parameters or {}))


NEGATION = """
package t
accept(rule, value, ranges) { rule == "MustRunAs"; value == 1 }
violation[{"msg": "denied"}] {
  params := input.parameters
  not accept("MustRunAs", 2, params.ranges)
}
"""


def test_negation_hoisting_matches_opa() -> None:
    # OPA: `not f(params.ranges)` with ranges undefined makes the whole body undefined.
    assert msgs(NEGATION, {}, {}) == []
    # with the argument defined, `not` is evaluated as usual
    assert msgs(NEGATION, {}, {"ranges": []}) == ["denied"]


def test_multi_body_set_rule_is_split_not_read_as_else() -> None:
    rego = """
package t
violation[{"msg": msg}] {
  input.review.object.a
  msg := "a"
} {
  input.review.object.b
  msg := "b"
}
"""
    assert msgs(rego, {"object": {"b": True}}) == ["b"]
    assert msgs(rego, {"object": {"a": True, "b": True}}) == ["a", "b"]
    assert "} {" not in rewrite_v0(rego)


def test_paren_after_newline_is_a_new_expression() -> None:
    rego = """
package t
violation[{"msg": "spread"}] {
  x := input.parameters.spread
  (input.review.object.max - input.review.object.min) < x
}
"""
    assert msgs(rego, {"object": {"max": 3, "min": 2}}, {"spread": 2}) == ["spread"]
    assert msgs(rego, {"object": {"max": 9, "min": 2}}, {"spread": 2}) == []


def test_re_match_is_regex_match() -> None:
    rego = 'package t\nviolation[{"msg": "m"}] { re_match("^x", input.review.name) }\n'
    assert msgs(rego, {"name": "xy"}) == ["m"]


def test_identical_violations_count_once() -> None:
    rego = 'package t\nviolation[{"msg": "same"}] { input.review.object.items[_] }\n'
    assert msgs(rego, {"object": {"items": [1, 2, 3]}}) == ["same"]


def test_libs_are_importable() -> None:
    lib = 'package lib.helpers\nbad(x) { x == "bad" }\n'
    rego = 'package t\nimport data.lib.helpers.bad\nviolation[{"msg": "m"}] { bad(input.review.name) }\n'
    assert msgs(rego, {"name": "bad"}, libs=[lib]) == ["m"]


def test_v1_source_is_not_rewritten() -> None:
    rego = (
        'package t\nimport rego.v1\nviolation contains {"msg": "m"} if input.review.name == "x"\n'
    )
    assert msgs(rego, {"name": "x"}, v1=True) == ["m"]


def test_runtime_error_is_one_violation_marked_as_error() -> None:
    rego = 'package t\nf := 1 { true }\nf := 2 { true }\nviolation[{"msg": "m"}] { f }\n'
    out = RegoProgram(template(rego)).evaluate({}, {})
    assert len(out) == 1 and out[0].error
    assert "Stack backtrace" not in out[0].msg


def test_compile_error_is_a_policy_error_naming_the_template() -> None:
    with pytest.raises(PolicyError, match="ConstraintTemplate t: Rego does not compile"):
        RegoProgram(template("package t\nviolation[{"))


def test_inventory_is_data_inventory() -> None:
    rego = (
        'package t\nviolation[{"msg": "dup"}] '
        '{ data.inventory.cluster["v1"].Namespace[input.review.name] }\n'
    )
    program = RegoProgram(template(rego))
    assert program.evaluate({"name": "a"}, {}) == []
    with_inv = program.with_inventory({"cluster": {"v1": {"Namespace": {"a": {}}}}})
    assert [v.msg for v in with_inv.evaluate({"name": "a"}, {})] == ["dup"]
