"""Strict reading of REST API input: every malformed value is a 4xx with a JSON reason.

Ids are ASCII digits within int64 (Unicode digits such as `²` or a fullwidth 5 (U+FF15)
pass `str.isdigit()`, and the fullwidth 5 even aliases conversation 5 through `int()`);
query parameters are checked by name
and value; bodies are bounded in bytes and nesting, and strings PostgreSQL cannot store (NUL,
lone surrogates) are refused with the path of the offending value.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from orchestrator.ingress.decode import UNSAFE_TEXT

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 16
MAX_IDEMPOTENCY_KEY = 200
INT64_MAX = 2**63 - 1
STATES = ("bot", "pending_human", "human")
_DIGITS = re.compile(r"[0-9]{1,19}")
_KEY = re.compile(r"[\x21-\x7e]+")  # visible ASCII


class ApiError(web.HTTPException):
    """An error answered as `{"error": {"code", "message", ...}}` with its status."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps({"error": {"code": code, "message": message, **extra}}),
            content_type="application/json",
        )
        self.code = code


def conversation_id(raw: str) -> int:
    if not _DIGITS.fullmatch(raw) or int(raw) > INT64_MAX or int(raw) == 0:
        raise ApiError(
            400,
            "invalid_conversation_id",
            f"a conversation id is a positive integer of ASCII digits up to {INT64_MAX}",
        )
    return int(raw)


def query(request: web.Request, allowed: dict[str, str]) -> dict[str, str]:
    """The query parameters, refused if unknown, repeated or not ASCII-printable."""
    out: dict[str, str] = {}
    for name, value in request.query.items():
        if name not in allowed:
            raise ApiError(
                400,
                "invalid_query",
                f"unknown query parameter; allowed: {', '.join(sorted(allowed)) or 'none'}",
            )
        if name in out:
            raise ApiError(400, "invalid_query", f"query parameter {name!r} given twice")
        if len(value) > 64 or not value.isascii() or not value.isprintable():
            raise ApiError(400, "invalid_query", f"{name}: at most 64 printable ASCII characters")
        out[name] = value
    return out


def limit(value: str | None, default: int = 50, maximum: int = 500) -> int:
    if value is None or value == "":
        return default
    if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= maximum:
        raise ApiError(400, "invalid_query", f"limit: an integer from 1 to {maximum}")
    return int(value)


def state(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value not in STATES:
        raise ApiError(400, "invalid_query", f"state: one of {', '.join(STATES)}")
    return value


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > MAX_IDEMPOTENCY_KEY or not _KEY.fullmatch(value):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key: 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters",
        )
    return value


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object: at most MAX_BODY_BYTES, MAX_DEPTH levels, storable text."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body may have at most {MAX_BODY_BYTES} bytes")
    # request.read(): the body deadline middleware (ops/deadlines.py) may have read the body
    # already; aiohttp keeps it, and the stream would now be empty.
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body may have at most {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return {}
    if _too_deep(raw):
        raise ApiError(400, "too_deep", f"the body may nest at most {MAX_DEPTH} levels")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_json", "the body must be a JSON object (UTF-8)") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    where = _unsafe_text(body)
    if where is not None:
        raise ApiError(
            400,
            "invalid_text",
            f"{where}: text may not contain NUL characters or unpaired surrogates",
        )
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_deep(raw: bytes) -> bool:
    """Nesting deeper than MAX_DEPTH, counted on the bytes (outside strings) before parsing,
    so a body of 100,000 brackets costs one linear scan and no recursion."""
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def _unsafe_text(value: Any, path: str = "body") -> str | None:
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if UNSAFE_TEXT.search(item):
                return where
        elif isinstance(item, dict):
            for k, v in item.items():
                if UNSAFE_TEXT.search(k):
                    return f"{where} (a key)"
                stack.append((v, f"{where}.{k}"))
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
    return None
