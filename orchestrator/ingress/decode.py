"""Webhook body bytes → a JSON value, strictly: undecodable bytes, syntax errors and the
non-standard constants `NaN`/`Infinity` raise `MalformedJSON` with a 1-based line and column."""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.errors import OrchestratorError


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


def _line_col(text: str | bytes, pos: int) -> tuple[int, int]:
    newline: Any = "\n" if isinstance(text, str) else b"\n"
    return text.count(newline, 0, pos) + 1, pos - text.rfind(newline, 0, pos)


def load_json(body: bytes) -> Any:
    if isinstance(body, str):  # tolerated, although the edge hands over raw bytes
        text = body
    else:
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
    try:
        return json.loads(text, parse_constant=_reject_constant)
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
