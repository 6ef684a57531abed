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
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from garrison.admission.input_reads import COLLECTIONS, PRESENT, WILD, WITHOUT, Prefix
from garrison.admission.rego import Violation

DEFAULT_ENTRIES = 16384
MAX_PATH_SETS = 4096  # compiled path sets kept (one per template and parameters in use)
MAX_VIOLATIONS_KEPT = 64  # a result longer than this is not kept: memory stays a few MiB
# Every part of a projection is tagged, so that no JSON value in a review can encode like a
# marker (an untagged ["absent"] would: a crafted object could then take another's key):
# ["v", value] a value found; ["a"] nothing at the path; ["p", type] only that something of
# that JSON type is there; ["s"] no collection, where only collections count; ["o", {...}] and
# ["l", [...]] an object's or array's members, each projected on the rest of the path.
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


Trie = tuple[tuple[Any, "Trie"], ...]
_END = "\0end"  # a trie entry: the value where a path ends


def compile_paths(prefixes: Sequence[Prefix]) -> Trie:
    """A template's paths merged by their common steps, so one walk projects them all."""
    root: dict[Any, Any] = {}
    for prefix in prefixes:
        node = root
        for at, step in enumerate(prefix):
            if step in (PRESENT, COLLECTIONS):
                node.setdefault(step, {})
                break
            if step == WITHOUT:
                node.setdefault((WITHOUT, tuple(prefix[at + 1 :])), {})
                break
            node = node.setdefault(step, {})
        else:
            node.setdefault(_END, {})
    return _freeze(root)


def _freeze(node: dict[Any, Any]) -> Trie:
    return tuple((step, _freeze(sub)) for step, sub in sorted(node.items(), key=repr))


def projection(review: Mapping[str, Any], prefixes: Sequence[Prefix]) -> list[Any]:
    return _walk(review, compile_paths(prefixes))


def _walk(node: Any, trie: Trie) -> list[Any]:
    """The parts of ``node`` the trie reaches, in the trie's order (decoded JSON: dicts and
    lists; any other mapping reads as the dict it holds)."""
    if not isinstance(node, (dict, list, str)) and isinstance(node, Mapping):
        node = dict(node)
    out: list[Any] = []
    for step, sub in trie:
        if step == _END:
            out.append(["v", node])
        elif step == PRESENT:
            out.append(["p", type(node).__name__])
        elif step == COLLECTIONS:
            out.append(_collections(node))
        elif isinstance(step, tuple):  # (WITHOUT, keys)
            dropped = step[1]
            if isinstance(node, dict):
                out.append(["v", {k: v for k, v in node.items() if k not in dropped}])
            else:
                out.append(["v", node])
        elif step == WILD:  # every key or element, each walked on
            if isinstance(node, dict):
                out.append(["o", {k: _walk(v, sub) for k, v in node.items()}])
            elif isinstance(node, list):
                out.append(["l", [_walk(v, sub) for v in node]])
            else:
                out.append(_SCALAR)
        elif isinstance(node, dict) and step in node:
            out.append(_walk(node[step], sub))
        else:
            out.append(_ABSENT)
    return out


def _collections(node: Any) -> Any:
    """What a reference with more steps after a dynamic index can reach: the children that
    are collections, whole; of the others only that they are there (their keys)."""
    if isinstance(node, Mapping):
        return ["v", {k: _reachable(v) for k, v in node.items()}]
    if isinstance(node, list):
        return ["v", [_reachable(v) for v in node]]
    return _SCALAR


def _reachable(child: Any) -> Any:
    return ["v", child] if isinstance(child, (Mapping, list)) else _SCALAR


class ResultCache:
    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[bytes, list[Violation]] = OrderedDict()
        self._tries: dict[tuple[Prefix, ...], Trie] = {}
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
            trie = self._tries.get(prefixes)
            if trie is None:
                if len(self._tries) >= MAX_PATH_SETS:
                    self._tries.clear()
                trie = self._tries[prefixes] = compile_paths(prefixes)
            part = msgspec.json.encode(_walk(review, trie))
            if encoded is not None:
                encoded[prefixes] = part
        digest = hashlib.blake2b(digest_size=16)
        digest.update(kind.encode())
        digest.update(b"\0")
        digest.update(parameters_json.encode())
        digest.update(b"\0")
        digest.update(part)
        return digest.digest()

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
