"""structlog set-up: JSON lines in production, pretty output on a terminal.

Context (request id, app, conversation) is bound per request and per job through
contextvars; every line has an `event`. Secrets never reach a log: config values are `Secret`
objects that print as redacted, and the processor below masks token-like keys defensively.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import structlog
from aiohttp import web

_SENSITIVE = ("token", "secret", "password", "authorization", "api_key", "signature")


@functools.cache
def _sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(s in lowered for s in _SENSITIVE)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in [k for k in event_dict if _sensitive(k)]:
        event_dict[key] = "***"
    return event_dict


def _render_json(event_dict: MutableMapping[str, Any], **kw: Any) -> str:
    """One log line as JSON: orjson (two log lines per message were a visible share of its
    CPU), the standard library for what orjson refuses. `kw["default"]` is structlog's
    fallback for objects JSON does not know (their repr)."""
    try:
        return orjson.dumps(event_dict, default=kw.get("default")).decode()
    except TypeError:
        return json.dumps(event_dict, **kw)


class _Stderr:
    """Writes each line to the *current* sys.stderr (tests and daemons replace it)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = failure = fatal = msg


def configure(*, json: bool | None = None, level: str = "INFO") -> None:
    as_json = not sys.stderr.isatty() if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer(_render_json)
        if as_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=lambda *_: _Stderr(),
        # Not cached: `configure` runs again with another level (tests, CLI commands), and a
        # cached logger would keep the level it was first used with.
        cache_logger_on_first_use=False,
    )


@web.middleware
async def request_context(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Fresh log context per request: aiohttp serves keep-alive requests of one connection in
    one task, so without clearing, one request's bound app would leak into the next."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=uuid.uuid4().hex[:12])
    return await handler(request)
