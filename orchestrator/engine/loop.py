"""The run loop shared by event workers and outbox dispatchers.

Work until there is none, then wait for a NOTIFY (`wake`) or the poll interval, whichever
comes first: NOTIFY makes the common case immediate, polling guarantees progress when a
notification is lost (or timers come due). A store error backs off for a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

log = structlog.get_logger(__name__)
STORE_ERRORS = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


async def run_until_stopped(
    step: Callable[[], Awaitable[object]],
    *,
    stop: asyncio.Event,
    wake: asyncio.Event,
    poll_interval: float,
    name: str,
    kind: str,
) -> None:
    """`kind` ("worker", "dispatcher") names the log events: `worker_started`, …"""
    log.info(f"{kind}_started", **{kind: name})
    while not stop.is_set():
        # Cleared before the step, not after: a wake-up that arrives while the step runs
        # (new work committed just after our query looked) is kept, and the wait below
        # returns at once instead of sleeping a whole poll interval.
        wake.clear()
        try:
            busy = await step()
        except STORE_ERRORS as exc:
            log.error(f"{kind}_store_error", **{kind: name}, error=str(exc))
            busy = False
            await wait_any(stop, None, 1.0)
        if not busy:
            await wait_any(stop, wake, poll_interval)
    log.info(f"{kind}_stopped", **{kind: name})


async def wait_any(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Return when `stop` or `wake` is set, or after `seconds`."""
    waiters = {asyncio.ensure_future(e.wait()) for e in (stop, wake) if e is not None}
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
