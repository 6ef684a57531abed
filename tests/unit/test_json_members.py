"""Splitting a JSON container into its members without recursion."""

from __future__ import annotations

import pytest

from garrison.json_members import split_members


@pytest.mark.parametrize(
    ("data", "members"),
    [
        (b"[]", []),
        (
            b' [1, "a,]", {"b": [2, 3]}] ',
            [(None, b"1"), (None, b'"a,]"'), (None, b'{"b": [2, 3]}')],
        ),
        (b'{"k": "v\\"}", "n": {"x": 1}}', [("k", b'"v\\"}"'), ("n", b'{"x": 1}')]),
        (b"[[1],[2]]", [(None, b"[1]"), (None, b"[2]")]),
        (b'{"a":{"b":[]}}', [("a", b'{"b":[]}')]),
        (b"[[]]]", None),
        (b"[1, 2", None),
        (b"[1] 2", None),
        (b'["unterminated]', None),
        (b"7", None),
    ],
)
def test_split_members(data: bytes, members: object) -> None:
    assert split_members(data) == members
