"""Durable intake: every item of one webhook POST stored in one database call, deduplicated,
each item isolated so content PostgreSQL refuses never blocks its batch-mates.

One call however many items (`orchestrator_intake`, migrations/0001 and 0003): create missing
conversations, insert the events (ON CONFLICT on the dedup key does the dedup), erase unsent
content. Ids and keys longer than the unique indexes can hold are hashed (`bounded`), and a
POST whose stored form differs from its bytes also keeps the bytes (raw_deliveries).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import structlog

from orchestrator.errors import StoreUnavailable
from orchestrator.ingress.events import Event
from orchestrator.jsontext import dumps
from orchestrator.store.outage import describe, is_outage
from orchestrator.store.queries import q

log = structlog.get_logger(__name__)

# PostgreSQL's btree refuses index rows over ~2704 bytes; the unique keys (account_id,
# dedup_key) and (account_id, customer_id) hold two values each, so each is bounded well
# below half of that. Real Meta ids and mids are under 200 bytes.
MAX_KEY_BYTES = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def bounded(value: str | None) -> str | None:
    """`value`, or `sha256:<hex>` of it when it is too long for a unique index."""
    if value is None:
        return None
    raw = value.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_KEY_BYTES:
        return value
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class IntakeResult:
    stored: int
    duplicates: int
    kinds: dict[str, int]
    quarantined: int = 0  # items kept in raw_deliveries because PostgreSQL refused them
    raw_only: bool = False  # the items could not be stored; the exact bytes were


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
        try:
            occurred_at = datetime.fromtimestamp(event.timestamp_ms / 1000, UTC)
        except (OverflowError, ValueError, OSError):  # the parser bounds it; belt and braces
            occurred_at = _EPOCH
        return cls(
            account_id=bounded(event.account_id) or "",
            customer_id=bounded(event.customer_id),
            dedup_key=bounded(dedup_key) or "",
            kind=str(event.kind),
            source=event.source,
            mid=bounded(mid or None),
            occurred_at=occurred_at,
            payload=event.raw,
        )

    def changes_from(self, event: Event) -> list[str]:
        """What this row stores differently from `event` (for the intake flag)."""
        out = []
        for name, mine, theirs in (
            ("account_id", self.account_id, event.account_id),
            ("customer_id", self.customer_id, event.customer_id),
            ("mid", self.mid, getattr(event, "mid", None) or None),
        ):
            if mine != theirs:
                out.append(f"{name} over {MAX_KEY_BYTES} bytes stored hashed")
        if self.dedup_key.startswith("sha256:") and not event.dedup_key.startswith("sha256:"):
            out.append(f"dedup key over {MAX_KEY_BYTES} bytes stored hashed")
        return out


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
    conn: asyncpg.Connection, rows: Sequence[Row], received_by: str | None
) -> list[asyncpg.Record]:
    """Store our own rows (actions, reconciliations) in one call; returns the new ones
    (`event_id`, `event_kind`). The same intake function as webhooks, without flags.

    Atomic on its own; inside a caller's transaction it commits with the caller's writes.
    """
    if not rows:
        return []
    payloads = [dumps(r.payload) for r in rows]
    records = await _intake(conn, received_by, rows, payloads, [None] * len(rows), None, None)
    return [r for r in records if r["event_id"] is not None]


async def _intake(
    conn: asyncpg.Connection,
    received_by: str | None,
    rows: Sequence[Row],
    payloads: Sequence[str],
    flags: Sequence[str | None],
    raw: bytes | None,
    problem: str | None,
    items: Sequence[int] | None = None,
) -> list[asyncpg.Record]:
    """One round trip: `orchestrator_intake` (migrations 0003, 0010) with every item;
    `items` numbers them within their own POSTs when several POSTs share the call."""
    return list(
        await conn.fetch(
            q("intake_items"),
            received_by,
            [r.account_id for r in rows],
            [r.customer_id for r in rows],
            [r.dedup_key for r in rows],
            [r.kind for r in rows],
            [r.source for r in rows],
            [r.mid for r in rows],
            [r.occurred_at for r in rows],
            list(payloads),
            list(flags),
            raw,
            problem,
            None if items is None else list(items),
        )
    )


def _payload_text(payload: Mapping[str, Any]) -> str | None:
    with contextlib.suppress(TypeError):  # orjson refused: the standard library decides
        return orjson.dumps(payload).decode()
    try:
        return json.dumps(payload, ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return None


@dataclass(slots=True)
class _Waiting:
    rows: Sequence[Row]
    payloads: Sequence[str]
    future: asyncio.Future[list[asyncpg.Record]]


class GroupCommit:
    """Clean webhook POSTs of one app stored together: one `orchestrator_intake` call and
    one commit for every POST that arrived while the previous call ran.

    A commit per POST cost as much as everything else on the path to a reply. No POST
    waits for a timer: with nothing in flight a POST is stored at once, alone; under load
    the next call takes everything that queued meanwhile (at most `max_items` items), so
    batches grow with the load and latency stays one call. A POST is answered only after
    the call that stored its items committed. Flagged POSTs (problems, hashed keys, raw
    bytes to keep) are stored alone, as before; if a grouped call fails for any reason but
    the database being unavailable, each of its POSTs is stored alone, so one POST's
    content never fails another's.
    """

    def __init__(self, pool: asyncpg.Pool, *, max_items: int = 1000) -> None:
        self.pool = pool
        self.max_items = max_items
        self._queues: dict[str, list[_Waiting]] = {}
        self._draining: dict[str, asyncio.Task[None]] = {}

    async def store(
        self, app: str, rows: Sequence[Row], payloads: Sequence[str]
    ) -> list[asyncpg.Record]:
        """The records of `rows` (event_id, event_kind, item numbered from 1 within `rows`)."""
        future: asyncio.Future[list[asyncpg.Record]] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(app, []).append(_Waiting(rows, payloads, future))
        if app not in self._draining:
            self._draining[app] = asyncio.create_task(self._drain(app), name=f"intake-{app}")
        # Shielded: a client that hangs up does not cancel the call its batch-mates share.
        return await asyncio.shield(future)

    async def _drain(self, app: str) -> None:
        try:
            queue = self._queues[app]
            while queue:
                group: list[_Waiting] = []
                items = 0
                while queue and (not group or items + len(queue[0].rows) <= self.max_items):
                    waiting = queue.pop(0)
                    group.append(waiting)
                    items += len(waiting.rows)
                await self._store_group(app, group)
        finally:
            self._draining.pop(app, None)

    async def _store_group(self, app: str, group: list[_Waiting]) -> None:
        rows = [r for w in group for r in w.rows]
        payloads = [p for w in group for p in w.payloads]
        items = [i for w in group for i in range(1, len(w.rows) + 1)]
        try:
            records = await _call_group(self.pool, app, rows, payloads, items)
        except Exception as exc:
            if len(group) == 1 or is_outage(exc):
                for w in group:
                    _settle(w.future, exc=exc)
                return
            log.warning("intake_group_split", posts=len(group), reason=describe(exc))
            for w in group:
                await self._store_group(app, [w])
            return
        # Items are numbered across the group; give each POST its own, from 1.
        start = 0
        by_item: list[list[asyncpg.Record]] = [[] for _ in group]
        bounds = []
        for w in group:
            bounds.append((start, start + len(w.rows)))
            start += len(w.rows)
        for rec in records:
            item = rec["item"]
            for i, (lo, hi) in enumerate(bounds):
                if lo < item <= hi:
                    by_item[i].append(_renumbered(rec, item - lo))
                    break
        for w, recs in zip(group, by_item, strict=True):
            _settle(w.future, result=recs)


def _renumbered(rec: asyncpg.Record, item: int) -> dict[str, Any]:
    return {"event_id": rec["event_id"], "event_kind": rec["event_kind"], "item": item}


def _settle(
    future: asyncio.Future[list[asyncpg.Record]],
    *,
    result: list[Any] | None = None,
    exc: BaseException | None = None,
) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result or [])


async def store_webhook(
    pool: asyncpg.Pool,
    app: str,
    body: bytes,
    events: Sequence[Event],
    problems: Sequence[str] = (),
    *,
    group: GroupCommit | None = None,
) -> IntakeResult:
    """Store every event of one POST in one call; its exact bytes too when anything about it
    is flagged (`problems` from decoding and parsing, or keys this function had to hash).

    Raises StoreUnavailable only when the database is unavailable; content never does: an
    item PostgreSQL refuses is kept in raw_deliveries, and if the items cannot be stored for
    any other reason the exact bytes are. With `group`, a clean POST shares its call and
    commit with the POSTs that arrive at the same time (`GroupCommit`).
    """
    rows: list[Row] = []
    flags: list[str | None] = []
    payloads: list[str] = []
    notes = list(problems)
    for i, event in enumerate(events):
        row = Row.from_event(event)
        changes = row.changes_from(event)
        text = _payload_text(row.payload)
        if text is None:
            changes.append("payload not serialisable as JSON; kept in raw_deliveries")
            text = json.dumps({"unserialisable": True})
        rows.append(row)
        payloads.append(text)
        flags.append("; ".join(changes) or None)
        notes.extend(f"item {i + 1}: {c}" for c in changes)
    raw = body if notes else None
    problem = "; ".join(notes)[:4000] if notes else None
    try:
        if group is not None and raw is None and rows:
            records = await group.store(app, rows, payloads)
        else:
            records = await _call(pool, app, rows, payloads, flags, raw, problem)
    except Exception as exc:
        if is_outage(exc):
            raise StoreUnavailable(f"could not store the webhook: {describe(exc)}") from exc
        log.error("webhook_items_refused", reason=describe(exc), items=len(rows))
        why = f"items refused: {describe(exc)}"
        return await _store_raw_only(pool, app, body, "; ".join([*notes, why])[:4000])
    kinds: dict[str, int] = {}
    stored = quarantined = 0
    for rec in records:
        if rec["event_id"] is None:
            quarantined += 1
            continue
        stored += 1
        kinds[rec["event_kind"]] = kinds.get(rec["event_kind"], 0) + 1
    return IntakeResult(
        stored=stored,
        duplicates=len(rows) - stored - quarantined,
        kinds=kinds,
        quarantined=quarantined,
    )


async def store_raw(pool: asyncpg.Pool, app: str, body: bytes, problem: str) -> IntakeResult:
    """Keep a POST whose bytes are not JSON at all: exact bytes, flagged, nothing parsed."""
    return await _store_raw_only(pool, app, body, problem)


async def _call(
    pool: asyncpg.Pool,
    app: str,
    rows: Sequence[Row],
    payloads: Sequence[str],
    flags: Sequence[str | None],
    raw: bytes | None,
    problem: str | None,
) -> list[asyncpg.Record]:
    return await _with_deadlock_retry(
        pool, lambda conn: _intake(conn, app, rows, payloads, flags, raw, problem)
    )


async def _call_group(
    pool: asyncpg.Pool,
    app: str,
    rows: Sequence[Row],
    payloads: Sequence[str],
    items: Sequence[int],
) -> list[asyncpg.Record]:
    return await _with_deadlock_retry(
        pool, lambda conn: _intake(conn, app, rows, payloads, [None] * len(rows), None, None, items)
    )


async def _with_deadlock_retry(
    pool: asyncpg.Pool, call: Callable[[asyncpg.Connection], Awaitable[list[asyncpg.Record]]]
) -> list[asyncpg.Record]:
    for attempt in (1, 2, 3):
        try:
            async with pool.acquire() as conn:
                return await call(conn)
        except asyncpg.DeadlockDetectedError:
            # Two POSTs with the same events in different orders (redelivery, batches) can
            # cross on the unique index; PostgreSQL aborts one, which is safe to repeat at
            # once. Items keep their arrival order, which processing uses for events of the
            # same millisecond.
            if attempt == 3:
                raise
            await asyncio.sleep(0)
    raise AssertionError("unreachable")


async def _store_raw_only(pool: asyncpg.Pool, app: str, body: bytes, problem: str) -> IntakeResult:
    try:
        async with pool.acquire() as conn:
            await conn.fetchval(q("intake_raw_only"), app, body, problem)
    except Exception as exc:
        raise StoreUnavailable(f"could not store the webhook: {describe(exc)}") from exc
    return IntakeResult(stored=0, duplicates=0, kinds={}, raw_only=True)
