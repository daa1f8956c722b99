"""Deadlines for slow clients: a stalled connection never holds the server.

- **Headers**: aiohttp closes a connection that has not completed a request within its
  `keepalive_timeout` (counted from the connection's start, and from each response on a kept
  alive connection); `serve` sets it to `service.header_timeout`, so a client that trickles
  header bytes (slowloris) or connects and says nothing is dropped.
- **Body**: `body_deadline` reads the whole body within `service.body_timeout`, before any
  handler runs; a client that stops sending mid-body gets 408 and the connection is closed.
  Handlers then read the cached body at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from orchestrator.config import Config
from orchestrator.typedefs import CONFIG

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _closing(status: int, code: str, message: str) -> web.Response:
    resp = web.json_response({"error": {"code": code, "message": message}}, status=status)
    resp.force_close()  # the rest of the body is unread: the connection cannot be reused
    return resp


@web.middleware
async def body_deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.body_exists:
        timeout = request.app[CONFIG].service.body_timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout):
                await request.read()
        except TimeoutError:
            return _closing(
                408, "body_timeout", f"the request body did not arrive within {timeout:g}s"
            )
        except web.HTTPRequestEntityTooLarge:
            limit = request.app[CONFIG].service.max_body_bytes
            return _closing(413, "too_large", f"body over {limit} bytes")
    return await handler(request)


def header_timeout(config: Config) -> float:
    """`keepalive_timeout` for `web.AppRunner`: it bounds the wait for request headers."""
    return config.service.header_timeout.total_seconds()
