"""Shared evaluations for reviews that a template cannot tell apart.

Pods a ReplicaSet creates reach the validating webhook with the same spec, labels and owner,
differing only in their generated name, uid and creation time; a template that reads only
``review.object.spec`` (as most container checks do) gives every one of them the same answer.
The key of an evaluation is the template, the constraint's parameters and the JSON of exactly
the parts of the review the template can read (:mod:`garrison.admission.input_reads`); a
template whose reads cannot be bounded, or that reads the whole review, is never cached.
Bounded LRU of short results; cleared whenever ``data.inventory`` changes; errors are not kept.

Each result is kept under two keys (an empty one under two more, below). The exact one
projects the template's own paths (a generated walker per path set), so a Deployment whose
new image tag a template does not read still shares. The coarse one is the JSON of the few
subtrees those paths lie in (the path cut before its first ``*`` and at most three steps
deep: ``object.spec``, ``object.metadata.labels``), each encoded once per review for every
template that reads under it; equal subtrees mean equal reads, so it can only share
less, never wrongly. A review looks the coarse key up first: replicas of one spec, the common
case, skip the walkers altogether.

A template that names the object in its messages reads the name, so no two pods would share
its results; but whether there is a violation at all does not depend on the name
(``input_prefixes(outputs=True)``). An empty result is also kept under keys of just those
paths, and looked up first.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from garrison.admission.input_reads import PRESENT, WILD, WITHOUT, Prefix
from garrison.admission.rego import Violation

DEFAULT_ENTRIES = 16384
MAX_PATH_SETS = 4096  # compiled path sets kept (one per template and parameters in use)
MAX_VIOLATIONS_KEPT = 64  # a result longer than this is not kept: memory stays a few MiB
COARSE_DEPTH = 3  # steps of a path kept in its coarse part (object.metadata.labels)
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


@dataclass(frozen=True, eq=False, slots=True)
class Subtree:
    """A coarse part: the value at ``steps`` (dict keys only), or with ``presence`` only its
    JSON type. Compared by identity: a review memoises each one's encoding."""

    steps: tuple[str, ...]
    presence: bool


@dataclass(frozen=True, eq=False, slots=True)
class KeyPlan:
    """How one constraint's results are keyed, worked out at load."""

    head: bytes  # what keys it apart: the template's kind, the constraint's parameters
    walker: Walker  # the exact projection
    subtrees: tuple[Subtree, ...]  # what the coarse key encodes
    # keys of "no violation" alone, when they read less (a name only in messages)
    no_violation: KeyPlan | None = None


def coarse_subtrees(prefixes: Sequence[Prefix]) -> list[tuple[tuple[str, ...], bool]]:
    """The subtrees that hold every path: each cut before its first marker, at most
    ``COARSE_DEPTH`` steps; a path that only asks whether a node is there keeps asking that
    (the review itself is always there, and its uid is in it)."""
    out: set[tuple[tuple[str, ...], bool]] = set()
    for prefix in prefixes:
        cut: list[str] = []
        presence = False
        for step in prefix:
            if step == PRESENT:
                presence = len(cut) == len(prefix) - 1  # the path is a presence read
                break
            if step in (WILD, WITHOUT) or len(cut) == COARSE_DEPTH:
                break
            cut.append(step)
        out.add((tuple(cut), presence))
    return sorted(out)


class ReviewKeys:
    """One review's keys: each projection and each subtree's JSON worked out once, however
    many constraints share it."""

    __slots__ = ("_projections", "_subtrees", "review")

    def __init__(self, review: Mapping[str, Any]) -> None:
        self.review = review
        self._projections: dict[Walker, bytes] = {}
        self._subtrees: dict[Subtree, bytes] = {}

    def exact(self, plan: KeyPlan) -> bytes:
        part = self._projections.get(plan.walker)
        if part is None:
            part = self._projections[plan.walker] = msgspec.json.encode(plan.walker(self.review))
        return hashlib.blake2b(b"e\0" + plan.head + part, digest_size=16).digest()

    def coarse(self, plan: KeyPlan) -> bytes:
        parts = [b"c\0", plan.head]
        for subtree in plan.subtrees:
            part = self._subtrees.get(subtree)
            if part is None:
                part = self._subtrees[subtree] = msgspec.json.encode(self._part(subtree))
            parts.append(part)
        return hashlib.blake2b(b"".join(parts), digest_size=16).digest()

    def _part(self, subtree: Subtree) -> list[Any]:
        node: Any = _normal(self.review)
        for step in subtree.steps:  # stepped as the walkers step: into objects only
            if type(node) is not dict or step not in node:
                return _ABSENT
            node = _normal(node[step])
        return ["p", type(node).__name__] if subtree.presence else ["v", node]


