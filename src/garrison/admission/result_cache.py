"""Shared evaluations for reviews that a template cannot tell apart.

Pods a ReplicaSet creates reach the validating webhook with the same spec, labels and owner,
differing only in their generated name, uid and creation time; a template that reads only
``review.object.spec`` (as most container checks do) gives every one of them the same answer.
The key of an evaluation is the template, the constraint's parameters and the JSON of exactly
the parts of the review the template can read (:mod:`garrison.admission.input_reads`); a
template whose reads cannot be bounded, or that reads the whole review, is never cached.
Bounded LRU of short results; cleared whenever ``data.inventory`` changes; errors are not kept.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from garrison.admission.input_reads import PRESENT, WILD, WITHOUT, Prefix
from garrison.admission.rego import Violation

DEFAULT_ENTRIES = 16384
MAX_PATH_SETS = 4096  # compiled path sets kept (one per template and parameters in use)
MAX_VIOLATIONS_KEPT = 64  # a result longer than this is not kept: memory stays a few MiB
# Every part of a projection is tagged, so that no JSON value in a review can encode like a
# marker (an untagged ["absent"] would: a crafted object could then take another's key):
# ["v", value] a value found; ["a"] nothing at the path; ["p", type] only that something of
# that JSON type is there; ["s"] no collection where every member was to be read; ["o", {...}]
# and ["l", [...]] an object's or array's members, each projected on the rest of the path.
_ABSENT = ["a"]
_SCALAR = ["s"]


def review_prefixes(prefixes: frozenset[Prefix] | None) -> tuple[Prefix, ...] | None:
    """The prefixes under ``review`` that key a template's results; None: not cacheable.

    Parameters are keyed whole (the constraint's JSON), so ``parameters.*`` prefixes drop out;
    a template reading the whole review (its uid differs every time) is not worth a key.
    """
    if prefixes is None:
        return None
    keyed = []
    for prefix in prefixes:
        if not prefix or prefix == ("review",):
            return None
        if prefix[0] == "review":
            keyed.append(prefix[1:])
        elif prefix[0] != "parameters":
            keyed.append(("\0input", *prefix))  # input.<other>: never present in a review
    return tuple(sorted(keyed))


# a compiled path set: entries (opcode, argument, sub-trie), in a fixed order
Trie = tuple[tuple[int, Any, "Trie"], ...]
_KEY, _WILD, _END, _PRESENT, _WITHOUT = range(5)
_PLAIN = frozenset({dict, list, str, int, float, bool, type(None)})


def compile_paths(prefixes: Sequence[Prefix]) -> Trie:
    """A template's paths merged by their common steps, so one walk projects them all."""
    root: dict[Any, Any] = {}
    for prefix in prefixes:
        node = root
        for at, step in enumerate(prefix):
            if step == PRESENT:
                node.setdefault((_PRESENT, None), {})
                break
            if step == WITHOUT:
                node.setdefault((_WITHOUT, frozenset(prefix[at + 1 :])), {})
                break
            node = node.setdefault((_WILD, None) if step == WILD else (_KEY, step), {})
        else:
            node.setdefault((_END, None), {})
    return _freeze(root)


def _freeze(node: dict[Any, Any]) -> Trie:
    return tuple((op, arg, _freeze(sub)) for (op, arg), sub in sorted(node.items(), key=repr))


def _walk(node: Any, trie: Trie) -> list[Any]:
    """The parts of ``node`` the trie reaches, in the trie's order (decoded JSON: dicts and
    lists; any other mapping reads as the dict it holds)."""
    if type(node) not in _PLAIN:
        if isinstance(node, Mapping):
            node = dict(node)
        elif isinstance(node, (list, tuple)):
            node = list(node)
    out: list[Any] = []
    append = out.append
    for op, arg, sub in trie:
        if op == _KEY:
            if type(node) is dict and arg in node:
                append(_walk(node[arg], sub))
            else:
                append(_ABSENT)
        elif op == _WILD:  # every key or element, each walked on
            if type(node) is dict:
                append(["o", {k: _walk(v, sub) for k, v in node.items()}])
            elif type(node) is list:
                append(["l", [_walk(v, sub) for v in node]])
            else:
                append(_SCALAR)
        elif op == _END:
            append(["v", node])
        elif op == _PRESENT:
            append(["p", type(node).__name__])
        elif type(node) is dict:  # _WITHOUT
            append(["v", {k: v for k, v in node.items() if k not in arg}])
        else:
            append(["v", node])
    return out


def _normal(node: Any) -> Any:
    if type(node) not in _PLAIN:
        if isinstance(node, Mapping):
            return dict(node)
        if isinstance(node, (list, tuple)):
            return list(node)
    return node


Walker = Callable[[Any], list[Any]]


def compile_walker(trie: Trie) -> Walker:
    """``_walk`` specialised to one trie: a generated function per sub-trie, each step
    inline (keys for all 84 constraints of a benchmark review: 0.89 -> 0.58 ms against the
    walk). The source holds only names garrison makes: every key
    read from a policy reaches the function as a bound constant, never as source text."""
    namespace: dict[str, Any] = {
        "__builtins__": {"type": type},
        "_PLAIN": _PLAIN,
        "_normal": _normal,
        "_ABSENT": _ABSENT,
        "_SCALAR": _SCALAR,
        "dict": dict,
        "list": list,
    }
    lines: list[str] = []
    functions: dict[Trie, str] = {}

    def bind(value: Any) -> str:
        name = f"_c{len(namespace)}"
        namespace[name] = value
        return name

    def function(sub: Trie) -> str:
        if sub in functions:
            return functions[sub]
        name = functions[sub] = f"_w{len(functions)}"
        parts = []
        for op, arg, deeper in sub:
            if op == _KEY:
                key, inner = bind(arg), function(deeper)
                parts.append(f"({inner}(v[{key}]) if type(v) is dict and {key} in v else _ABSENT)")
            elif op == _WILD:
                inner = function(deeper)
                parts.append(
                    f'(["o", {{k: {inner}(x) for k, x in v.items()}}] if type(v) is dict else '
                    f'["l", [{inner}(x) for x in v]] if type(v) is list else _SCALAR)'
                )
            elif op == _END:
                parts.append('["v", v]')
            elif op == _PRESENT:
                parts.append('["p", type(v).__name__]')
            else:
                dropped = bind(arg)
                parts.append(
                    f'(["v", {{k: x for k, x in v.items() if k not in {dropped}}}] '
                    f'if type(v) is dict else ["v", v])'
                )
        lines.append(f"def {name}(v):")
        lines.append("    if type(v) not in _PLAIN:")
        lines.append("        v = _normal(v)")
        lines.append(f"    return [{', '.join(parts)}]")
        return name

    root = function(trie)
    code = compile("\n".join(lines) + "\n", "<projection>", "exec")
    exec(code, namespace)  # noqa: S102 - source is built from garrison's own templates only
    walker: Walker = namespace[root]
    return walker


class ResultCache:
    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[bytes, list[Violation]] = OrderedDict()
        self._walkers: dict[tuple[Prefix, ...], Walker] = {}
        self.hits = 0
        self.misses = 0

    def key(
        self,
        kind: str,
        parameters_json: str,
        review: Mapping[str, Any],
        prefixes: tuple[Prefix, ...],
        encoded: dict[tuple[Prefix, ...], bytes] | None = None,
    ) -> bytes:
        """``encoded`` memoises projections within one review (templates share path sets)."""
        part = None if encoded is None else encoded.get(prefixes)
        if part is None:
            part = msgspec.json.encode(self.prepare(prefixes)(review))
            if encoded is not None:
                encoded[prefixes] = part
        digest = hashlib.blake2b(digest_size=16)
        digest.update(kind.encode())
        digest.update(b"\0")
        digest.update(parameters_json.encode())
        digest.update(b"\0")
        digest.update(part)
        return digest.digest()

    def prepare(self, prefixes: tuple[Prefix, ...]) -> Walker:
        """The generated projection of a path set (made on first use, bounded)."""
        walker = self._walkers.get(prefixes)
        if walker is None:
            if len(self._walkers) >= MAX_PATH_SETS:
                self._walkers.clear()
            walker = self._walkers[prefixes] = compile_walker(compile_paths(prefixes))
        return walker

    def get(self, key: bytes) -> list[Violation] | None:
        found = self._items.get(key)
        if found is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return found

    def put(self, key: bytes, violations: list[Violation]) -> None:
        if (
            self.entries <= 0
            or len(violations) > MAX_VIOLATIONS_KEPT
            or any(v.error for v in violations)
        ):
            return
        self._items[key] = violations
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
