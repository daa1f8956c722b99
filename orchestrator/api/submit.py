"""The one way an action from outside the worker enters the ordered path.

The REST API (vendors) and the agent inbox both call `submit_action`: the action is validated,
stored as an event of its conversation (so it is decided in order with webhooks, timers and
every other action), the workers are woken, and the call waits briefly for the worker's
decision. The answer is what actually happened — never a guess made beside the queue.
When the engine changes how actions are queued or decided, this function is what changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from orchestrator.clock import Clock
from orchestrator.engine.wakeup import Waker
from orchestrator.store.intake import action_row, store_rows
from orchestrator.store.queries import q
from state_machines import action_from_json

WAIT_FOR_DECISION_S = 10.0

Status = Literal["accepted", "refused", "queued", "failed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the worker decided about one submitted action."""

    event_id: int
    status: Status
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def refusal(self) -> Mapping[str, Any] | None:
        refusal = self.result.get("refusal")
        return refusal if isinstance(refusal, Mapping) else None


async def submit_action(
    pool: asyncpg.Pool,
    waker: Waker,
    clock: Clock,
    *,
    app: str,
    account_id: str,
    customer_id: str,
    action: Mapping[str, Any],
    request_id: str,
    origin: str,
    wait_s: float = WAIT_FOR_DECISION_S,
    **extra: Any,
) -> Outcome:
    """Store `action` of `app` for the conversation (account, customer) and wait for the
    decision. `origin:app:request_id` is the dedup key, so a retried submission with the same
    request id is the same event (idempotent). Raises `ActionError` for a malformed action;
    `extra` is kept beside the action in the event (e.g. which agent acted)."""
    parsed = action_from_json(dict(action))
    event = action_row(
        account_id,
        customer_id,
        f"action:{origin}:{app}:{request_id}",
        app,
        parsed.to_json(),
        clock.now(),
        request_id=request_id,
        **extra,
    )
    async with pool.acquire() as conn, conn.transaction():
        await store_rows(conn, [event], app)
        event_id = await conn.fetchval(q("event_by_dedup"), event.account_id, event.dedup_key)
    waker.poke()
    outcome = await _await_decision(pool, event_id, wait_s)
    if outcome is None:
        return Outcome(event_id, "queued")
    result = dict(outcome["result"] or {})
    if outcome["status"] == "failed":
        return Outcome(event_id, "failed", result, outcome["error"])
    return Outcome(event_id, "refused" if result.get("refusal") else "accepted", result)


async def _await_decision(pool: asyncpg.Pool, event_id: int, wait_s: float) -> Any:
    """Wait until the worker has decided on `event_id`; None on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    delay = 0.005
    while True:
        outcome = await pool.fetchrow(q("event_outcome"), event_id)
        if outcome is not None and outcome["status"] != "pending":
            return outcome
        if loop.time() >= deadline:
            return None
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
