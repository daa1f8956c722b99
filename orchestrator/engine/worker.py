"""Event workers: claim one conversation at a time, process its pending events in order.

Exclusivity is a row lock on the conversation held for the processing transaction
(`FOR UPDATE SKIP LOCKED`): any number of workers in any number of processes share the
database, no conversation is ever handled by two at once, and work claimed by a worker that
dies is simply unlocked by PostgreSQL when its session ends — no reaper needed, because the
transaction that would have marked the events done never commits.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import structlog

from orchestrator.clock import Clock
from orchestrator.engine.loop import run_until_stopped
from orchestrator.ops.metrics import Metrics
from orchestrator.store.queries import q

log = structlog.get_logger(__name__)


class Processor(Protocol):
    async def process(
        self, conn: asyncpg.Connection, conversation: dict[str, Any], event: asyncpg.Record
    ) -> dict[str, Any]:
        """Apply one event inside the worker's transaction.

        Mutates `conversation` (state, owner_app, view) in place for the next event and
        returns the result recorded on the event row.
        """
        ...


class EventWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        processor: Processor,
        *,
        clock: Clock,
        metrics: Metrics,
        name: str = "worker",
        batch: int = 20,
        poll_interval: float = 0.5,
    ) -> None:
        self.pool = pool
        self.processor = processor
        self.clock = clock
        self.metrics = metrics
        self.name = name
        self.batch = batch
        self.poll_interval = poll_interval

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Process until `stop` is set (see `loop.run_until_stopped`)."""
        await run_until_stopped(
            self.run_once,
            stop=stop,
            wake=wake,
            poll_interval=self.poll_interval,
            name=self.name,
            kind="worker",
        )

    async def run_once(self) -> int:
        """One unit of work: due timers, orphan events, then one conversation's head events."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            fired = await conn.fetch(q("fire_due_timers"), now)
            if fired:
                log.info("timers_fired", count=len(fired))
            for rec in await conn.fetch(q("orphan_events")):
                log.info(
                    "event_recorded",
                    event_id=rec["id"],
                    kind=rec["kind"],
                    account_id=rec["account_id"],
                    note="concerns no conversation",
                )
            # Shielded: once claimed, finishing the transaction must not be torn by a
            # cancellation (shutdown waits for it; a crash rolls it back as a whole).
            done = await asyncio.shield(self._process_one_conversation(conn, now))
        return done + len(fired)

    async def _process_one_conversation(self, conn: asyncpg.Connection, now: datetime) -> int:
        async with conn.transaction():
            row = await conn.fetchrow(q("claim_conversation"))
            if row is None:
                return 0
            conversation = dict(row)
            structlog.contextvars.bind_contextvars(conversation_id=conversation["id"])
            try:
                events = await conn.fetch(q("head_events"), conversation["id"], self.batch)
                for event in events:
                    await self._process_event(conn, conversation, event)
            finally:
                structlog.contextvars.unbind_contextvars("conversation_id")
            return len(events)

    async def _process_event(
        self, conn: asyncpg.Connection, conversation: dict[str, Any], event: asyncpg.Record
    ) -> None:
        snapshot = dict(conversation)
        try:
            async with conn.transaction():  # a savepoint: one bad event never blocks the rest
                result = await self.processor.process(conn, conversation, event)
                await conn.execute(q("finish_event"), event["id"], "done", result, None)
        except (OSError, asyncpg.InterfaceError, asyncpg.exceptions.ConnectionDoesNotExistError):
            raise  # the connection is gone: the whole claim rolls back and is retried
        except Exception as exc:  # a bug or bad data: record it, never loop on it
            conversation.clear()
            conversation.update(snapshot)
            log.exception("event_failed", event_id=event["id"], kind=event["kind"])
            await conn.execute(
                q("finish_event"), event["id"], "failed", None, f"{type(exc).__name__}: {exc}"
            )
            self.metrics.events_processed.labels(event["kind"], "failed").inc()
            return
        self.metrics.events_processed.labels(event["kind"], "done").inc()
        lag = (datetime.now(UTC) - event["received_at"]).total_seconds()
        self.metrics.processing_lag.observe(max(lag, 0.0))
