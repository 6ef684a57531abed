"""Value helpers shared by the ``k8s_audit`` field tables: JSON digging and rendering, times."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec

from garrison.rules.fields import EvalContext, FieldDef, FieldValueT

MISSING = object()
Extract = Callable[[EvalContext, str | None], FieldValueT]


def json_text(value: Any) -> str:
    """A JSON value as the plugin renders it: strings raw, everything else as JSON."""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def dig(value: Any, *keys: str) -> Any:
    """``value[k1][k2]...`` through dicts, or ``MISSING``."""
    for key in keys:
        if not isinstance(value, dict):
            return MISSING
        value = value.get(key, MISSING)
        if value is MISSING:
            return MISSING
    return value


def image_repository(image: str) -> str:
    """``registry:5000/ns/app:tag@sha`` → ``registry:5000/ns/app`` (port kept)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    return name


def make_field(
    name: str,
    extract: Callable[[EvalContext, str | None], FieldValueT],
    *,
    is_list: bool = False,
    arg: str = "none",
    type: str = "string",
) -> FieldDef:
    return FieldDef(name, extract, type=type, is_list=is_list, arg=arg)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4096)
def _utc_second_ns(prefix: str) -> int:
    """Epoch nanoseconds of ``YYYY-MM-DDTHH:MM:SS`` in UTC (a busy stream shares each second)."""
    return int(datetime.fromisoformat(prefix + "+00:00").timestamp()) * 1_000_000_000


def parse_timestamp_ns(stamp: str) -> int:
    """RFC 3339 with up to nanoseconds → integer nanoseconds since the epoch (0 if unparsable)."""
    if len(stamp) >= 20 and stamp[-1] == "Z" and stamp[19] in ".Z":
        fraction = stamp[20:-1]
        if fraction and not fraction.isdigit():
            return _parse_timestamp_slow(stamp)
        try:
            base = _utc_second_ns(stamp[:19])
            return base + (int((fraction + "000000000")[:9]) if fraction else 0)
        except ValueError:
            return _parse_timestamp_slow(stamp)
    return _parse_timestamp_slow(stamp)


def _parse_timestamp_slow(stamp: str) -> int:
    text = stamp.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    frac_ns = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = ""
        for ch in rest:
            if not ch.isdigit():
                break
            digits += ch
        tail = rest[len(digits) :]
        frac_ns = int((digits + "000000000")[:9]) if digits else 0
        text = head + tail
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return 0
    if moment.tzinfo is None:
        return 0
    return int(moment.timestamp()) * 1_000_000_000 + frac_ns
