"""Which parts of ``input`` a Rego template can read, found in its syntax tree.

A template's result is a function of the parts of ``input`` its references reach, of
``data.inventory`` and of nothing else — unless it calls a builtin whose answer changes
between calls (time, randomness, the network), rewrites input with ``with``, or hands
``input`` itself around. Every reference rooted at ``input`` is followed through its static
fields (``input.review.object.spec``; ``object.get(input.review.object, ["metadata",
"labels"], {})`` counts as the same kind of reference) up to the first dynamic index, which
makes the whole subtree before it a dependency — with two narrower forms:

- a dynamic index followed by more steps (``input.review.object.spec[field][_]``, the
  library's way over ``containers`` and ``initContainers``) can only reach into the
  collections among that subtree's children: a scalar child (a pod's ``nodeName``) indexed
  further is undefined whatever its value, so only its presence counts (``COLLECTIONS``);
- ``object.remove(input.review.object.spec, {"nodeName"})`` reads the subtree but for those
  keys (``WITHOUT``; garrison's pod library reads a pod's spec so).

The result is the smallest set of such prefixes, or ``None`` when the template's use of
input cannot be bounded. This is what lets
identical reviews — a ReplicaSet's pods differ only in name, uid and creation time — share one
evaluation (see :mod:`garrison.admission.result_cache`).

The analysis is deliberately conservative: a node it does not know is walked as data, so an
``input`` it cannot place makes the template unbounded rather than mis-keyed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from garrison.admission.rego import HOISTED

Prefix = tuple[str, ...]
# markers ending a prefix (never a JSON key: they start with a NUL)
COLLECTIONS = "\0collections"  # the children that are objects or arrays, and the others' keys
WITHOUT = "\0without"  # the subtree less the keys after the marker
PRESENT = "\0present"  # only whether the node is there, and its JSON type

# builtins whose answer is not a function of their arguments
NONDETERMINISTIC = frozenset(
    {
        "time.now_ns",
        "rand.intn",
        "uuid.rfc4122",
        "http.send",
        "opa.runtime",
        "net.lookup_ip_addr",
        "io.jwt.decode_verify",
        "crypto.x509.parse_and_verify_certificates",
        "crypto.x509.parse_and_verify_certificates_with_options",
    }
)


class _Unbounded(Exception):
    pass


def _single(node: Any) -> tuple[str, Any] | None:
    if isinstance(node, dict) and len(node) == 1:
        ((kind, body),) = node.items()
        if isinstance(body, dict):
            return kind, body
    return None


def _dotted_name(node: Any) -> str | None:
    """``time.now_ns`` for a chain of static fields on a variable (a builtin's name)."""
    single = _single(node)
    if single is None:
        return None
    kind, body = single
    if kind == "Var":
        return str(body.get("value"))
    if kind == "RefDot":
        base = _dotted_name(body.get("refr"))
        return None if base is None else f"{base}.{body['field'][1]}"
    return None


def _chain(
    node: Any, aliases: Mapping[str, Prefix] | None = None
) -> tuple[list[str] | None, list[Any], Any]:
    """A reference's static prefix when it is rooted at ``input`` or at a function parameter
    that stands for a part of it (``aliases``) — else None; ending in ``COLLECTIONS`` when a
    dynamic index there is followed by more steps — its dynamic index expressions, and its
    root when that is not ``input``."""
    steps: list[str | None] = []
    dynamic: list[Any] = []
    current = node
    while (single := _single(current)) is not None and single[0] in ("RefDot", "RefBrack"):
        kind, body = single
        if kind == "RefDot":
            steps.append(str(body["field"][1]))
        else:
            index = _single(body.get("index"))
            if index is not None and index[0] == "String":
                steps.append(str(index[1]["value"]))
            else:
                steps.append(None)
                dynamic.append(body.get("index"))
        current = body.get("refr")
    root = _single(current)
    name = root[1].get("value") if root is not None and root[0] == "Var" else None
    if name == "input" or (aliases and name in aliases):
        prefix: list[str] = [] if name == "input" or not aliases else list(aliases[str(name)])
        ordered = steps[::-1]
        for at, step in enumerate(ordered):
            if step is None:
                if at < len(ordered) - 1:
                    prefix.append(COLLECTIONS)
                break
            prefix.append(step)
        return prefix, dynamic, None
    return None, dynamic, current


def _static_path(node: Any, collections: tuple[str, ...] = ("Array",)) -> list[str] | None:
    """The key of ``object.get`` when it is a string or an array of strings (``object.remove``'s
    keys: also a set)."""
    single = _single(node)
    if single is None:
        return None
    kind, body = single
    if kind == "String":
        return [str(body["value"])]
    if kind in collections:
        path: list[str] = []
        for item in body.get("items") or []:
            element = _single(item)
            if element is None or element[0] != "String":
                return None
            path.append(str(element[1]["value"]))
        return path
    return None


# how deep calls of functions with parts of input as arguments are followed
MAX_CALL_DEPTH = 8


@dataclass
class _Function:
    params: list[str | None]  # the variable of each parameter; None: a pattern (a constant)
    parts: list[Any]  # the bodies and the head's value: where the parameters are used


class _Reads:
    """The walk over a template's modules, collecting the prefixes of ``input`` it reads.

    A call of one of the template's own functions with a static reference into ``input`` as an
    argument (``is_update(input.review)``) does not make that whole subtree a read: the
    function's bodies are walked with the parameter standing for the reference, so
    ``review.operation`` there reads ``input.review.operation``. Every use of the parameter
    is found that way (a bare use reads the subtree whole), and a function's answer is a
    function of what it reads, so nothing it returns escapes the key. Names are matched by
    their last segment; two functions of one name are both walked (more reads, never fewer).
    """

    def __init__(self, functions: Mapping[str, list[_Function]]) -> None:
        self.functions = functions
        self.out: set[Prefix] = set()
        self._followed: set[tuple[str, tuple[Prefix | None, ...]]] = set()

    def walk(self, node: Any, aliases: Mapping[str, Prefix], depth: int = 0) -> None:
        if isinstance(node, list):
            for item in node:
                self.walk(item, aliases, depth)
            return
        if not isinstance(node, dict):
            return
        if node.get("with_mods"):
            raise _Unbounded("with")
        statements = node.get("stmts")
        if isinstance(statements, list):
            self._query(statements, aliases, depth)
            return
        single = _single(node)
        if single is not None:
            kind, body = single
            if kind in ("RefDot", "RefBrack", "Var"):
                self._reference(node, kind == "Var", aliases, depth)
                return
            if kind == "Call":
                name = _dotted_name(body.get("fcn"))
                if name in NONDETERMINISTIC:
                    raise _Unbounded(name)
                params = body.get("params") or []
                if self._static_call(name, params, aliases, depth):
                    return
                if self._follow(name, params, aliases, depth):
                    return
        for value in node.values():
            self.walk(value, aliases, depth)

    def _reference(self, node: Any, bare: bool, aliases: Mapping[str, Prefix], depth: int) -> None:
        prefix, dynamic, root = _chain(node, aliases)
        if prefix is not None:
            if bare and not prefix:
                raise _Unbounded("input used whole")
            self.out.add(tuple(prefix))
        elif not bare:
            self.walk(root, aliases, depth)
        self.walk(dynamic, aliases, depth)

    def _query(self, statements: list[Any], aliases: Mapping[str, Prefix], depth: int) -> None:
        """A body, statement by statement: ``__garrison_hN := input.review`` (the OPA
        negation pass's hoisting, whose variable only the next ``not f(...)`` uses) makes the
        variable stand for that part of input, so the call is followed as if given the
        reference; the assignment itself reads only that the part is there."""
        local = dict(aliases)
        for statement in statements:
            hoisted = _hoisted(statement, local)
            if hoisted is None:
                self.walk(statement, local, depth)
            else:
                variable, prefix = hoisted
                local[variable] = prefix
                self.out.add((*prefix, PRESENT))

    def _static_call(
        self, name: str | None, params: list[Any], aliases: Mapping[str, Prefix], depth: int
    ) -> bool:
        """Reads of ``object.get`` / ``object.remove`` with static keys on a static reference;
        False when the call is not one of those (its arguments are then walked as usual)."""
        if name not in ("object.get", "object.remove") or len(params) != (
            3 if name == "object.get" else 2
        ):
            return False
        prefix, dynamic, _ = _chain(params[0], aliases)
        if prefix is None or dynamic or COLLECTIONS in prefix:
            return False
        if name == "object.get":
            path = _static_path(params[1])
            if path is None:
                return False
            self.out.add((*prefix, *path))
            self.walk(params[2], aliases, depth)  # the default
            return True
        keys = _static_path(params[1], ("Array", "Set"))
        if keys is None:
            return False
        self.out.add((*prefix, WITHOUT, *sorted(set(keys))))
        return True

    def _follow(
        self, name: str | None, args: list[Any], aliases: Mapping[str, Prefix], depth: int
    ) -> bool:
        """Walks a call of the template's own function; False when it is not one."""
        candidates = self.functions.get((name or "").rsplit(".", 1)[-1])
        if not candidates or depth >= MAX_CALL_DEPTH:
            return False
        bound: list[Prefix | None] = []
        for arg in args:
            prefix, dynamic, _ = _chain(arg, aliases)
            if prefix is not None and not dynamic and COLLECTIONS not in prefix:
                bound.append(tuple(prefix))
            else:
                bound.append(None)
                self.walk(arg, aliases, depth)  # its reads, as any expression's
        key = (str(name), tuple(bound))
        if key in self._followed:
            return True
        self._followed.add(key)
        for function in candidates:
            inner: dict[str, Prefix] = {}
            for at, part in enumerate(bound):
                if part is None:
                    continue
                param = function.params[at] if at < len(function.params) else None
                if param is None:
                    self.out.add(part)  # matched against a pattern: read whole
                else:
                    inner[param] = part
            self.walk(function.parts, inner, depth + 1)
        return True


def _hoisted(statement: Any, aliases: Mapping[str, Prefix]) -> tuple[str, Prefix] | None:
    """(variable, prefix) for ``__garrison_hN := <static reference into input>``."""
    literal = statement.get("literal") if isinstance(statement, dict) else None
    expr = _single(literal)
    if expr is None or expr[0] != "Expr" or statement.get("with_mods"):
        return None
    assign = _single(expr[1].get("expr"))
    if assign is None or assign[0] != "AssignExpr" or assign[1].get("op") != "ColEq":
        return None
    target = _single(assign[1].get("lhs"))
    if target is None or target[0] != "Var":
        return None
    variable = str(target[1].get("value"))
    if not variable.startswith(HOISTED):
        return None
    prefix, dynamic, _ = _chain(assign[1].get("rhs"), aliases)
    if prefix is None or dynamic or COLLECTIONS in prefix or not prefix:
        return None
    return variable, tuple(prefix)


def _functions(rules: list[Any]) -> dict[str, list[_Function]]:
    found: dict[str, list[_Function]] = {}
    for rule in rules:
        spec = rule.get("Spec") if isinstance(rule, dict) else None
        head = spec.get("head") if isinstance(spec, dict) else None
        func = head.get("Func") if isinstance(head, dict) else None
        if not isinstance(func, dict):
            continue
        name = _dotted_name(func.get("refr"))
        if name is None:
            continue
        params: list[str | None] = []
        for arg in func.get("args") or []:
            single = _single(arg)
            params.append(str(single[1]["value"]) if single and single[0] == "Var" else None)
        parts = [spec.get("bodies") if isinstance(spec, dict) else None, func.get("assign")]
        found.setdefault(name.rsplit(".", 1)[-1], []).append(_Function(params, parts))
    return found


def input_prefixes(ast_json: str) -> frozenset[Prefix] | None:
    """The smallest set of ``input`` prefixes the modules can read; None when unbounded."""
    modules = [module.get("ast") or {} for module in json.loads(ast_json)]
    rules = [rule for ast in modules for rule in ast.get("rules") or []]
    reads = _Reads(_functions(rules))
    try:
        for ast in modules:
            reads.walk(ast.get("imports"), {})
            reads.walk(ast.get("rules"), {})
    except _Unbounded:
        return None
    found = reads.out
    return frozenset(p for p in found if not any(_covers(q, p) for q in found))


def _covers(whole: Prefix, part: Prefix) -> bool:
    """``whole`` is a plain prefix (a subtree read in full) above or at ``part``."""
    return (
        whole != part
        and part[: len(whole)] == whole
        and COLLECTIONS not in whole
        and WITHOUT not in whole
        and PRESENT not in whole
    )
