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
from typing import Any

Prefix = tuple[str, ...]
# markers ending a prefix (never a JSON key: they start with a NUL)
COLLECTIONS = "\0collections"  # the children that are objects or arrays, and the others' keys
WITHOUT = "\0without"  # the subtree less the keys after the marker

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


def _chain(node: Any) -> tuple[list[str] | None, list[Any], Any]:
    """A reference's static prefix when it is rooted at ``input`` (else None; ending in
    ``COLLECTIONS`` when a dynamic index there is followed by more steps), its dynamic index
    expressions, and its root when that is not ``input``."""
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
    if root is not None and root[0] == "Var" and root[1].get("value") == "input":
        prefix: list[str] = []
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


def _static_call(name: str | None, params: list[Any], out: set[Prefix]) -> bool:
    """Reads of ``object.get`` / ``object.remove`` with static keys on a static reference;
    False when the call is not one of those (its arguments are then walked as usual)."""
    if name == "object.get" and len(params) == 3:
        prefix, dynamic, _ = _chain(params[0])
        path = _static_path(params[1])
        if prefix is not None and path is not None and not dynamic:
            out.add((*prefix, *path))
            _walk(params[2], out)
            return True
    if name == "object.remove" and len(params) == 2:
        prefix, dynamic, _ = _chain(params[0])
        keys = _static_path(params[1], ("Array", "Set"))
        if prefix is not None and keys is not None and not dynamic:
            out.add((*prefix, WITHOUT, *sorted(set(keys))))
            return True
    return False


def _walk(node: Any, out: set[Prefix]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, out)
        return
    if not isinstance(node, dict):
        return
    if node.get("with_mods"):
        raise _Unbounded("with")
    single = _single(node)
    if single is not None:
        kind, body = single
        if kind in ("RefDot", "RefBrack", "Var"):
            prefix, dynamic, root = _chain(node)
            if prefix is not None:
                if kind == "Var":
                    raise _Unbounded("input used whole")
                out.add(tuple(prefix))
            elif kind != "Var":
                _walk(root, out)
            _walk(dynamic, out)
            return
        if kind == "Call":
            name = _dotted_name(body.get("fcn"))
            if name in NONDETERMINISTIC:
                raise _Unbounded(name)
            if _static_call(name, body.get("params") or [], out):
                return
    for value in node.values():
        _walk(value, out)


def input_prefixes(ast_json: str) -> frozenset[Prefix] | None:
    """The smallest set of ``input`` prefixes the modules can read; None when unbounded."""
    found: set[Prefix] = set()
    try:
        for module in json.loads(ast_json):
            ast = module.get("ast") or {}
            _walk(ast.get("imports"), found)
            _walk(ast.get("rules"), found)
    except _Unbounded:
        return None
    return frozenset(p for p in found if not any(_covers(q, p) for q in found))


def _covers(whole: Prefix, part: Prefix) -> bool:
    """``whole`` is a plain prefix (a subtree read in full) above or at ``part``."""
    return (
        whole != part
        and part[: len(whole)] == whole
        and COLLECTIONS not in whole
        and WITHOUT not in whole
    )
