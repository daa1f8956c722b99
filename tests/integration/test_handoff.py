"""The hand-off (migrations/0010_handoff.sql) and group commit (store/intake.py GroupCommit)
on real PostgreSQL: rows go from the worker's flush and from a completion straight to the
dispatcher, with the same one-in-flight-per-lane rule as the claim query; POSTs that arrive
together share one intake call and each gets its own answer."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from orchestrator.engine.outbox_rows import META_LANE, OutboxRow, delivery_lane
from orchestrator.engine.writes import Claim, Writes
from orchestrator.store import intake
from orchestrator.store.database import create_pool
from orchestrator.store.intake import GroupCommit, Row
from orchestrator.store.queries import q
from tests.conftest import ACCOUNT_ID

NOW = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(db_url, min_size=1, max_size=4)
    yield p
    await p.close()


async def conversation(pool: asyncpg.Pool, customer: str = "5550001") -> int:
    return int(
        await pool.fetchval(
            "INSERT INTO conversations (account_id, customer_id) VALUES ($1, $2) RETURNING id",
            ACCOUNT_ID,
            customer,
        )
    )


def row(cid: int, text: str, lane: str = META_LANE) -> OutboxRow:
    kind = "send_message" if lane == META_LANE else "deliver"
    return OutboxRow(cid, ACCOUNT_ID, None, kind, "bot", lane, {"message": {"text": text}}, NOW)


def claim(limit: int = 10, paused: list[str] | None = None) -> Claim:
    return Claim(lambda: NOW, limit, paused or [], 15.0)


async def flush(pool: asyncpg.Pool, rows: list[OutboxRow], c: Claim | None) -> list[Any]:
    writes = Writes(claim=c)
    writes.outbox.extend(rows)
    async with pool.acquire() as conn, conn.transaction():
        await writes.flush(conn)
    return writes.claimed


async def lane_statuses(pool: asyncpg.Pool, cid: int) -> list[tuple[str, str]]:
    return [
        (r["payload"]["message"]["text"], r["status"])
        for r in await pool.fetch(
            "SELECT payload, status FROM outbox WHERE conversation_id = $1 ORDER BY id", cid
        )
    ]


async def complete(pool: asyncpg.Pool, claimed: list[Any], **kw: Any) -> list[Any]:
    empty: list[Any] = []
    rows = await pool.fetch(
        q("complete_outbox"),
        [r["id"] for r in claimed],
        [r["lease_token"] for r in claimed],
        [json.dumps({"message_id": f"m{r['id']}"}) for r in claimed],
        *([empty] * 7),
        NOW,
        kw.get("now", NOW),
        kw.get("limit", 10),
        kw.get("paused", []),
        15.0,
    )
    return [r for r in rows if not r["done"]]


async def test_a_flush_claims_the_head_of_each_free_lane_it_writes(pool: asyncpg.Pool) -> None:
    cid = await conversation(pool)
    claimed = await flush(
        pool, [row(cid, "eins"), row(cid, "zwei"), row(cid, "copy", delivery_lane("bot"))], claim()
    )
    # One head per lane, with a lease: the meta lane's first row and the delivery lane's.
    assert sorted(r["payload"]["message"]["text"] for r in claimed) == ["copy", "eins"]
    assert all(r["lease_token"] is not None and r["attempts"] == 1 for r in claimed)
    assert await lane_statuses(pool, cid) == [
        ("eins", "doing"),
        ("zwei", "pending"),
        ("copy", "doing"),
    ]


async def test_a_busy_lane_is_not_claimed_and_its_completion_chains_the_next(
    pool: asyncpg.Pool,
) -> None:
    cid = await conversation(pool)
    [first] = await flush(pool, [row(cid, "eins")], claim())
    # Written while "eins" is in flight: the lane is busy, nothing is claimed.
    assert await flush(pool, [row(cid, "zwei"), row(cid, "drei")], claim()) == []
    chained = await complete(pool, [first])
    assert [r["payload"]["message"]["text"] for r in chained] == ["zwei"]
    assert await lane_statuses(pool, cid) == [
        ("eins", "done"),
        ("zwei", "doing"),
        ("drei", "pending"),
    ]
    [last] = await complete(pool, chained)
    assert last["payload"]["message"]["text"] == "drei"
    assert await complete(pool, [last]) == []


async def test_no_hand_off_for_a_paused_account_a_full_dispatcher_or_a_row_not_due(
    pool: asyncpg.Pool,
) -> None:
    cid = await conversation(pool)
    assert await flush(pool, [row(cid, "eins")], claim(paused=[ACCOUNT_ID])) == []
    assert await flush(pool, [row(cid, "zwei")], claim(limit=0)) == []
    assert await flush(pool, [row(cid, "drei")], None) == []
    assert [s for _t, s in await lane_statuses(pool, cid)] == ["pending"] * 3
    # The claim query still finds them (the path for everything not handed over).
    rows = await pool.fetch(q("claim_outbox"), NOW, 10, [], 15.0)
    assert [r["payload"]["message"]["text"] for r in rows] == ["eins"]
    # A completion does not chain a row that is not due yet (a retry's backoff).
    await pool.execute(
        "UPDATE outbox SET available_at = $2 WHERE conversation_id = $1 AND status = 'pending'",
        cid,
        NOW + timedelta(seconds=30),
    )
    assert await complete(pool, rows) == []


async def test_a_completion_with_a_lost_lease_neither_completes_nor_chains(
    pool: asyncpg.Pool,
) -> None:
    cid = await conversation(pool)
    [first] = await flush(pool, [row(cid, "eins")], claim())
    await flush(pool, [row(cid, "zwei")], None)
    stale = dict(first) | {"lease_token": uuid.uuid4()}
    assert await complete(pool, [stale]) == []
    assert await lane_statuses(pool, cid) == [("eins", "doing"), ("zwei", "pending")]


async def test_the_hand_off_never_puts_two_rows_of_a_lane_in_flight(pool: asyncpg.Pool) -> None:
    """Flushes and completions racing on one lane from several connections: at every
    moment at most one row of the lane is 'doing' (the unique index would refuse a second),
    and every row is sent exactly once, in order."""
    cid = await conversation(pool)
    sent: list[str] = []
    inflight: list[Any] = []

    async def writer(n: int) -> None:
        for i in range(n):
            inflight.extend(await flush(pool, [row(cid, f"{i:03d}")], claim()))
            await asyncio.sleep(0)

    async def sender() -> None:
        for _ in range(400):
            if inflight:
                r = inflight.pop(0)
                sent.append(r["payload"]["message"]["text"])
                inflight.extend(await complete(pool, [r]))
            else:
                inflight.extend(await pool.fetch(q("claim_outbox"), NOW, 10, [], 15.0))
                await asyncio.sleep(0.001)
            if len(sent) == 50:
                return

    await asyncio.gather(writer(50), sender())
    assert sent == [f"{i:03d}" for i in range(50)]


# -- group commit --------------------------------------------------------------------------


def message_row(customer: str, mid: str, text: str = "hallo") -> tuple[Row, str]:
    payload = {"sender": {"id": customer}, "message": {"mid": mid, "text": text}}
    r = Row(ACCOUNT_ID, customer, f"message:{mid}", "message", "messaging", mid, NOW, payload)
    return r, json.dumps(payload)


async def test_posts_arriving_together_share_one_call_and_each_gets_its_own_answer(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = intake._call_group

    async def counting(*args: Any) -> Any:
        calls.append(len(args[2]))
        return await real(*args)

    monkeypatch.setattr(intake, "_call_group", counting)
    group = GroupCommit(pool)
    posts = [[message_row(f"c{i}", f"m{i}.{j}") for j in range(i % 3 + 1)] for i in range(12)]
    # A redelivery of post 0's event inside the same group: stored once, answered as such.
    posts.append([message_row("c0", "m0.0")])
    answers = await asyncio.gather(
        *(group.store("bot", [r for r, _ in p], [t for _, t in p]) for p in posts)
    )
    # Every item stored once, in fewer calls than POSTs (here: all arrived in one tick).
    assert sum(calls) == sum(len(p) for p in posts) and len(calls) < len(posts)
    for post, answer in zip(posts[:-1], answers[:-1], strict=True):
        assert [a["item"] for a in answer] == list(range(1, len(post) + 1))
        assert all(a["event_id"] is not None for a in answer)
    assert answers[-1] == []  # the duplicate
    assert await pool.fetchval("SELECT count(*) FROM events") == sum(len(p) for p in posts[:-1])


async def test_content_refused_in_a_group_is_kept_apart_and_the_others_are_stored(
    pool: asyncpg.Pool,
) -> None:
    group = GroupCommit(pool)
    good_a = [message_row("c1", "a1")]
    good_b = [message_row("c3", "b1"), message_row("c3", "b2")]
    bad_row, _ = message_row("c2", "x1")
    bad = [(bad_row, '{"text": "\\u0000"}')]  # jsonb refuses NUL: quarantined
    answers = await asyncio.gather(
        group.store("bot", [r for r, _ in good_a], [t for _, t in good_a]),
        group.store("bot", [r for r, _ in bad], [t for _, t in bad]),
        group.store("bot", [r for r, _ in good_b], [t for _, t in good_b]),
    )
    assert [(a["item"], a["event_id"] is not None) for a in answers[0]] == [(1, True)]
    assert [(a["item"], a["event_kind"]) for a in answers[1]] == [(1, "quarantined")]
    assert [a["item"] for a in answers[2]] == [1, 2]
    assert await pool.fetchval("SELECT count(*) FROM raw_deliveries WHERE item = 1") == 1
