from __future__ import annotations

import pytest

from garrison.rules.ast import And, Compare, FieldRef, ListLiteral, MacroRef, Not, Or, Transformed
from garrison.rules.condition import parse_condition
from garrison.rules.errors import ConditionSyntaxError


def test_precedence_not_and_or() -> None:
    node = parse_condition("a or not b and c")
    assert node == Or((MacroRef("a", 0), And((Not(MacroRef("b", 9)), MacroRef("c", 15)))))


def test_field_with_argument_and_bare_value() -> None:
    node = parse_condition("jevt.value[/annotations/authorization.k8s.io~1decision] = allow")
    assert isinstance(node, Compare)
    assert node.left == FieldRef("jevt.value", "/annotations/authorization.k8s.io~1decision")
    assert node.value == "allow"


def test_list_values_quoted_and_bare() -> None:
    node = parse_condition("ka.verb in (create, \"up date\", 'x,y')")
    assert isinstance(node, Compare) and node.value == ListLiteral(("create", "up date", "x,y"))


def test_not_directly_before_parenthesis() -> None:
    node = parse_condition("not(ka.verb=get)")
    assert isinstance(node, Not)


def test_transformer_and_quantifier() -> None:
    node = parse_condition("tolower(ka.user.name) startswith anyof (adm, root)")
    assert isinstance(node, Compare)
    assert node.left == Transformed("tolower", FieldRef("ka.user.name"))
    assert node.quantifier == "anyof"


def test_multiline_condition() -> None:
    node = parse_condition("ka.verb=create\n  and\n  ka.target.resource=pods")
    assert isinstance(node, And)


@pytest.mark.parametrize(
    ("text", "column"),
    [
        ("ka.verb =", 10),
        ("ka.verb in (a, b", 17),
        ("(ka.verb = get", 15),
        ("ka.verb = get extra", 15),
        ("ka.verb ~ get", 9),
        ("", 1),
        ('ka.uri = "unterminated', 10),
    ],
)
def test_syntax_errors_carry_the_column(text: str, column: int) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(text)
    assert info.value.position + 1 == column
