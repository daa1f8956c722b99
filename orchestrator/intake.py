"""Durable intake: every item of one webhook POST committed in one transaction, deduplicated.

Three statements, one transaction, however many items: create missing conversations, insert
the events (ON CONFLICT on the dedup key does the dedup), erase unsent content. NOTIFY wakes
workers at commit; it is only a hint (workers poll too).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from orchestrator.errors import StoreUnavailable
from orchestrator.events import Event
from orchestrator.queries import q

_ERASE_KINDS = {"message", "message_echo", "message_deleted", "message_edit"}


@dataclass(frozen=True, slots=True)
class IntakeResult:
    stored: int
    duplicates: int
    kinds: dict[str, int]


@dataclass(frozen=True, slots=True)
class Row:
    """One event as the events table stores it; webhook events and internal ones alike."""

    account_id: str
    customer_id: str | None
    dedup_key: str
    kind: str
    source: str
    mid: str | None
    occurred_at: datetime
    payload: dict[str, Any]

    @classmethod
    def from_event(cls, event: Event) -> Row:
        mid = getattr(event, "mid", None)
        return cls(
            account_id=event.account_id,
            customer_id=event.customer_id,
            dedup_key=event.dedup_key,
            kind=str(event.kind),
            source=event.source,
            mid=mid or None,
            occurred_at=datetime.fromtimestamp(event.timestamp_ms / 1000, UTC),
            payload=event.raw,
        )


async def store_rows(
    conn: asyncpg.Connection, rows: Sequence[Row], received_by: str | None
) -> list[asyncpg.Record]:
    """Insert rows inside the caller's transaction; returns the rows that were new."""
    if not rows:
        return []
    await conn.execute(
        q("ensure_conversations"),
        [r.account_id for r in rows],
        [r.customer_id for r in rows],
    )
    inserted = await conn.fetch(
        q("insert_events"),
        [r.account_id for r in rows],
        [r.customer_id for r in rows],
        [r.dedup_key for r in rows],
        [r.kind for r in rows],
        [r.source for r in rows],
        [r.mid for r in rows],
        [r.occurred_at for r in rows],
        [json.dumps(r.payload, default=str) for r in rows],
        received_by,
    )
    # Covers both orders: a deletion erasing its message, and a message whose deletion
    # arrived first (Meta may deliver out of order).
    erasable = [r.mid for r in rows if r.mid and r.kind in _ERASE_KINDS]
    if erasable:
        await conn.execute(q("erase_unsent"), erasable)
    if inserted:
        await conn.execute(q("notify_events"))
    return inserted


async def store_webhook(
    pool: asyncpg.Pool, app: str, events: Sequence[Event], raw_problem: tuple[str, str] | None
) -> IntakeResult:
    """Commit every event of one POST (and the raw body when flagged) or raise StoreUnavailable."""
    rows = [Row.from_event(e) for e in events]
    try:
        async with pool.acquire() as conn, conn.transaction():
            if raw_problem is not None:
                await conn.execute(q("insert_raw_delivery"), app, raw_problem[0], raw_problem[1])
            inserted = await store_rows(conn, rows, app)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(f"could not store the webhook: {type(exc).__name__}: {exc}") from exc
    kinds: dict[str, int] = {}
    for rec in inserted:
        kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
    return IntakeResult(stored=len(inserted), duplicates=len(rows) - len(inserted), kinds=kinds)
