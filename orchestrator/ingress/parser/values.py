"""Raw webhook values → plain Python values: ids to str, epoch seconds or ms to ms, ints and
flags; plus the short renderings (`short`, `json_type`, `key_list`) that problem notes quote.

The bottom layer of the parser: imports nothing from it.
"""

from __future__ import annotations

import json
from math import isfinite
from typing import Any

from orchestrator.ingress.events import jsonable

__all__ = [
    "MAX_MS",
    "SECONDS_BELOW",
    "as_flag",
    "as_id",
    "as_int",
    "as_ms",
    "canonical",
    "json_type",
    "key_list",
    "object_id",
    "short",
]

# Epoch values below this are seconds (docs/platform.md 2.1: `changes` examples use seconds).
SECONDS_BELOW = 10**12
# 9999-12-31T23:59:59.999Z: larger values cannot become a datetime, so they are rejected.
MAX_MS = 253_402_300_799_999


def short(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters for problem notes."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (`object`, `array`, `number`, ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def key_list(mapping: dict[Any, Any], limit: int = 12) -> str:
    """The first keys of a mapping, comma separated, for problem notes."""
    names = [str(k)[:40] for k in list(mapping)[:limit]]
    more = ", ..." if len(mapping) > limit else ""
    return (", ".join(names) + more) if names else "none"


def as_id(value: Any) -> str | None:
    """An id as a string; Meta sends ids both as strings and as numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and isfinite(value) and value.is_integer():
        return str(int(value))
    return None


def object_id(value: Any) -> str | None:
    """`{"id": ...}` → id; a bare id is accepted too."""
    return as_id(value.get("id")) if isinstance(value, dict) else as_id(value)


def as_ms(value: Any) -> int | None:
    """Epoch ms from seconds or ms (number or numeric string); None when unusable."""
    number: int | float
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if text.isascii() and text.isdigit() else float(text)
        except ValueError:
            return None
    else:
        return None
    if isinstance(number, float) and not isfinite(number):
        return None
    if number < 0:
        return None
    ms = round(number * 1000) if number < SECONDS_BELOW else int(number)
    return ms if ms <= MAX_MS else None


def as_int(value: Any) -> int | None:
    """A whole number from a number or a digit string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def as_flag(value: Any) -> bool:
    """True for `true`, `1` and the strings "true"/"1"; everything else is False."""
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1"}
    return value is True or (type(value) in (int, float) and value == 1)


def canonical(value: Any) -> str:
    """Stable compact JSON (sorted keys, ASCII) for keys and hashes."""
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
