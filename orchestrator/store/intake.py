"""Durable intake: every item of one webhook POST committed in one transaction, deduplicated.

One database call however many items (`orchestrator_intake`, migrations/0001): create missing
conversations, insert the events (ON CONFLICT on the dedup key does the dedup), erase unsent
content, NOTIFY. The NOTIFY wakes workers at commit; it is only a hint (workers poll too).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from orchestrator.errors import StoreUnavailable
from orchestrator.ingress.events import Event
from orchestrator.store.queries import q


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
        dedup_key = event.dedup_key
        if event.kind == "postback" and event.source == "standby":
            # Standby copies of postbacks carry no payload (docs/platform.md 2.9): stored apart, so
            # the owner's complete copy is never dropped as their duplicate. Processing lets
            # the owner's copy decide (see processing.py).
            dedup_key += ":standby"
        return cls(
            account_id=event.account_id,
            customer_id=event.customer_id,
            dedup_key=dedup_key,
            kind=str(event.kind),
            source=event.source,
            mid=mid or None,
            occurred_at=datetime.fromtimestamp(event.timestamp_ms / 1000, UTC),
            payload=event.raw,
        )


def action_row(
    account_id: str,
    customer_id: str,
    dedup_key: str,
    app: str,
    action: Mapping[str, Any],
    at: datetime,
    **extra: Any,
) -> Row:
    """A sub-app's action as an event of its conversation: actions from in-process handlers,
    vendors (REST API) and QA scenarios all enter the same ordered queue as webhooks."""
    payload = {"app": app, "action": dict(action), **extra}
    return Row(account_id, customer_id, dedup_key, "action", "action", None, at, payload)


async def store_rows(
    conn: asyncpg.Connection,
    rows: Sequence[Row],
    received_by: str | None,
    raw_problem: tuple[str, str] | None = None,
) -> list[asyncpg.Record]:
    """Store rows (and a flagged raw body) in one call; returns the rows that were new.

    Atomic on its own; inside a caller's transaction it commits with the caller's writes.
    """
    if not rows and raw_problem is None:
        return []
    return list(
        await conn.fetch(
            q("intake"),
            received_by,
            [r.account_id for r in rows],
            [r.customer_id for r in rows],
            [r.dedup_key for r in rows],
            [r.kind for r in rows],
            [r.source for r in rows],
            [r.mid for r in rows],
            [r.occurred_at for r in rows],
            [json.dumps(r.payload, default=str) for r in rows],
            raw_problem[0] if raw_problem else None,
            raw_problem[1] if raw_problem else None,
        )
    )


async def store_webhook(
    pool: asyncpg.Pool, app: str, events: Sequence[Event], raw_problem: tuple[str, str] | None
) -> IntakeResult:
    """Commit every event of one POST (and the raw body when flagged) or raise StoreUnavailable."""
    rows = [Row.from_event(e) for e in events]
    try:
        for attempt in (1, 2, 3):
            try:
                async with pool.acquire() as conn:
                    inserted = await store_rows(conn, rows, app, raw_problem)
                break
            except asyncpg.DeadlockDetectedError:
                # Two POSTs with the same events in different orders (redelivery, batches)
                # can cross on the unique index; PostgreSQL aborts one, which is safe to
                # repeat at once. Items keep their arrival order, which processing uses for
                # events of the same millisecond.
                if attempt == 3:
                    raise
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(f"could not store the webhook: {type(exc).__name__}: {exc}") from exc
    kinds: dict[str, int] = {}
    for rec in inserted:
        kinds[rec["event_kind"]] = kinds.get(rec["event_kind"], 0) + 1
    return IntakeResult(stored=len(inserted), duplicates=len(rows) - len(inserted), kinds=kinds)
