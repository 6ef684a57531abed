"""Compiles condition ASTs to Python closures against one source's field table.

Macros and list references are expanded once, here. Semantics follow libsinsp: a field that
cannot be extracted makes every comparison on it false; with a list field on the left,
``in`` holds when every value is in the set, ``intersects`` when any is, and the other
operators when any value satisfies them.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os.path
import re
from collections.abc import Callable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from garrison.rules.ast import (
    And,
    Compare,
    FieldRef,
    FieldValue,
    ListLiteral,
    MacroRef,
    Node,
    Not,
    Operand,
    Or,
    Transformed,
)
from garrison.rules.condition import LIST_OPS, NUMERIC_OPS, parse_condition
from garrison.rules.errors import ConditionSyntaxError, RulesError, UnknownFieldError
from garrison.rules.fields import EvalContext, FieldDef, FieldTable, FieldValueT
from garrison.rules.model import ExceptionDef, ListDef, MacroDef

Predicate = Callable[[EvalContext], bool]
Getter = Callable[[EvalContext], FieldValueT]

MAX_MACRO_DEPTH = 64


class CompileError(RulesError):
    """A condition that parses but cannot be compiled (unknown macro, bad argument, ...)."""


class Compiler:
    """Expands macros and lists and compiles conditions for one source."""

    def __init__(
        self,
        table: FieldTable,
        macros: Mapping[str, MacroDef],
        lists: Mapping[str, ListDef],
    ) -> None:
        self.table = table
        self.macros = macros
        self.lists = lists
        self._macro_ast: dict[str, Node] = {}
        self._list_cache: dict[str, tuple[str, ...]] = {}
        self._compares: dict[tuple[object, ...], Predicate] = {}
        self.shared: frozenset[tuple[object, ...]] = frozenset()

    def share(self, nodes: list[Node]) -> None:
        """Mark the comparisons that occur more than once across ``nodes`` for memoizing."""
        seen: set[tuple[object, ...]] = set()
        shared: set[tuple[object, ...]] = set()
        stack = list(nodes)
        while stack:
            node = stack.pop()
            if isinstance(node, Compare):
                key = _compare_key(node)
                (shared if key in seen else seen).add(key)
            elif isinstance(node, (And, Or)):
                stack.extend(node.terms)
            elif isinstance(node, Not):
                stack.append(node.term)
        self.shared = frozenset(shared)

    # -- expansion ------------------------------------------------------------------------
    def expand_list(self, name: str, seen: frozenset[str] = frozenset()) -> tuple[str, ...]:
        cached = self._list_cache.get(name)
        if cached is not None:
            return cached
        if name in seen:
            raise CompileError(f"list '{name}' refers to itself")
        out: list[str] = []
        for item in self.lists[name].items:
            if item in self.lists:
                out.extend(self.expand_list(item, seen | {name}))
            else:
                out.append(_unquoted(item))
        result = tuple(out)
        self._list_cache[name] = result
        return result

    def list_values(self, literal: ListLiteral) -> tuple[str, ...]:
        out: list[str] = []
        for item in literal.items:
            if item in self.lists:
                out.extend(self.expand_list(item))
            else:
                out.append(item)
        return tuple(out)

    def macro_ast(self, name: str) -> Node:
        node = self._macro_ast.get(name)
        if node is None:
            macro = self.macros[name]
            try:
                node = parse_condition(macro.condition)
            except ConditionSyntaxError as exc:
                raise CompileError(f"macro '{name}': {exc.message}", macro.location) from None
            self._macro_ast[name] = node
        return node

    def expand(self, node: Node, stack: tuple[str, ...] = ()) -> Node:
        """Replace every macro reference by its (expanded) condition."""
        if isinstance(node, MacroRef):
            if node.name not in self.macros:
                raise CompileError(f"undefined macro '{node.name}'")
            if node.name in stack or len(stack) > MAX_MACRO_DEPTH:
                raise CompileError(f"macro '{node.name}' refers to itself")
            return self.expand(self.macro_ast(node.name), (*stack, node.name))
        if isinstance(node, And):
            return And(tuple(self.expand(t, stack) for t in node.terms))
        if isinstance(node, Or):
            return Or(tuple(self.expand(t, stack) for t in node.terms))
        if isinstance(node, Not):
            return Not(self.expand(node.term, stack))
        return node

    # -- fields ---------------------------------------------------------------------------
    def field_def(self, ref: FieldRef) -> FieldDef:
        definition = self.table.lookup(ref.name)
        if definition is None:
            raise UnknownFieldError(str(ref), self.table.source)
        if not definition.carried:
            raise UnknownFieldError(ref.name, self.table.source, known=True)
        if definition.arg == "required" and not ref.arg:
            raise CompileError(f"field '{ref.name}' needs an argument, as in {ref.name}[x]")
        if definition.arg == "none" and ref.arg is not None:
            raise CompileError(f"field '{ref.name}' takes no argument")
        return definition

    def getter(self, operand: Operand) -> tuple[Getter, FieldDef]:
        if isinstance(operand, Transformed):
            inner, definition = self.getter(operand.field)
            return _transform(operand.transformer, inner, definition), definition
        definition = self.field_def(operand)
        extract = definition.extract
        arg = operand.arg

        def get(ctx: EvalContext) -> FieldValueT:
            return extract(ctx, arg)

        return get, definition

    def fields_of(self, node: Node) -> set[str]:
        """Every field name an (expanded) condition uses."""
        out: set[str] = set()
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, Compare):
                out.add(_operand_name(current.left))
                if isinstance(current.value, FieldValue):
                    out.add(_operand_name(current.value.field))
            elif isinstance(current, (And, Or)):
                stack.extend(current.terms)
            elif isinstance(current, Not):
                stack.append(current.term)
        return out

    # -- compiling ------------------------------------------------------------------------
    def memoized_compare(self, node: Compare) -> Predicate:
        """One closure per distinct comparison, its result kept for the rest of the event.

        Rules share macros (Falco's ``kevt`` opens most k8s_audit rules), so the same
        comparison is asked many times per event; it is computed once.
        """
        key = _compare_key(node)
        found = self._compares.get(key)
        if found is not None:
            return found
        compare = self.compile_compare(node)
        if key not in self.shared:
            self._compares[key] = compare
            return compare
        slot = len(self._compares)

        def memoized(ctx: EvalContext) -> bool:
            memo = ctx.memo
            result = memo.get(slot)
            if result is None:
                result = memo[slot] = compare(ctx)
            return result

        self._compares[key] = memoized
        return memoized

    def compile_compare(self, node: Compare) -> Predicate:
        get, definition = self.getter(node.left)
        numeric = definition.type == "number" or _is_len(node.left)
        is_list = definition.is_list and not _is_len(node.left)
        op = "intersects" if definition.any_element and node.op == "in" else node.op
        if op == "exists":
            return lambda ctx: _present(get(ctx))
        if definition.type == "ip" and op in IP_OPS:
            return _ip_compare(op, get, node.value, self)
        if isinstance(node.value, FieldValue):
            other, _ = self.getter(node.value.field)
            return _dynamic(op, get, other, is_list, numeric)
        if node.quantifier is not None:
            if not isinstance(node.value, ListLiteral):
                raise CompileError(f"'{node.quantifier}' needs a list")
            return _quantified(node.quantifier, op, get, self.list_values(node.value), numeric)
        if op in LIST_OPS:
            if not isinstance(node.value, ListLiteral):
                raise CompileError(f"operator '{op}' needs a list")
            values = self.list_values(node.value)
            return _list_op(op, get, values, is_list, numeric)
        if not isinstance(node.value, str):
            raise CompileError(f"operator '{op}' needs a single value")
        if isinstance(node.left, FieldRef) and not is_list and not numeric:
            fast = _string_compare(op, node.value, definition.extract, node.left.arg)
            if fast is not None:
                return fast
        test = _scalar_test(op, node.value, numeric)
        if is_list:

            def any_value(ctx: EvalContext) -> bool:
                values = get(ctx)
                if not isinstance(values, list):
                    return values is not None and test(values)
                return any(test(v) for v in values)

            return any_value

        def one_value(ctx: EvalContext) -> bool:
            value = get(ctx)
            return value is not None and test(value)

        return one_value

    # -- exceptions -----------------------------------------------------------------------
    def exceptions_ast(self, exceptions: list[ExceptionDef]) -> Node | None:
        """``(f1 c1 v1 and f2 c2 v2) or ...`` over every exception value, or None."""
        alternatives: list[Node] = []
        for exc in exceptions:
            if isinstance(exc.fields, str):
                comp = exc.comps if isinstance(exc.comps, str) else "in"
                ref = _field_ref(exc.fields)
                items = tuple(_value_text(v) for v in exc.values)
                if items:
                    alternatives.append(_cmp(ref, comp, items))
                continue
            comps = exc.comps if isinstance(exc.comps, list) else ["="] * len(exc.fields)
            if len(comps) != len(exc.fields):
                raise CompileError(f"exception '{exc.name}': fields and comps differ in length")
            for row in exc.values:
                if not isinstance(row, list) or len(row) != len(exc.fields):
                    raise CompileError(
                        f"exception '{exc.name}': each value needs {len(exc.fields)} items"
                    )
                terms: list[Node] = []
                for field_name, comp, value in zip(exc.fields, comps, row, strict=True):
                    ref = _field_ref(str(field_name))
                    if isinstance(value, list):
                        terms.append(_cmp(ref, str(comp), tuple(_value_text(v) for v in value)))
                    else:
                        terms.append(_cmp(ref, str(comp), _value_text(value)))
                alternatives.append(terms[0] if len(terms) == 1 else And(tuple(terms)))
        if not alternatives:
            return None
        return alternatives[0] if len(alternatives) == 1 else Or(tuple(alternatives))


def _unquoted(item: str) -> str:
    """Falco pastes list items into the condition: ``'"10.0.0.0/8"'`` is one quoted token."""
    if len(item) >= 2 and item[0] == item[-1] and item[0] in "'\"":
        return item[1:-1]
    return item


def _compare_key(node: Compare) -> tuple[object, ...]:
    return (node.left, node.op, node.value, node.quantifier)


def flatten(node: And | Or, kind: type[And] | type[Or]) -> list[Node]:
    out: list[Node] = []
    for term in node.terms:
        if isinstance(term, kind):
            out.extend(flatten(term, kind))
        else:
            out.append(term)
    return out


def _string_compare(
    op: str,
    expected: str,
    extract: Callable[[EvalContext, str | None], FieldValueT],
    arg: str | None,
) -> Predicate | None:
    """The common string operators on a single-valued string field, one call deep."""
    if op in ("=", "=="):
        return lambda ctx: extract(ctx, arg) == expected
    if op == "!=":

        def differs(ctx: EvalContext) -> bool:
            value = extract(ctx, arg)
            return value is not None and value != expected

        return differs
    if op == "startswith":

        def starts(ctx: EvalContext) -> bool:
            value = extract(ctx, arg)
            return isinstance(value, str) and value.startswith(expected)

        return starts
    if op == "contains":

        def contains(ctx: EvalContext) -> bool:
            value = extract(ctx, arg)
            return isinstance(value, str) and expected in value

        return contains
    return None


def _field_ref(text: str) -> FieldRef:
    match = re.fullmatch(r"([a-zA-Z0-9_.]+)(?:\[(.*)\])?", text.strip())
    if not match:
        raise CompileError(f"bad field '{text}' in exception")
    return FieldRef(match.group(1), match.group(2))


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cmp(ref: FieldRef, comp: str, value: str | tuple[str, ...]) -> Compare:
    if comp in LIST_OPS:
        items = value if isinstance(value, tuple) else (value,)
        return Compare(ref, comp, ListLiteral(items))
    if isinstance(value, tuple):
        raise CompileError(f"comparison '{comp}' takes one value, not a list")
    return Compare(ref, comp, value)


def _operand_name(operand: Operand) -> str:
    while isinstance(operand, Transformed):
        operand = operand.field
    return operand.name


def _is_len(operand: Operand) -> bool:
    return isinstance(operand, Transformed) and operand.transformer == "len"


def _present(value: FieldValueT) -> bool:
    if isinstance(value, list):
        return bool(value)
    return value is not None


def _to_number(text: str) -> int | float:
    text = text.strip()
    try:
        return int(text, 0)
    except ValueError:
        return float(text)


def _num(value: object) -> int | float | None:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return _to_number(value)
        except ValueError:
            return None
    return None


def _scalar_test(op: str, expected: str, numeric: bool) -> Callable[[Any], bool]:  # noqa: C901
    if numeric or op in NUMERIC_OPS:
        try:
            target = _to_number(expected)
        except ValueError:
            raise CompileError(f"'{expected}' is not a number") from None
        comparisons: dict[str, Callable[[float, float], bool]] = {
            "=": lambda a, b: a == b,
            "==": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }
        compare = comparisons.get(op)
        if compare is None:
            if not numeric:
                raise CompileError(f"operator '{op}' is not numeric")
            return _scalar_test(op, expected, False)

        def number_test(value: Any) -> bool:
            number = _num(value)
            return number is not None and compare(number, target)

        return number_test
    if op in ("=", "=="):
        return lambda v: str(v) == expected
    if op == "!=":
        return lambda v: str(v) != expected
    if op == "contains":
        return lambda v: expected in str(v)
    if op == "icontains":
        lowered = expected.lower()
        return lambda v: lowered in str(v).lower()
    if op == "startswith":
        return lambda v: str(v).startswith(expected)
    if op == "endswith":
        return lambda v: str(v).endswith(expected)
    if op == "glob":
        return lambda v: fnmatchcase(str(v), expected)
    if op == "iglob":
        lowered = expected.lower()
        return lambda v: fnmatchcase(str(v).lower(), lowered)
    if op == "regex":
        try:
            pattern = re.compile(expected)
        except re.error as exc:
            raise CompileError(f"bad regex {expected!r}: {exc}") from None
        return value_cache(lambda v: pattern.search(v) is not None)
    if op in ("bcontains", "bstartswith"):
        try:
            needle = binascii.unhexlify(expected.replace(" ", ""))
        except (binascii.Error, ValueError):
            raise CompileError(f"'{expected}' is not a hex byte string") from None
        if op == "bcontains":
            return lambda v: needle in _bytes(v)
        return lambda v: _bytes(v).startswith(needle)
    raise CompileError(f"unsupported operator '{op}'")


VALUE_CACHE_SIZE = 4096


def value_cache(test: Callable[[str], bool]) -> Callable[[Any], bool]:
    """Remember a costly string test per input value (user agents, images and URIs repeat).

    Bounded: the memory is cleared when it holds ``VALUE_CACHE_SIZE`` values.
    """
    seen: dict[str, bool] = {}

    def cached(value: Any) -> bool:
        text = value if isinstance(value, str) else str(value)
        result = seen.get(text)
        if result is None:
            if len(seen) >= VALUE_CACHE_SIZE:
                seen.clear()
            result = seen[text] = test(text)
        return result

    return cached


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")


def _pmatch(path: str, prefixes: tuple[str, ...]) -> bool:
    for prefix in prefixes:
        base = prefix.rstrip("/") or "/"
        if any(ch in base for ch in "*?["):
            parts = base.split("/")
            path_parts = path.split("/")
            if len(path_parts) >= len(parts) and all(
                fnmatchcase(pp, bp) for pp, bp in zip(path_parts, parts, strict=False)
            ):
                return True
            continue
        if path == base or base == "/" or path.startswith(base + "/"):
            return True
    return False


def _list_op(
    op: str, get: Getter, values: tuple[str, ...], is_list: bool, numeric: bool
) -> Predicate:
    if op == "pmatch":
        matches = value_cache(lambda path: _pmatch(path, values))

        def pmatch(ctx: EvalContext) -> bool:
            value = get(ctx)
            if isinstance(value, list):
                return any(matches(v) for v in value)
            return value is not None and matches(value)

        return pmatch
    if numeric:
        numbers = frozenset(n for n in (_num(v) for v in values) if n is not None)

        def in_numbers(ctx: EvalContext) -> bool:
            value = get(ctx)
            return value is not None and _num(value) in numbers

        return in_numbers
    members = frozenset(values)
    if not is_list:

        def member(ctx: EvalContext) -> bool:
            value = get(ctx)
            return value is not None and value in members

        return member
    if op == "in":

        def all_in(ctx: EvalContext) -> bool:
            value = get(ctx)
            if not isinstance(value, list):
                return value is not None and value in members
            return bool(value) and all(v in members for v in value)

        return all_in

    def any_in(ctx: EvalContext) -> bool:
        value = get(ctx)
        if not isinstance(value, list):
            return value is not None and value in members
        return any(v in members for v in value)

    return any_in


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise CompileError(f"'{text}' is not an IP address or network") from None


IP_OPS = frozenset({"=", "==", "!=", "in", "intersects"})


def _ip_compare(op: str, get: Getter, value: object, compiler: Compiler) -> Predicate:
    """Falco's IP semantics: ``fd.net = "127.0.0.0/8"``, ``fd.snet in (rfc_1918_addresses)``."""
    if isinstance(value, ListLiteral):
        networks = tuple(_network(v) for v in compiler.list_values(value))
    elif isinstance(value, str):
        networks = (_network(value),)
    else:
        raise CompileError(f"operator '{op}' on an IP field needs an address, network or list")

    def within(text: str) -> bool:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(address in network for network in networks)

    test = value_cache(within)
    if op == "!=":
        return lambda ctx: (v := get(ctx)) is not None and not test(v)
    return lambda ctx: (v := get(ctx)) is not None and test(v)


def _quantified(
    quantifier: str, op: str, get: Getter, values: tuple[str, ...], numeric: bool
) -> Predicate:
    """``f op anyof (a, b)``: how many of the list's values satisfy ``f op value``."""
    if quantifier == "anyof" and op in ("icontains", "contains") and not numeric:
        if not values:
            return lambda ctx: False
        fold = op == "icontains"
        needles = tuple(v.lower() for v in values) if fold else values

        def contains_any(text: str) -> bool:
            if fold:
                text = text.lower()
            return any(n in text for n in needles)

        test = value_cache(contains_any)

        def any_substring(ctx: EvalContext) -> bool:
            value = get(ctx)
            if isinstance(value, list):
                return any(test(str(item)) for item in value)
            return value is not None and test(str(value))

        return any_substring
    tests = tuple(_scalar_test(op, v, numeric) for v in values)

    def satisfied(value: Any) -> int:
        return sum(1 for test in tests if test(value))

    def check(value: Any) -> bool:
        if quantifier == "anyof":
            return any(test(value) for test in tests)
        if quantifier == "allof":
            return bool(tests) and all(test(value) for test in tests)
        return satisfied(value) == 1

    def quantified(ctx: EvalContext) -> bool:
        value = get(ctx)
        if isinstance(value, list):
            return any(check(v) for v in value)
        return value is not None and check(value)

    return quantified


def _dynamic(op: str, get: Getter, other: Getter, is_list: bool, numeric: bool) -> Predicate:
    """``field op val(other)``: the right side is read from the same event."""

    def dynamic(ctx: EvalContext) -> bool:
        right = other(ctx)
        if right is None:
            return False
        if op in LIST_OPS:
            items = tuple(right) if isinstance(right, list) else (str(right),)
            return _list_op(op, get, items, is_list, numeric)(ctx)
        if isinstance(right, list):
            return False
        test = _scalar_test(op, str(right), numeric)
        left = get(ctx)
        if isinstance(left, list):
            return any(test(v) for v in left)
        return left is not None and test(left)

    return dynamic


def _transform(name: str, inner: Getter, definition: FieldDef) -> Getter:
    def apply_one(value: str) -> str | int | None:
        if name == "tolower":
            return value.lower()
        if name == "toupper":
            return value.upper()
        if name == "basename":
            return "" if value.endswith("/") else os.path.basename(value)
        if name == "b64":
            try:
                return base64.b64decode(value, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return None
        return len(value)

    def get(ctx: EvalContext) -> FieldValueT:
        value = inner(ctx)
        if value is None:
            return None
        if name == "len":
            return len(value) if isinstance(value, list) else len(str(value))
        if isinstance(value, list):
            out = [apply_one(v) for v in value]
            return [str(v) for v in out if v is not None]
        result = apply_one(str(value))
        return result if result is None or isinstance(result, int) else str(result)

    return get
