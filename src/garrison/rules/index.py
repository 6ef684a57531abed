"""Rule indexing: which values of the index fields a condition needs, and what that settles.

The engine buckets rules by the values their conditions require of the source's index
dimensions (for ``k8s_audit``: verb, resource, stage); a candidate then need not re-test the
conjuncts its bucket guarantees, and conditions that are constant before any event are folded.
"""

from __future__ import annotations

from collections.abc import Mapping

from garrison.rules.ast import And, Compare, Constant, FieldRef, ListLiteral, Node, Not, Operand, Or
from garrison.rules.compiler import Compiler, flatten

Constraints = dict[str, frozenset[str]]
IndexFields = tuple[tuple[str, ...], ...]


def dimension(left: Operand, index_fields: IndexFields) -> str | None:
    """The index dimension a field names (``ka.stage`` and ``jevt.value[/stage]`` are one)."""
    if not isinstance(left, FieldRef):
        return None
    text = str(left)
    for names in index_fields:
        if text in names:
            return names[0]
    return None


def constraints(node: Node, index_fields: IndexFields) -> Constraints:
    """Values an index dimension must take for ``node`` to hold (absent = unconstrained)."""
    if isinstance(node, Compare):
        dim = dimension(node.left, index_fields)
        if dim is not None and node.op in ("=", "==") and isinstance(node.value, str):
            return {dim: frozenset({node.value})}
        return {}
    if isinstance(node, And):
        merged: Constraints = {}
        for term in node.terms:
            for name, values in constraints(term, index_fields).items():
                merged[name] = merged[name] & values if name in merged else values
        return merged
    if isinstance(node, Or):
        parts = [constraints(term, index_fields) for term in node.terms]
        common = set(parts[0])
        for part in parts[1:]:
            common &= set(part)
        return {name: frozenset().union(*(p[name] for p in parts)) for name in common}
    return {}


def resolve_in_lists(node: Node, compiler: Compiler, index_fields: IndexFields) -> Node:
    """Rewrite ``f in (a, b)`` on an index field as ``f = a or f = b`` for ``constraints``."""
    if isinstance(node, Compare):
        if (
            node.op in ("in", "intersects")
            and node.quantifier is None
            and dimension(node.left, index_fields) is not None
            and isinstance(node.value, ListLiteral)
        ):
            values = compiler.list_values(node.value)
            if not values:
                return Constant(False)
            return Or(tuple(Compare(node.left, "=", v) for v in values))
        return node
    if isinstance(node, And):
        return And(tuple(resolve_in_lists(t, compiler, index_fields) for t in node.terms))
    if isinstance(node, Or):
        return Or(tuple(resolve_in_lists(t, compiler, index_fields) for t in node.terms))
    return node


def within_domain(
    node: Node, compiler: Compiler, index_fields: IndexFields, domains: Mapping[str, frozenset[str]]
) -> Node:
    """Settle comparisons on an index field against the values the source can produce.

    The sensor produces a known set of event types: ``evt.type in (sendto, sendmsg)`` is
    false for every event it will ever send, and ``evt.type != sendto`` true.
    """
    if isinstance(node, Compare):
        dim = dimension(node.left, index_fields)
        domain = domains.get(dim) if dim is not None else None
        if domain is None or node.quantifier is not None:
            return node
        if node.op in ("=", "==", "!=") and isinstance(node.value, str):
            if node.value not in domain:
                return Constant(node.op == "!=")
        elif (
            node.op in ("in", "intersects")
            and isinstance(node.value, ListLiteral)
            and not domain & set(compiler.list_values(node.value))
        ):
            return Constant(False)
        return node
    if isinstance(node, Not):
        return Not(within_domain(node.term, compiler, index_fields, domains))
    if isinstance(node, And):
        return And(tuple(within_domain(t, compiler, index_fields, domains) for t in node.terms))
    if isinstance(node, Or):
        return Or(tuple(within_domain(t, compiler, index_fields, domains) for t in node.terms))
    return node


def fold_constants(node: Node, compiler: Compiler) -> Node:
    """Fold what is known before any event: ``x in ()`` is false, ``a and false`` is false."""
    if isinstance(node, Compare):
        if (
            node.op in ("in", "intersects")
            and node.quantifier is None
            and isinstance(node.value, ListLiteral)
            and not compiler.list_values(node.value)
        ):
            return Constant(False)
        return node
    if isinstance(node, Not):
        inner = fold_constants(node.term, compiler)
        return Constant(not inner.value) if isinstance(inner, Constant) else Not(inner)
    if isinstance(node, (And, Or)):
        decisive = isinstance(node, Or)  # the value that settles the whole expression
        terms: list[Node] = []
        for term in node.terms:
            folded = fold_constants(term, compiler)
            if isinstance(folded, Constant):
                if folded.value is decisive:
                    return Constant(decisive)
                continue
            terms.append(folded)
        if not terms:
            return Constant(not decisive)
        if len(terms) == 1:
            return terms[0]
        return And(tuple(terms)) if isinstance(node, And) else Or(tuple(terms))
    return node


def without_implied(
    node: Node, found: Constraints, compiler: Compiler, index_fields: IndexFields
) -> Node:
    """Drop top-level conjuncts that the index already guarantees for every candidate event."""
    terms = flatten(node, And) if isinstance(node, And) else [node]
    kept: list[Node] = []
    for term in terms:
        if isinstance(term, Compare) and term.quantifier is None:
            dim = dimension(term.left, index_fields)
            allowed: frozenset[str] | None = None
            if dim is not None and term.op in ("=", "==") and isinstance(term.value, str):
                allowed = frozenset({term.value})
            elif (
                dim is not None
                and term.op in ("in", "intersects")
                and isinstance(term.value, ListLiteral)
            ):
                allowed = frozenset(compiler.list_values(term.value))
            if allowed is not None and dim in found and found[dim] <= allowed:
                continue
        kept.append(term)
    if not kept:
        return Constant(True)
    return kept[0] if len(kept) == 1 else And(tuple(kept))
