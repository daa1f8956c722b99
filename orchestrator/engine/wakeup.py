"""Waking workers and dispatchers after new work is committed.

In this process: at once, and one waiting worker per poke (`WakeOne`): with every worker
woken by every commit, at 50 messages/s each message cost one claim that found the event
and one more per other worker that found nothing, each a transaction of its own.

Other processes sharing the database: one NOTIFY, coalesced over a few milliseconds.
Issuing NOTIFY inside every transaction took a global lock at each commit (PostgreSQL
serialises notifying commits) and cost about a fifth of ingress throughput; a hint needs no
such precision, and polling still guarantees progress if a notification is lost.

A process alone on its database needs no NOTIFY at all: `watch_peers` looks every few
seconds for other processes' listeners (`LISTENER_NAME` in pg_stat_activity) and the wakers
skip the round trip while there are none. A process that joins is noticed within
`PEERS_EVERY_S`; until then it finds its work by polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import asyncpg
import structlog

log = structlog.get_logger(__name__)
CHANNEL = "orchestrator_events"
OUTBOX_CHANNEL = "orchestrator_outbox"
LISTENER_NAME = "orchestrator-listener"
PEERS_EVERY_S = 2.0


class _Bell(asyncio.Event):
    """One consumer's wake-up: an asyncio.Event that knows whether its owner waits on it."""

    waiting = False

    async def wait(self) -> Literal[True]:
        self.waiting = True
        try:
            return await super().wait()
        finally:
            self.waiting = False


class WakeOne:
    """A doorbell for several consumers of one queue (the workers of a process).

    Each `set()` wakes one consumer that waits and is not woken yet (the first in order, so
    at low load one worker does the work while the others sleep) and marks every consumer
    that is busy: a busy worker may hold the very conversation the new work is for (its
    lock makes the woken one skip it), so it must look again after its step instead of
    sleeping. When nobody waits, every bell is set. Each consumer gets its own bell
    (`member()`) to clear before its step and wait on after it."""

    def __init__(self) -> None:
        self._bells: list[_Bell] = []

    def member(self) -> asyncio.Event:
        bell = _Bell()
        self._bells.append(bell)
        return bell

    def set(self) -> None:
        woken = False
        for bell in self._bells:
            if not bell.waiting:
                bell.set()  # busy: kept for when its step ends
            elif not woken and not bell.is_set():
                bell.set()
                woken = True


class Waker:
    def __init__(
        self, pool: asyncpg.Pool, *, channel: str = CHANNEL, coalesce_s: float = 0.005
    ) -> None:
        self.pool = pool
        self.channel = channel
        self.local = WakeOne()
        self.coalesce_s = coalesce_s
        self._pending: asyncio.Task[None] | None = None
        # Unknown until `watch_peers` looked: notify (an ingress-only process never looks,
        # and always notifies).
        self.peers = True

    def poke(self) -> None:
        self.local.set()
        if not self.peers:
            return
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


async def watch_peers(
    pool: asyncpg.Pool, own_listener_pid: int, wakers: list[Waker], stop: asyncio.Event
) -> None:
    """Keep `Waker.peers` true while another process listens on this database."""
    while not stop.is_set():
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            others = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND pid <> $2",
                LISTENER_NAME,
                own_listener_pid,
            )
            for waker in wakers:
                waker.peers = bool(others)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PEERS_EVERY_S)
