"""Ordered processing: per conversation one at a time and in order, across worker pools."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from orchestrator.clock import SystemClock
from orchestrator.engine.worker import EventWorker
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
        self, conn: asyncpg.Connection, conversation: dict[str, Any], event: Any
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
                pool, processor, clock=SystemClock(), metrics=Metrics(), name=f"p{p}w{w}", batch=3
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

    assert await doomed.fetchrow(q("claim_conversation")) is not None
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
