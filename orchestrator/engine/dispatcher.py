"""Outbox dispatcher: executes the effects the worker wrote, many conversations at once.

Order: a row is claimed only when it is the oldest open row of its (conversation, lane) and
a partial unique index forbids two in flight per lane, so a conversation's sends and
thread-control calls happen exactly in the order the state machine decided them, and each
sub-app's deliveries in theirs (`outbox_rows` explains the lanes).

Throughput: one dispatcher keeps up to `max_in_flight` rows of different lanes in flight at
once, so 150 ms of Graph latency costs latency, not throughput. Rows mostly arrive without
a query (migrations/0010_handoff.sql): a worker of this process hands over the lane heads
its write claimed (`adopt`), and each batch of completions claims the next head of every
lane it completed, in the same statement. The claim query (many heads in one statement)
finds the rest: retries coming due, rows recovered from a dead process, accounts whose
pause ended, lanes that moved on in another process.

Leases: each claim carries a unique token and an expiry of `LEASE_S`, refreshed every
`REFRESH_S` while the call runs; every call is bounded by `CALL_TIMEOUT_S`, shorter than the
lease. A completion only counts with the claim's token. A dispatcher that dies stops
refreshing and its rows return to pending within `LEASE_S` (`reap`): the one window in which
a message can be sent twice (documented in README "Guarantees"; tested).

Failures: a retry stays on the same row (order holds) after a jittered backoff, within an
attempt limit and a time budget; throttling pauses the whole account for seconds
(`throttle.AccountPauses`) instead of parking a row for minutes; Meta refusing because we are
not the thread owner — or any thread-control call that fails for good — triggers a
`thread_owner` check that reconciles the conversation. A row whose call succeeded is marked
done whatever fails afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import structlog

from orchestrator.engine.loop import STORE_ERRORS, run_until_stopped
from orchestrator.engine.perform import WindowClosedAtSend, perform, reconcile
from orchestrator.engine.runtime import Runtime
from orchestrator.engine.throttle import AccountPauses
from orchestrator.engine.writes import Claim
from orchestrator.graph import GraphError, HttpDeliveryError, NotThreadOwner, RateLimited
from orchestrator.jsontext import dumps
from orchestrator.store.intake import Row, store_rows
from orchestrator.store.outage import is_outage
from orchestrator.store.queries import q

log = structlog.get_logger(__name__)

LEASE_S = 15.0
REFRESH_S = 5.0
CALL_TIMEOUT_S = 12.0  # every wait inside a claim (rate limiter, Graph, vendor) ends first
STANDBY_MAX_ATTEMPTS = 3  # standby copies are information: best effort, never a backlog
CLAIM_BATCH = 200


@dataclass(slots=True)
class Outcome:
    row: Mapping[str, Any]
    verdict: str  # "done" | "retry" | "dead"
    result: dict[str, Any] | None = None
    follow_up: list[Row] = field(default_factory=list)
    available_at: datetime | None = None
    reason: str | None = None
    count_attempt: bool = True


class Dispatcher:
    def __init__(
        self,
        rt: Runtime,
        *,
        name: str = "dispatcher",
        poll_interval: float = 0.5,
        max_in_flight: int = 256,
        retry_budget_s: float = 900.0,
    ) -> None:
        self.rt = rt
        self.name = name
        self.poll_interval = poll_interval
        self.max_in_flight = max_in_flight
        self.retry_budget_s = retry_budget_s
        self.pauses = AccountPauses()
        self.inflight: dict[int, Mapping[str, Any]] = {}
        self._outcomes: list[Outcome] = []
        self._outcome_ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._rand = random.Random()
        self._claim_after_flush = False

    # -- hand-off (migrations/0010_handoff.sql) ---------------------------------------------

    def claim(self) -> Claim | None:
        """What a worker of this process may claim for us in its flush: as many heads as we
        have room for, none of a paused account."""
        free = self.max_in_flight - len(self.inflight)
        if free <= 0:
            return None
        return Claim(self.rt.clock.now, free, self.pauses.paused(self.rt.clock.now()), LEASE_S)

    def adopt(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Start rows claimed for us elsewhere (a worker's flush, our own completions)."""
        for row in rows:
            self.inflight[row["id"]] = row
            task = asyncio.create_task(self._execute(row), name=f"outbox-{row['id']}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def request_claim(self) -> None:
        """A worker wrote rows it could not hand over (their lane was busy): look for them
        now, and once more after the completion being written (it may free their lane
        after our claim query looked)."""
        self._claim_after_flush = True
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        """Claim and start rows until `stop`; then let the rows in flight finish and record
        them (shutdown never abandons a claimed row half-done)."""
        self._wake = wake
        flusher = asyncio.create_task(self._flush_loop(stop), name=f"{self.name}-completions")
        refresher = asyncio.create_task(self._refresh_loop(stop), name=f"{self.name}-leases")
        try:
            await run_until_stopped(
                self._start_more,
                stop=stop,
                wake=wake,
                poll_interval=self.poll_interval,
                name=self.name,
                kind="dispatcher",
            )
        finally:
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            self._outcome_ready.set()
            await flusher
            refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresher

    async def run_once(self) -> int:
        """Claim what is ready, execute it all, record the outcomes; the number of rows.
        (The loop pipelines these steps; tests and tools use this synchronous form.)"""
        rows = await self._claim()
        if rows:
            await asyncio.gather(*(self._execute(r) for r in rows))
            await self._flush(chain=False)
        return len(rows)

    async def _start_more(self) -> bool:
        rows = await self._claim()
        self.adopt(rows)
        return bool(rows)

    async def _claim(self) -> list[asyncpg.Record]:
        free = self.max_in_flight - len(self.inflight)
        if free <= 0:
            return []
        now = self.rt.clock.now()
        try:
            rows = await self.rt.pool.fetch(
                q("claim_outbox"), now, min(free, CLAIM_BATCH), self.pauses.paused(now), LEASE_S
            )
        except asyncpg.UniqueViolationError:
            return []  # another process claimed one of these lanes' heads just now
        return list(rows)

    # -- one row -----------------------------------------------------------------------------

    async def _execute(self, row: Mapping[str, Any]) -> None:
        structlog.contextvars.bind_contextvars(
            conversation_id=row["conversation_id"], outbox_id=row["id"], app=row["app"]
        )
        try:
            try:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    result, follow_up = await perform(self.rt, row)
            except Exception as exc:
                outcome = await self._judge(row, exc)
            else:
                self.pauses.succeeded(row["account_id"])
                outcome = Outcome(row, "done", result, follow_up)
        finally:
            structlog.contextvars.unbind_contextvars("conversation_id", "outbox_id", "app")
        self._outcomes.append(outcome)
        self._outcome_ready.set()

    async def _judge(self, row: Mapping[str, Any], exc: Exception) -> Outcome:
        rt = self.rt
        if isinstance(exc, WindowClosedAtSend):
            return Outcome(row, "dead", reason=f"{exc}; not sent")
        if isinstance(exc, GraphError):
            rt.metrics.graph_errors.labels(str(exc.code or exc.http_status or "network")).inc()
        elif not isinstance(exc, HttpDeliveryError | TimeoutError | aiohttp.ClientError):
            log.error("outbox_unexpected_error", kind=row["kind"], exc_info=exc)
        decision = rt.retry_policy.decide(exc, row["attempts"], rand=self._rand.random())
        now = rt.clock.now()
        if decision.verdict == "retry":
            if isinstance(exc, GraphError) and exc.action == "slow_down":
                floor = exc.retry_after if isinstance(exc, RateLimited) else None
                pause = self.pauses.throttled(row["account_id"], now, floor)
                reason = f"{exc.rule} ({exc.code_text}): account paused {pause:.1f}s"
                return Outcome(
                    row,
                    "retry",
                    available_at=now + timedelta(seconds=pause),
                    reason=reason,
                    count_attempt=False,
                )
            if row["payload"].get("standby") and row["attempts"] >= STANDBY_MAX_ATTEMPTS:
                return Outcome(
                    row,
                    "dead",
                    reason=f"{decision.reason}; standby copies are "
                    f"best effort: given up after {row['attempts']} attempts",
                )
            age = (datetime.now(UTC) - row["created_at"]).total_seconds()
            if age + decision.delay > self.retry_budget_s:
                return Outcome(
                    row,
                    "dead",
                    reason=f"{decision.reason}; retry budget of {self.retry_budget_s:g}s spent",
                )
            return Outcome(
                row,
                "retry",
                available_at=now + timedelta(seconds=decision.delay),
                reason=decision.reason,
            )
        reason = decision.reason
        follow_up: list[Row] = []
        if (
            decision.verdict == "reconcile"
            or isinstance(exc, NotThreadOwner)
            or row["kind"] == "thread_control"
        ):
            # Our idea of the owner may be wrong (refused as not owner) or left out of step
            # with Meta's (a pass or take that never happened): ask Meta and follow it.
            try:
                async with asyncio.timeout(CALL_TIMEOUT_S):
                    follow_up, reason = await reconcile(rt, row, reason)
            except TimeoutError:
                reason = f"{reason}; thread_owner check timed out"
        return Outcome(row, "dead", reason=reason, follow_up=follow_up)

    # -- completions ---------------------------------------------------------------------------

    async def _flush_loop(self, stop: asyncio.Event) -> None:
        """Record outcomes as they come: while one batch is written the next accumulates,
        so completions batch themselves under load and cost one round trip when quiet.
        `run` sets `_outcome_ready` once more at shutdown, after the last call ended."""
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            if self._outcomes:
                await self._flush()
            if stop.is_set() and not self._tasks and not self._outcomes:
                return

    async def _flush(self, *, chain: bool = True) -> None:
        """Record the outcomes so far; with `chain`, the next heads of completed lanes are
        claimed in the same statement and started (run_once claims them itself instead)."""
        batch, self._outcomes = self._outcomes, []
        if not batch:
            return
        # Completions alone are one statement (atomic by itself): no BEGIN/COMMIT round trips.
        single = all(o.verdict == "done" and not o.follow_up for o in batch)
        try:
            async with self.rt.pool.acquire() as conn:
                if single:
                    chained = await self._write(conn, batch, chain=chain)
                else:
                    async with conn.transaction():
                        chained = await self._write(conn, batch, chain=chain)
        except STORE_ERRORS as exc:
            if not is_outage(exc):
                chained = await self._write_one_by_one(batch, chain=chain)
            else:
                # The database is away: keep the outcomes (their rows stay leased and
                # refreshed) and try again shortly.
                log.error("outbox_completion_delayed", error=str(exc), rows=len(batch))
                self._outcomes = batch + self._outcomes
                await asyncio.sleep(1.0)
                self._outcome_ready.set()
                return
            self._claim_after_flush = True  # recorded one by one: look for the next rows
        self._finished(batch)
        # Committed: the next heads of the completed lanes are ours to send. A worker that
        # asked for a claim before this commit may have written behind a lane this batch
        # just freed, after our completion statement looked: look once more (taken after
        # the commit, so no request is lost between the two).
        self.adopt(chained)
        rewake, self._claim_after_flush = self._claim_after_flush, False
        if rewake or any(o.verdict == "dead" for o in batch):
            self._wake.set()  # a lane moved on without a hand-off: look for its next row

    async def _write_one_by_one(self, batch: list[Outcome], *, chain: bool) -> list[Any]:
        """A value the database refused (e.g. an odd answer from Meta): record each outcome
        alone; a done row is marked done even if its transcript line cannot be written.
        Returns the heads chained to the completions that went through."""
        chained: list[Any] = []
        for o in batch:
            try:
                async with self.rt.pool.acquire() as conn, conn.transaction():
                    chained += await self._write(conn, [o], chain=chain)
            except asyncpg.PostgresError as exc:
                log.error("outbox_record_failed", outbox_id=o.row["id"], error=str(exc))
                async with self.rt.pool.acquire() as conn:
                    if o.verdict == "done":
                        o.result = {"note": f"sent; recording its answer failed: {exc}"}
                        await conn.fetch(q("outbox_done"), *self._done_args([o], transcript=False))
                    else:
                        await conn.execute(
                            q("outbox_dead"),
                            o.row["id"],
                            o.row["lease_token"],
                            f"{o.reason}; recording failed: {exc}",
                        )
        return chained

    async def _write(
        self, conn: asyncpg.Connection, batch: list[Outcome], *, chain: bool
    ) -> list[Any]:
        """Record `batch`; the next heads of completed lanes claimed in the same statement."""
        done = [o for o in batch if o.verdict == "done"]
        chained: list[Any] = []
        if done:
            now = self.rt.clock.now()
            free = max(0, self.max_in_flight - len(self.inflight) + len(done)) if chain else 0
            confirmed = set()
            for r in await conn.fetch(
                q("complete_outbox"),
                *self._done_args(done),
                now,
                free,
                self.pauses.paused(now),
                LEASE_S,
            ):
                if r["done"]:
                    confirmed.add(r["id"])
                else:
                    chained.append(r)
            for o in done:
                if o.row["id"] not in confirmed:
                    log.warning(
                        "outbox_lease_lost",
                        outbox_id=o.row["id"],
                        note="the row was recovered by another dispatcher meanwhile",
                    )
        for o in batch:
            if o.follow_up:
                by = o.row["app"] if o.verdict == "done" else None
                await store_rows(conn, o.follow_up, by)
            if o.verdict == "retry":
                await conn.execute(
                    q("outbox_retry"),
                    o.row["id"],
                    o.row["lease_token"],
                    o.available_at,
                    o.reason,
                    o.count_attempt,
                )
            elif o.verdict == "dead":
                await conn.execute(q("outbox_dead"), o.row["id"], o.row["lease_token"], o.reason)
        return chained

    def _done_args(self, done: list[Outcome], *, transcript: bool = True) -> list[Any]:
        """Arguments of `outbox_done`: the rows, and the transcript lines of sends."""
        lines = []
        for o in done if transcript else ():
            if o.row["kind"] not in ("send_message", "private_reply"):
                continue
            p, result = o.row["payload"], o.result or {}
            message = p.get("message", {})
            mid = result.get("message_id")
            attachments = message.get("attachment") or message.get("attachments")
            purpose = p.get("purpose") or (
                "reply" if o.row["kind"] == "send_message" else "private_reply"
            )
            lines.append(
                (
                    o.row["conversation_id"],
                    None if mid is None else str(mid),
                    o.row["app"],
                    purpose,
                    message.get("text"),
                    None if attachments is None else dumps(attachments),
                    o.row["id"],
                )
            )
        return [
            [o.row["id"] for o in done],
            [o.row["lease_token"] for o in done],
            [dumps(o.result) for o in done],
            *([line[i] for line in lines] for i in range(7)),
            self.rt.clock.now(),
        ]

    def _finished(self, batch: list[Outcome]) -> None:
        m = self.rt.metrics
        follow_up = False
        for o in batch:
            self.inflight.pop(o.row["id"], None)
            m.outbox.labels(o.row["kind"], o.verdict).inc()
            follow_up = follow_up or bool(o.follow_up)
            if o.verdict == "done":
                log.debug(
                    "outbox_done",
                    outbox_id=o.row["id"],
                    kind=o.row["kind"],
                    attempts=o.row["attempts"],
                )
            elif o.verdict == "retry":
                log.warning(
                    "outbox_retry",
                    outbox_id=o.row["id"],
                    kind=o.row["kind"],
                    attempt=o.row["attempts"],
                    reason=o.reason,
                )
            else:
                log.error(
                    "outbox_dead_letter",
                    outbox_id=o.row["id"],
                    kind=o.row["kind"],
                    attempts=o.row["attempts"],
                    reason=o.reason,
                )
        if follow_up:
            self.rt.waker.poke()

    # -- leases --------------------------------------------------------------------------------

    async def _refresh_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set() or self.inflight:
            await asyncio.sleep(REFRESH_S)
            rows = list(self.inflight.values())
            if not rows:
                continue
            with contextlib.suppress(*STORE_ERRORS):
                await self.rt.pool.execute(
                    q("outbox_refresh_leases"),
                    [r["id"] for r in rows],
                    [r["lease_token"] for r in rows],
                    LEASE_S,
                )

    async def reap(self) -> int:
        """Return rows whose lease expired (their dispatcher died) to pending, or dead-letter
        them at the attempt limit."""
        rows = await self.rt.pool.fetch(q("outbox_reap"), self.rt.retry_policy.max_attempts)
        for r in rows:
            log.warning("outbox_row_recovered", outbox_id=r["id"], status=r["status"])
        return len(rows)
