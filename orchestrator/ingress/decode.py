"""Webhook body bytes → a JSON value.

Two readers share one decoder:

- `load_json` (the parser's `parse_body`) is strict: undecodable bytes, syntax errors, the
  non-standard constants `NaN`/`Infinity` and numbers Python cannot hold raise
  `MalformedJSON` with a 1-based line and column.
- `decode_webhook` (the intake path) never loses what it was sent: numbers beyond double range
  (`1e400`) or beyond Python's integer-string limit keep their exact text as strings, and
  `storable` then makes every string PostgreSQL-safe (`\\u0000` and lone surrogates escaped as
  visible text). Everything it had to change is listed in `problems` (positions, never the
  content), and the intake stores the raw bytes beside the events whenever that list is not
  empty, so nothing acknowledged is ever only approximately stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

from orchestrator.errors import OrchestratorError

__all__ = ["UNSAFE_TEXT", "Decoded", "MalformedJSON", "decode_webhook", "storable"]


class MalformedJSON(OrchestratorError, ValueError):
    """The body is not valid JSON; `line`/`column` are 1-based when known."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class _NonStandardConstant(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


# Strings are matched whole so that a `NaN` inside a string is not reported.
_CONSTANT_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.DOTALL)
# Python refuses int() of longer digit strings (CVE-2020-10735 guard); 4300 by default.
_MAX_INT_DIGITS = 4300


def _line_col(text: str | bytes, pos: int) -> tuple[int, int]:
    newline: Any = "\n" if isinstance(text, str) else b"\n"
    return text.count(newline, 0, pos) + 1, pos - text.rfind(newline, 0, pos)


def _text(body: bytes | str) -> str:
    if isinstance(body, str):  # tolerated, although the edge hands over raw bytes
        return body
    raw = bytes(body)
    try:
        text = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError as exc:
        line, column = _line_col(raw, exc.start)
        raise MalformedJSON(
            f"malformed JSON: invalid {exc.encoding} byte at line {line}, column {column}",
            line=line,
            column=column,
        ) from exc
    # UTF-16/32 bodies keep their byte-order mark after decoding; it is not part of the JSON.
    return text.removeprefix("\ufeff")


def _loads(text: str, **hooks: Any) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant, **hooks)
    except json.JSONDecodeError as exc:
        raise MalformedJSON(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno,
            column=exc.colno,
        ) from exc
    except _NonStandardConstant as exc:
        pos = next((m.start(1) for m in _CONSTANT_TOKEN.finditer(text) if m.group(1)), 0)
        line, column = _line_col(text, pos)
        raise MalformedJSON(
            f"malformed JSON at line {line}, column {column}: {exc.args[0]} is not valid JSON",
            line=line,
            column=column,
        ) from None
    except RecursionError:
        raise MalformedJSON("malformed JSON: nested too deeply to decode") from None
    except ValueError as exc:  # an integer over Python's digit limit
        raise MalformedJSON(f"malformed JSON: unreadable number ({type(exc).__name__})") from None


def load_json(body: bytes | str) -> Any:
    return _loads(_text(body))


@dataclass(slots=True)
class Decoded:
    """A webhook body as a JSON value PostgreSQL can store, and what had to change for that."""

    value: Any
    problems: list[str] = field(default_factory=list)


def decode_webhook(body: bytes) -> Decoded:
    """Decode leniently for intake; only bytes that are not JSON at all raise `MalformedJSON`."""
    problems: list[str] = []

    def big_int(digits: str) -> Any:
        if len(digits) > _MAX_INT_DIGITS:
            problems.append(f"a number of {len(digits)} digits kept as a string")
            return digits
        return int(digits)

    def big_float(number: str) -> Any:
        value = float(number)
        if not isfinite(value):
            problems.append("a number beyond double range kept as a string")
            return number
        return value

    text = _text(body)
    value = _loads(text, parse_int=big_int, parse_float=big_float)
    if _MAYBE_UNSAFE.search(text) is None:
        # Strict JSON has no raw control characters in strings and a strict decode no lone
        # surrogates: NUL and surrogates only come from `\u` escapes. The common case skips
        # the walk over the whole value.
        return Decoded(value, problems)
    value, changed = storable(value)
    if changed:
        problems.append(f"{changed} string(s) with NUL or lone surrogates stored escaped")
    return Decoded(value, problems)


UNSAFE_TEXT = re.compile(r"[\x00\ud800-\udfff]")
# A `\u0000` or `\uD800`-`\uDFFF` escape (valid pairs too: the walk decides).
_MAYBE_UNSAFE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _safe_text(text: str) -> str | None:
    """`text` with NUL and surrogates written as visible `\\uXXXX`; None when already safe.

    A JSON string decoded by Python only holds surrogates when they were unpaired (a valid
    pair becomes one code point), so every surrogate found here is a lone one.
    """
    if UNSAFE_TEXT.search(text) is None:
        return None
    return UNSAFE_TEXT.sub(_escape, text)


def storable(value: Any) -> tuple[Any, int]:
    """`value` with strings and keys PostgreSQL's text and jsonb accept (fixed in place: pass
    freshly decoded values), and how many strings were escaped. Iterative, so any nesting
    depth the decoder produced is fine; non-finite floats (possible only from Python callers)
    become their `repr`."""
    changed = 0

    def fix(item: Any) -> Any:
        nonlocal changed
        if isinstance(item, str):
            safe = _safe_text(item)
            if safe is None:
                return item
            changed += 1
            return safe
        if isinstance(item, float) and not isfinite(item):
            changed += 1
            return repr(item)
        return item

    root: list[Any] = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, dict):
            if any(isinstance(k, str) and UNSAFE_TEXT.search(k) for k in item):
                item = {(fix(k) if isinstance(k, str) else k): v for k, v in item.items()}
                container[key] = item
            for k, v in item.items():
                if isinstance(v, dict | list):
                    stack.append((item, k))
                else:
                    fixed = fix(v)
                    if fixed is not v:
                        item[k] = fixed
        elif isinstance(item, list):
            for i, v in enumerate(item):
                if isinstance(v, dict | list):
                    stack.append((item, i))
                else:
                    fixed = fix(v)
                    if fixed is not v:
                        item[i] = fixed
        else:
            container[key] = fix(item)
    return root[0], changed
