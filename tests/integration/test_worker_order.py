"""Ordered processing: per conversation one at a time and in order, across worker pools."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from orchestrator.clock import SystemClock
from orchestrator.engine.processing import IdPool
from orchestrator.engine.worker import EventWorker
from orchestrator.engine.writes import TranscriptLine, Writes
from orchestrator.ops.metrics import Metrics
from orchestrator.store.database import create_pool
from orchestrator.store.intake import Row, store_rows

N_CONVERSATIONS = 50
N_EVENTS = 1000


class TrackingProcessor:
    """Records what it handles and fails the test if two workers overlap on a conversation."""

    def __init__(self, active: set[int], seen: dict[int, list[int]], violations: list[str]) -> None:
        self.active, self.seen, self.violations = active, seen, violations

    async def process(
        self,
        conn: asyncpg.Connection,
        conversation: dict[str, Any],
        event: Any,
        writes: Writes,
        ids: IdPool,
    ) -> dict[str, Any]:
        cid = conversation["id"]
        if cid in self.active:
            self.violations.append(f"conversation {cid} handled concurrently")
        self.active.add(cid)
        try:
            await asyncio.sleep(random.random() / 2000)  # widen the race window
            self.seen.setdefault(cid, []).append(event["payload"]["seq"])
        finally:
            self.active.discard(cid)
        return {"ok": True}


async def test_two_worker_pools_keep_per_conversation_order_without_overlap(db_url: str) -> None:
    rng = random.Random(7)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    per_conv: dict[int, int] = {}
    for n in range(N_EVENTS):
        c = rng.randrange(N_CONVERSATIONS)
        seq = per_conv.get(c, 0)
        per_conv[c] = seq + 1
        rows.append(
            Row(
                account_id="17841400000000001",
                customer_id=f"cust{c:03d}",
                dedup_key=f"e{n}",
                kind="message",
                source="messaging",
                mid=f"m{n}",
                occurred_at=base + timedelta(seconds=n),
                payload={"seq": seq, "c": c},
            )
        )
    setup = await asyncpg.connect(db_url)
    try:
        # Interleaved arrival in several transactions, as concurrent webhooks would.
        for chunk in range(0, N_EVENTS, 100):
            async with setup.transaction():
                await store_rows(setup, rows[chunk : chunk + 100], "bot")
        id_of = {
            r["customer_id"]: r["id"]
            for r in await setup.fetch("SELECT id, customer_id FROM conversations")
        }
    finally:
        await setup.close()

    active: set[int] = set()
    seen: dict[int, list[int]] = {}
    violations: list[str] = []
    processor = TrackingProcessor(active, seen, violations)
    pools = [await create_pool(db_url, min_size=1, max_size=5) for _ in range(2)]
    try:
        workers = [
            EventWorker(
                pool,
                processor,
                clock=SystemClock(),
                metrics=Metrics(),
                name=f"p{p}w{w}",
                conversations_per_claim=3,
                events_per_conversation=3,
            )
            for p, pool in enumerate(pools)
            for w in range(4)
        ]

        async def drain(worker: EventWorker) -> None:
            idle = 0
            while idle < 3:
                idle = 0 if await worker.run_once() else idle + 1

        await asyncio.wait_for(asyncio.gather(*(drain(w) for w in workers)), timeout=120)
        pending = await pools[0].fetchval("SELECT count(*) FROM events WHERE status <> 'done'")
    finally:
        for pool in pools:
            await pool.close()

    assert violations == []
    assert pending == 0
    assert sum(len(v) for v in seen.values()) == N_EVENTS
    for c, count in per_conv.items():
        assert seen[id_of[f"cust{c:03d}"]] == list(range(count)), f"conversation {c} out of order"


async def test_order_follows_event_timestamp_not_arrival(db_url: str) -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    late_first = [
        Row(
            "17841400000000001",
            "cust",
            f"e{i}",
            "message",
            "messaging",
            f"m{i}",
            base + timedelta(seconds=s),
            {"seq": s},
        )
        for i, s in enumerate([3, 1, 2, 0])
    ]
    conn = await asyncpg.connect(db_url)
    try:
        for row in late_first:  # arrives 3, 1, 2, 0
            async with conn.transaction():
                await store_rows(conn, [row], "bot")
    finally:
        await conn.close()
    seen: dict[int, list[int]] = {}
    pool = await create_pool(db_url, min_size=1, max_size=2)
    try:
        worker = EventWorker(
            pool, TrackingProcessor(set(), seen, []), clock=SystemClock(), metrics=Metrics()
        )
        while await worker.run_once():
            pass
    finally:
        await pool.close()
    assert next(iter(seen.values())) == [0, 1, 2, 3]


async def test_work_of_a_crashed_worker_is_claimable_again(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():
            await store_rows(
                conn,
                [
                    Row(
                        "17841400000000001",
                        "cust",
                        "e1",
                        "message",
                        "messaging",
                        "m1",
                        datetime(2026, 11, 1, tzinfo=UTC),
                        {"seq": 0},
                    )
                ],
                "bot",
            )
    finally:
        await conn.close()
    # A worker claims the conversation and dies mid-transaction (its connection is killed).
    doomed = await asyncpg.connect(db_url)
    tr = doomed.transaction()
    await tr.start()
    from orchestrator.store.queries import q

    assert await doomed.fetchrow(q("claim_batch"), 1, 50) is not None
    doomed.terminate()
    seen: dict[int, list[int]] = {}
    pool = await create_pool(db_url, min_size=1, max_size=2)
    try:
        worker = EventWorker(
            pool, TrackingProcessor(set(), seen, []), clock=SystemClock(), metrics=Metrics()
        )

        async def processed() -> bool:
            await worker.run_once()
            return bool(seen)

        from tests.conftest import wait_for

        await wait_for(processed)
    finally:
        await pool.close()
    assert next(iter(seen.values())) == [0]


def _row(customer: str, n: int, seq: int) -> Row:
    return Row(
        "17841400000000001",
        customer,
        f"{customer}-e{n}",
        "message",
        "messaging",
        f"{customer}-m{n}",
        datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=n),
        {"seq": seq},
    )


async def test_a_busy_conversation_held_by_a_worker_does_not_starve_the_others(
    db_url: str,
) -> None:
    """600 pending events of one conversation that another worker holds must not hide the
    conversations behind them (the old claim looked only at the 500 oldest events)."""
    conn = await asyncpg.connect(db_url)
    try:
        await store_rows(conn, [_row("busy", n, n) for n in range(600)], "bot")
        await store_rows(conn, [_row("quiet", 1000, 0)], "bot")
        busy_id = await conn.fetchval("SELECT id FROM conversations WHERE customer_id = 'busy'")
    finally:
        await conn.close()
    holder = await asyncpg.connect(db_url)
    tr = holder.transaction()
    await tr.start()
    await holder.execute("SELECT 1 FROM conversations WHERE id = $1 FOR NO KEY UPDATE", busy_id)
    seen: dict[int, list[int]] = {}
    pool = await create_pool(db_url, min_size=1, max_size=2)
    try:
        worker = EventWorker(
            pool, TrackingProcessor(set(), seen, []), clock=SystemClock(), metrics=Metrics()
        )
        assert await worker.run_once() == 1  # the quiet conversation's one event
        assert busy_id not in seen
    finally:
        await tr.rollback()
        await holder.close()
        await pool.close()


class PoisonProcessor(TrackingProcessor):
    """Writes a transcript line PostgreSQL refuses (a NUL character) for event seq 1."""

    async def process(
        self,
        conn: asyncpg.Connection,
        conversation: dict[str, Any],
        event: Any,
        writes: Writes,
        ids: IdPool,
    ) -> dict[str, Any]:
        result = await super().process(conn, conversation, event, writes, ids)
        seq = event["payload"]["seq"]
        text = "bad\x00text" if seq == 1 else f"line {seq}"
        writes.transcript.append(
            TranscriptLine(
                conversation["id"], None, "in", "customer", None, text, None, event["occurred_at"]
            )
        )
        return result


async def test_an_event_the_database_refuses_fails_alone_and_the_batch_goes_on(
    db_url: str,
) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await store_rows(conn, [_row("c1", n, n) for n in range(3)], "bot")
        await store_rows(conn, [_row("c2", 10, 0)], "bot")
    finally:
        await conn.close()
    seen: dict[int, list[int]] = {}
    pool = await create_pool(db_url, min_size=1, max_size=2)
    try:
        worker = EventWorker(
            pool, PoisonProcessor(set(), seen, []), clock=SystemClock(), metrics=Metrics()
        )
        while await worker.run_once():
            pass
        statuses = {
            (r["customer_id"], r["seq"]): r["status"]
            for r in await pool.fetch(
                "SELECT c.customer_id, (e.payload->>'seq')::int AS seq, e.status FROM events e"
                " JOIN conversations c ON c.id = e.conversation_id"
            )
        }
        lines = [r["text"] for r in await pool.fetch("SELECT text FROM messages ORDER BY id")]
    finally:
        await pool.close()
    assert statuses == {
        ("c1", 0): "done",
        ("c1", 1): "failed",
        ("c1", 2): "done",
        ("c2", 0): "done",
    }
    assert lines == ["line 0", "line 2", "line 0"]
