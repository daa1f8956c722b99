"""Retention: processed events and done outbox rows older than `service.retention` are
deleted; dead letters, the events they point at, pending work and recent rows stay."""

from __future__ import annotations

import asyncpg

from orchestrator.store.queries import q

DAY_S = 86400.0


async def test_prune_deletes_old_processed_rows_and_keeps_what_matters(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        cid = await conn.fetchval(
            "INSERT INTO conversations (account_id, customer_id) VALUES ('a', 'c') RETURNING id"
        )

        async def event(key: str, status: str, age_days: float) -> int:
            return int(
                await conn.fetchval(
                    "INSERT INTO events (conversation_id, account_id, dedup_key, kind, source,"
                    " occurred_at, payload, status, processed_at)"
                    " VALUES ($1, 'a', $2, 'message', 'messaging', now(), '{}', $3,"
                    " CASE WHEN $3 <> 'pending' THEN now() - make_interval(secs => $4) END)"
                    " RETURNING id",
                    cid,
                    key,
                    status,
                    age_days * DAY_S,
                )
            )

        async def outbox(event_id: int, status: str, age_days: float) -> int:
            return int(
                await conn.fetchval(
                    "INSERT INTO outbox (conversation_id, event_id, kind, app, payload, status,"
                    " done_at) VALUES ($1, $2, 'send_message', 'bot', '{}', $3,"
                    " CASE WHEN $3 IN ('done', 'dead') THEN now() - make_interval(secs => $4)"
                    " END) RETURNING id",
                    cid,
                    event_id,
                    status,
                    age_days * DAY_S,
                )
            )

        old_done = await event("old-done", "done", 5)
        old_with_dead = await event("old-dead", "done", 5)
        recent = await event("recent", "done", 1)
        pending = await event("pending", "pending", 0)
        old_row = await outbox(old_done, "done", 5)
        dead_row = await outbox(old_with_dead, "dead", 5)
        recent_row = await outbox(recent, "done", 1)

        pruned = await conn.fetchrow(q("prune"), 3 * DAY_S, 1000)
        assert (pruned["outbox_rows"], pruned["event_rows"]) == (1, 1)
        events = {r["id"] for r in await conn.fetch("SELECT id FROM events")}
        rows = {r["id"] for r in await conn.fetch("SELECT id FROM outbox")}
    finally:
        await conn.close()
    assert events == {old_with_dead, recent, pending}
    assert rows == {dead_row, recent_row}
    assert old_row not in rows
