"""The top-level members of a JSON document nested too deeply for msgspec.

msgspec decodes (and skips, for ``msgspec.Raw``) by recursion, and raises RecursionError near
1,000 levels. A batch holding one such item would be lost whole; splitting it here, without
recursion, lets each item be decoded, and refused, on its own.
"""

from __future__ import annotations

import json
import re

TOO_DEEP = "nested too deeply to decode (about 1,000 levels or more)"

_TOKEN = re.compile(rb'[\[{]+|[\]}]+|[",:]')  # a run of brackets is one token
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def split_members(data: bytes) -> list[tuple[str | None, bytes]] | None:
    """The members of the JSON object or array ``data``, each value as its bytes (with its
    key, for an object), found by a scan that does not recurse however deep the values nest;
    None when ``data`` is not one container closed at its end (values are not checked)."""
    data = data.strip()
    if data[:1] not in (b"{", b"["):
        return None
    is_object = data[:1] == b"{"
    out: list[tuple[str | None, bytes]] = []
    depth, pos, start = 0, 0, 1
    key: str | None = None
    while (found := _TOKEN.search(data, pos)) is not None:
        char, pos = found.group(), found.end()
        if char == b'"':
            string = _STRING.match(data, found.start())
            if string is None:
                return None
            pos = string.end()
            if is_object and depth == 1 and key is None:
                try:
                    key = json.loads(string.group())
                except ValueError:
                    return None
        elif char[0] in b"[{":
            depth += len(char)
        elif char[0] in b"]}":
            if depth - len(char) <= 0:  # the container closes within this run
                end = found.start() + depth
                last = data[start : end - 1].strip()
                if last or out:
                    out.append((key, last))
                return out if end == len(data) else None
            depth -= len(char)
        elif depth == 1 and char == b",":
            out.append((key, data[start : found.start()].strip()))
            key, start = None, pos
        elif depth == 1 and char == b":" and is_object:
            start = pos
    return None