class ResultCache:
    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[bytes, list[Violation]] = OrderedDict()
        self._walkers: dict[tuple[Prefix, ...], Walker] = {}
        self._subtrees: dict[tuple[tuple[str, ...], bool], Subtree] = {}
        self.hits = 0
        self.misses = 0

    def plan(
        self,
        kind: str,
        parameters_json: str,
        prefixes: tuple[Prefix, ...],
        no_violation: tuple[Prefix, ...] | None = None,
        tag: bytes = b"r",
    ) -> KeyPlan:
        """The keying of one constraint's results (made at load; walkers shared, bounded);
        ``no_violation``: the paths whether it has any violation depends on, if fewer."""
        subtrees = []
        for steps, presence in coarse_subtrees(prefixes):
            subtree = self._subtrees.get((steps, presence))
            if subtree is None:
                if len(self._subtrees) >= MAX_PATH_SETS:
                    self._subtrees.clear()  # plans keep theirs; later ones share anew
                subtree = self._subtrees[(steps, presence)] = Subtree(steps, presence)
            subtrees.append(subtree)
        head = tag + b"\0" + kind.encode() + b"\0" + parameters_json.encode() + b"\0"
        fewer = None
        if no_violation is not None and no_violation != prefixes:
            fewer = self.plan(kind, parameters_json, no_violation, tag=b"0")
        return KeyPlan(head, self.prepare(prefixes), tuple(subtrees), fewer)

    def key(
        self,
        kind: str,
        parameters_json: str,
        review: Mapping[str, Any],
        prefixes: tuple[Prefix, ...],
    ) -> bytes:
        """The exact key of one review for one constraint (tests and one-off callers)."""
        return ReviewKeys(review).exact(self.plan(kind, parameters_json, prefixes))

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

    def lookup(self, keys: ReviewKeys, plan: KeyPlan) -> list[Violation] | None:
        """The shared result of a review: "no violation" by its own keys first, then the
        coarse key, then the exact one. What is found by a finer key is kept under the
        coarse one too, so the review's replicas find it there."""
        none_found = plan.no_violation
        found = None if none_found is None else self._touch(keys.coarse(none_found))
        if found is None:
            found = self._finer(keys, plan)
        if found is None and none_found is not None:
            found = self._finer(keys, none_found)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def _finer(self, keys: ReviewKeys, plan: KeyPlan) -> list[Violation] | None:
        coarse = keys.coarse(plan)
        found = self._touch(coarse)
        if found is None:
            found = self._touch(keys.exact(plan))
            if found is not None:
                self._store(coarse, found)
        return found

    def keep(self, keys: ReviewKeys, plan: KeyPlan, found: list[Violation]) -> None:
        """A fresh result of a review, under its keys (and "no violation" under its own)."""
        if not self._keepable(found):
            return
        self._store(keys.exact(plan), found)
        self._store(keys.coarse(plan), found)
        if not found and plan.no_violation is not None:
            self._store(keys.exact(plan.no_violation), found)
            self._store(keys.coarse(plan.no_violation), found)

    def _touch(self, key: bytes) -> list[Violation] | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: bytes, violations: list[Violation]) -> None:
        if self._keepable(violations):
            self._store(key, violations)

    def _keepable(self, violations: list[Violation]) -> bool:
        return (
            self.entries > 0
            and len(violations) <= MAX_VIOLATIONS_KEPT
            and not any(v.error for v in violations)
        )

    def _store(self, key: bytes, violations: list[Violation]) -> None:
        self._items[key] = violations
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
