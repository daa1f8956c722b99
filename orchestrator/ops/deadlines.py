"""Deadlines for slow clients: a stalled connection never holds the server.

- **Headers**: a new connection must complete its first request's headers within
  `service.header_timeout` (`HeaderDeadline` wraps the server's protocol and closes it
  otherwise); between requests on a kept-alive connection, aiohttp's `keepalive_timeout`
  (set to the same value) closes a connection whose next request does not arrive whole.
  So a client that trickles header bytes (slowloris) or connects and says nothing is dropped.
- **Body**: `body_deadline` reads the whole body within `service.body_timeout`, before any
  handler runs; a client that stops sending mid-body gets 408 and the connection is closed.
  Handlers then read the cached body at once.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any, cast

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


class HeaderDeadline(asyncio.Protocol):
    """Wraps one connection's aiohttp protocol: closes the connection when the first
    request's headers (up to the blank line) have not arrived within `timeout` seconds."""

    def __init__(self, inner: Any, timeout: float) -> None:
        self._inner = inner
        self._timeout = timeout
        self._seen = b""
        self._done = False
        self._timer: asyncio.TimerHandle | None = None
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._expire)
        self._inner.connection_made(transport)

    def _expire(self) -> None:
        if not self._done and self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if not self._done:
            window = self._seen + data
            if b"\r\n\r\n" in window or b"\n\n" in window:  # the end of the headers
                self._done = True
                if self._timer is not None:
                    self._timer.cancel()
            self._seen = window[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return cast(bool | None, self._inner.eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


async def listen(
    runner: web.AppRunner, sock: socket.socket, config: Config
) -> asyncio.AbstractServer:
    """Serve `runner` on the bound `sock` with the header deadline; close the returned
    server before `runner.cleanup()`."""
    server = runner.server
    assert server is not None, "runner.setup() first"
    timeout = config.service.header_timeout.total_seconds()
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: HeaderDeadline(server(), timeout), sock=sock)


def header_timeout(config: Config) -> float:
    """`keepalive_timeout` for `web.AppRunner`: it bounds the wait for request headers."""
    return config.service.header_timeout.total_seconds()
