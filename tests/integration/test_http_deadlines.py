"""Stalled connections are dropped (issue 10, item 4): headers and body have deadlines."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from orchestrator.app import create_app
from orchestrator.ops.deadlines import listen
from orchestrator.serve import bind, make_runner
from tests.conftest import config_data, make_config

CLIENT_PATIENCE_S = 20.0  # far longer than the 1 s deadlines: the server must act first


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[tuple[str, int]]:
    data = config_data()
    data["service"].update(header_timeout="1s", body_timeout="1s")
    config = make_config(data)
    runner = make_runner(create_app(config, database_url=db_url, background=False), config)
    await runner.setup()
    sock = bind("127.0.0.1", 0, "the test", "PORT")
    listener = await listen(runner, sock, config)  # exactly as `serve` listens
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        listener.close()
        await listener.wait_closed()
        await runner.cleanup()


def _talk(address: tuple[str, int], chunks: list[bytes]) -> bytes:
    """Send the chunks, then read until the server closes (or our patience ends)."""
    with socket.create_connection(address, timeout=CLIENT_PATIENCE_S) as sock:
        for chunk in chunks:
            sock.sendall(chunk)
        received = b""
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                return received + b"<client gave up: the server kept the connection>"
            if not data:
                return received
            received += data


async def test_a_connection_that_never_finishes_its_headers_is_closed(
    server: tuple[str, int],
) -> None:
    partial = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    answer = await asyncio.to_thread(_talk, server, [partial])
    assert b"client gave up" not in answer
    assert answer == b""  # closed without a response: there was no complete request


async def test_a_silent_connection_is_closed(server: tuple[str, int]) -> None:
    answer = await asyncio.to_thread(_talk, server, [])
    assert answer == b""


async def test_a_body_that_stops_arriving_gets_408_and_the_connection_closes(
    server: tuple[str, int],
) -> None:
    head = (
        b"POST /webhooks/bot HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n"
    )
    answer = await asyncio.to_thread(_talk, server, [head, b'{"object": "instagram"'])
    assert b"client gave up" not in answer
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"body_timeout" in answer


async def test_a_complete_request_is_still_served(server: tuple[str, int]) -> None:
    answer = await asyncio.to_thread(
        _talk, server, [b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
    )
    assert answer.startswith(b"HTTP/1.1 200")
