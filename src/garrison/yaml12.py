"""A PyYAML SafeLoader with YAML 1.2 core-schema scalars.

YAML 1.1 (PyYAML's default) reads a bare ``=`` (Falco's ``comps: [=, in]``) as the
``value`` tag and ``yes``/``no``/``on``/``off`` as booleans (gator suites say
``violations: yes``); under 1.2, as Falco and Kubernetes parse them, they stay strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml


class Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars."""


def _yaml12_resolvers() -> dict[str | None, list[tuple[str, re.Pattern[str]]]]:
    resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept = [
            (tag, pattern)
            for tag, pattern in entries
            if tag not in ("tag:yaml.org,2002:value", "tag:yaml.org,2002:bool")
        ]
        if kept:
            resolvers[first] = kept
    boolean = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
    for first in "tTfF":
        resolvers.setdefault(first, []).append(("tag:yaml.org,2002:bool", boolean))
    return resolvers


Yaml12Loader.yaml_implicit_resolvers = _yaml12_resolvers()


def load_all(text: str) -> Iterator[Any]:
    """Every document of a YAML stream, read as YAML 1.2 (empty documents skipped)."""
    for doc in yaml.load_all(text, Loader=Yaml12Loader):
        if doc is not None:
            yield doc
