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


def projection(review: Mapping[str, Any], prefixes: Sequence[Prefix]) -> list[Any]:
    return [_project(review, prefix, 0) for prefix in prefixes]


def _project(node: Any, prefix: Prefix, start: int) -> Any:
    """One path's part of a review (decoded JSON: dicts and lists)."""
    for at in range(start, len(prefix)):
        step = prefix[at]
        if not isinstance(node, (dict, list, str)) and isinstance(node, Mapping):
            node = dict(node)  # any other mapping reads as the dict it holds
        if step == WILD:  # every key or element, each projected on the rest of the path
            if isinstance(node, dict):
                return ["o", {k: _project(v, prefix, at + 1) for k, v in node.items()}]
            if isinstance(node, list):
                return ["l", [_project(v, prefix, at + 1) for v in node]]
            return _SCALAR
        if step == PRESENT:
            return ["p", type(node).__name__]
        if step == COLLECTIONS:
            return _collections(node)
        if step == WITHOUT:
            if isinstance(node, dict):
                dropped = prefix[at + 1 :]
                node = {k: v for k, v in node.items() if k not in dropped}
            return ["v", node]
        if isinstance(node, dict) and step in node:
            node = node[step]
        else:
            return _ABSENT
    return ["v", node]


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
        self.hits = 0
        self.misses = 0

    def key(
        self,
        kind: str,
        parameters_json: str,
        review: Mapping[str, Any],
        prefixes: tuple[Prefix, ...],
        encoded: dict[Prefix, bytes] | None = None,
    ) -> bytes:
        """``encoded`` memoises each path's projection within one review (templates share
        paths: the operation, the kind, the containers' structure)."""
        digest = hashlib.blake2b(digest_size=16)
        digest.update(kind.encode())
        digest.update(b"\0")
        digest.update(parameters_json.encode())
        for prefix in prefixes:
            part = None if encoded is None else encoded.get(prefix)
            if part is None:
                part = msgspec.json.encode(_project(review, prefix, 0))
                if encoded is not None:
                    encoded[prefix] = part
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
