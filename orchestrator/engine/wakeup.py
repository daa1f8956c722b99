"""Waking workers and dispatchers after new work is committed.

In this process: an asyncio.Event, set at once. Other processes sharing the database: one
NOTIFY, coalesced over a few milliseconds. Issuing NOTIFY inside every transaction took a
global lock at each commit (PostgreSQL serialises notifying commits) and cost about a fifth
of ingress throughput; a hint needs no such precision, and polling still guarantees progress
if a notification is lost.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

log = structlog.get_logger(__name__)
CHANNEL = "orchestrator_events"
OUTBOX_CHANNEL = "orchestrator_outbox"


class Waker:
    def __init__(
        self, pool: asyncpg.Pool, *, channel: str = CHANNEL, coalesce_s: float = 0.005
    ) -> None:
        self.pool = pool
        self.channel = channel
        self.local = asyncio.Event()
        self.coalesce_s = coalesce_s
        self._pending: asyncio.Task[None] | None = None

    def poke(self) -> None:
        self.local.set()
        if self._pending is None or self._pending.done():
            self._pending = asyncio.create_task(self._notify(), name=f"notify-{self.channel}")

    async def _notify(self) -> None:
        await asyncio.sleep(self.coalesce_s)
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self.pool.execute("SELECT pg_notify($1, '')", self.channel)

    async def close(self) -> None:
        if self._pending is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
