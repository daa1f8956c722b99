"""Event workers: claim many conversations at once, process their pending events in order.

Exclusivity is a row lock on each claimed conversation held for the processing transaction
(`FOR NO KEY UPDATE SKIP LOCKED`): any number of workers in any number of processes share the
database, no conversation is ever handled by two at once, and work claimed by a worker that
dies is simply unlocked by PostgreSQL when its session ends — no reaper needed, because the
transaction that would have marked the events done never commits.

Throughput comes from batching, not from shortcuts: one claim takes up to
`conversations_per_claim` conversations (oldest head first; one busy conversation takes one
slot and `events_per_conversation` events, never the whole claim), deciding is pure and in
memory, and the writes of the whole batch go out in one statement (`writes.Writes`), which
also claims the free lanes' first outbox rows for this process's dispatcher (`Handoff`). If
that fast path fails on the database (a value PostgreSQL rejects, a bug), the batch is rolled
back and redone one event per savepoint, so one bad event is marked failed and never blocks
the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
import structlog

from orchestrator.clock import Clock
from orchestrator.engine.loop import run_until_stopped
from orchestrator.engine.processing import ConversationProcessor, IdPool
from orchestrator.engine.triggers import typed_event
from orchestrator.engine.writes import Claim, Writes
from orchestrator.ops.metrics import Metrics
from orchestrator.store.outage import is_outage
from orchestrator.store.queries import q
from state_machines import check_app_roles

log = structlog.get_logger(__name__)
HOUSEKEEPING_S = 0.1
CONVERSATION_COLUMNS = ("id", "account_id", "customer_id", "state", "owner_app", "view")


class Handoff(Protocol):
    """A dispatcher of this process that takes the rows a batch writes straight from its
    flush (migrations/0010_handoff.sql), instead of finding them with a claim query."""

    def claim(self) -> Claim | None: ...

    def adopt(self, rows: Sequence[Any]) -> None: ...

    def request_claim(self) -> None: ...


class EventWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        processor: ConversationProcessor,
        *,
        clock: Clock,
        metrics: Metrics,
        name: str = "worker",
        conversations_per_claim: int = 64,
        # Bounds a batch (64 x 10 events at most): a conversation with a burst of events
        # (a 1,000-item POST) takes ten per claim, so the others claimed with it wait for
        # ten of its events, not fifty (their p99 behind such a POST: 600-820 ms -> 250 ms).
        events_per_conversation: int = 10,
        poll_interval: float = 0.5,
        on_outbox: Callable[[], None] | None = None,
        handoff: Handoff | None = None,
    ) -> None:
        self.pool = pool
        self.processor = processor
        self.clock = clock
        self.metrics = metrics
        self.name = name
        self.conversations_per_claim = conversations_per_claim
        self.events_per_conversation = events_per_conversation
        self.poll_interval = poll_interval
        self.on_outbox = on_outbox or (lambda: None)
        self.handoff = handoff
        self._failed_ids: set[int] = set()
        self._idle = True
        self._more = False  # the last batch was full: more may be waiting
        self._next_housekeeping = 0.0

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Process until `stop` is set (see `loop.run_until_stopped`)."""
        await run_until_stopped(
            self._step_again,
            stop=stop,
            wake=wake,
            poll_interval=self.poll_interval,
            name=self.name,
            kind="worker",
        )

    async def _step_again(self) -> bool:
        """One unit of work, then whether to go on at once: only if more work may be waiting
        that this step could not take (a full claim, timers just fired). Work committed while
        the step ran rings `wake` (`wakeup.WakeOne` rings a busy worker too), so the loop looks
        again for it without a claim that finds nothing after every batch: at low load that
        empty claim was a transaction per message."""
        done = await self.run_once()
        return done > 0 and self._more

    async def run_once(self) -> int:
        """One unit of work: due timers and orphan events (when idle, or at most every
        `HOUSEKEEPING_S` while busy: two statements per batch were a fifth of a busy
        worker's round trips), then one batch of conversations."""
        loop = asyncio.get_running_loop()
        fired: list[Any] = []
        async with self.pool.acquire() as conn:
            if self._idle or loop.time() >= self._next_housekeeping:
                self._next_housekeeping = loop.time() + HOUSEKEEPING_S
                fired = await conn.fetch(q("fire_due_timers"), self.clock.now())
                if fired:
                    log.info("timers_fired", count=len(fired))
                for rec in await conn.fetch(q("orphan_events")):
                    self._recorded(rec)
            # Shielded: once claimed, finishing the transaction must not be torn by a
            # cancellation (shutdown waits for it; a crash rolls it back as a whole).
            done = await asyncio.shield(self._step(conn))
        self._idle = done == 0
        self._more = self._more or bool(fired)
        return done + len(fired)

    def _recorded(self, rec: Any) -> None:
        """An event that concerns no conversation. `app_roles` is compared with the config:
        Meta routing idle threads to an app we do not treat as primary is worth a warning."""
        log.info(
            "event_recorded",
            event_id=rec["id"],
            kind=rec["kind"],
            account_id=rec["account_id"],
            note="concerns no conversation",
        )
        if rec["kind"] != "app_roles":
            return
        typed = typed_event(rec, rec["account_id"])
        roles = getattr(typed, "roles", None) or {}
        for warning in check_app_roles(roles, self.processor.rt.policy):
            self.metrics.app_roles_mismatch.inc()
            log.warning("app_roles_disagree", account_id=rec["account_id"], warning=warning)

    async def _step(self, conn: asyncpg.Connection) -> int:
        try:
            done, writes = await self._batch(conn, safe=False)
        except Exception as exc:
            if is_outage(exc):  # not the batch's fault (connection, deadlock): try again later
                raise
            log.warning("batch_failed_redone_one_by_one", error=f"{type(exc).__name__}: {exc}")
            done, writes = await self._batch(conn, safe=True)
        # Committed: the heads claimed in the flush go to this process's dispatcher; a lane
        # written but not handed over (busy, a paused account, the dispatcher full) is found
        # by a claim query.
        if writes.claimed and self.handoff is not None:
            self.handoff.adopt(writes.claimed)
        handed = {(r["conversation_id"], r["lane"]) for r in writes.claimed}
        if writes.lanes_written - handed:
            self.on_outbox()
            if self.handoff is not None:
                self.handoff.request_claim()
        return done

    async def _batch(self, conn: asyncpg.Connection, *, safe: bool) -> tuple[int, Writes]:
        """(events handled, the batch's writes: the heads claimed for the dispatcher and the
        lanes written) for one claim of conversations."""
        writes = Writes(claim=self.handoff.claim() if self.handoff is not None else None)
        ids = IdPool()
        handled: list[Any] = []
        self._more = False
        async with conn.transaction():
            events = await conn.fetch(
                q("claim_batch"), self.conversations_per_claim, self.events_per_conversation
            )
            if not events:
                return 0, writes
            conversations: list[dict[str, Any]] = []
            by_conversation: dict[int, list[Any]] = {}
            for e in events:
                if e["c_id"] not in by_conversation:
                    by_conversation[e["c_id"]] = []
                    conversations.append({k: e["c_" + k] for k in CONVERSATION_COLUMNS})
                by_conversation[e["c_id"]].append(e)
            self._more = len(conversations) >= self.conversations_per_claim or any(
                len(evs) >= self.events_per_conversation for evs in by_conversation.values()
            )
            for conversation in conversations:
                structlog.contextvars.bind_contextvars(conversation_id=conversation["id"])
                try:
                    for event in by_conversation.get(conversation["id"], ()):
                        if safe:
                            await self._event_in_savepoint(conn, conversation, event, writes, ids)
                        else:
                            await self._event(conn, conversation, event, writes, ids)
                        handled.append(event)
                finally:
                    structlog.contextvars.unbind_contextvars("conversation_id")
            await writes.flush(conn)
        self._observe(handled)
        return len(handled), writes

    async def _event(
        self,
        conn: asyncpg.Connection,
        conversation: dict[str, Any],
        event: Any,
        writes: Writes,
        ids: IdPool,
    ) -> None:
        """Fast path: a failure in deciding (a bug, bad data) fails this event only; a failure
        of the database aborts the transaction and propagates (the batch is redone safely)."""
        snapshot = dict(conversation)
        cp = writes.checkpoint()
        try:
            result = await self.processor.process(conn, conversation, event, writes, ids)
        except asyncpg.PostgresError:
            raise  # the transaction is aborted: the batch is redone one event at a time
        except Exception as exc:
            if is_outage(exc):
                raise
            writes.rollback(cp)
            conversation.clear()
            conversation.update(snapshot)
            self._failed(event, exc, writes)
            return
        writes.finish(event["id"], "done", result, None)

    async def _event_in_savepoint(
        self,
        conn: asyncpg.Connection,
        conversation: dict[str, Any],
        event: Any,
        writes: Writes,
        ids: IdPool,
    ) -> None:
        """Safe path: one event, one savepoint, its writes flushed inside it."""
        snapshot = dict(conversation)
        try:
            async with conn.transaction():
                result = await self.processor.process(conn, conversation, event, writes, ids)
                writes.finish(event["id"], "done", result, None)
                await writes.flush(conn)
        except Exception as exc:
            if is_outage(exc):
                raise
            writes.clear()
            conversation.clear()
            conversation.update(snapshot)
            self._failed(event, exc, writes)
            await writes.flush(conn)

    def _failed(self, event: Any, exc: Exception, writes: Writes) -> None:
        log.error(
            "event_failed",
            event_id=event["id"],
            kind=event["kind"],
            error=f"{type(exc).__name__}: {exc}",
            exc_info=exc,
        )
        writes.finish(event["id"], "failed", None, f"{type(exc).__name__}: {exc}")
        self._failed_ids.add(event["id"])
        self.metrics.events_processed.labels(event["kind"], "failed").inc()

    def _observe(self, handled: list[Any]) -> None:
        now = datetime.now(UTC)
        for event in handled:
            if event["id"] in self._failed_ids:
                self._failed_ids.discard(event["id"])
                continue
            self.metrics.events_processed.labels(event["kind"], "done").inc()
            lag = (now - event["received_at"]).total_seconds()
            self.metrics.processing_lag.observe(max(lag, 0.0))
