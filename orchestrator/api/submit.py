"""The one way an action from outside the worker enters the ordered path.

The REST API (vendors) and the agent inbox both call `submit_action`: the action is validated,
stored as an event of its conversation (so it is decided in order with webhooks, timers and
every other action), the workers are woken, and the call waits briefly for the worker's
decision. The answer is what actually happened — never a guess made beside the queue.
When the engine changes how actions are queued or decided, this function is what changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from orchestrator.clock import Clock
from orchestrator.engine.wakeup import Waker
from orchestrator.graph.text import MAX_TEXT_BYTES, split_text
from orchestrator.store.intake import action_row, store_rows
from orchestrator.store.queries import q
from state_machines import ActionError, action_from_json

WAIT_FOR_DECISION_S = 10.0


class ReplyTooLong(ValueError):
    """A reply whose text would need more Send API messages than allowed."""

    def __init__(self, parts: int, max_parts: int) -> None:
        super().__init__(
            f"the text needs {parts} messages of at most {MAX_TEXT_BYTES} bytes; at most "
            f"{max_parts} are sent for one reply (service.max_reply_parts)"
        )
        self.parts, self.max_parts = parts, max_parts


class KeyReused(ValueError):
    """The request id (Idempotency-Key) was used before on this conversation, for another
    body."""

    def __init__(self, event_id: int) -> None:
        super().__init__(
            "this Idempotency-Key was already used on this conversation with another body; "
            "use a new key for a new request"
        )
        self.event_id = event_id


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
    conversation_id: int | None = None,
    max_reply_parts: int | None = None,
    wait_s: float = WAIT_FOR_DECISION_S,
    **extra: Any,
) -> Outcome:
    """Store `action` of `app` for the conversation (account, customer) and wait for the
    decision. The dedup key is `origin:app[:conversation]:request_id`: a retried submission
    with the same request id is the same event (idempotent), scoped to the app and the
    conversation; the same id with another body raises `KeyReused`. Raises `ActionError`
    for a malformed action and `ReplyTooLong` past `max_reply_parts`; `extra` is kept beside
    the action in the event (e.g. which agent acted)."""
    normalised = action_from_json(dict(action)).to_json()
    if max_reply_parts is not None and normalised.get("type") == "reply":
        parts = _reply_parts(normalised)
        if parts > max_reply_parts:
            raise ReplyTooLong(parts, max_reply_parts)
    scope = f"{app}:{conversation_id}" if conversation_id is not None else app
    request_hash = hashlib.sha256(
        json.dumps(normalised, sort_keys=True, default=str).encode()
    ).hexdigest()
    event = action_row(
        account_id,
        customer_id,
        f"action:{origin}:{scope}:{request_id}",
        app,
        normalised,
        clock.now(),
        request_id=request_id,
        request_hash=request_hash,
        **extra,
    )
    async with pool.acquire() as conn, conn.transaction():
        inserted = await store_rows(conn, [event], app)
        if inserted:
            event_id = inserted[0]["event_id"]
        else:
            earlier = await conn.fetchrow(q("api_action_by_key"), event.account_id, event.dedup_key)
            if earlier is None:  # refused by the store (cannot happen for validated input)
                raise ActionError("action", "the action could not be stored")
            if earlier["request_hash"] not in (None, request_hash):
                raise KeyReused(earlier["id"])
            event_id = earlier["id"]
    waker.poke()
    outcome = await _await_decision(pool, event_id, wait_s)
    if outcome is None:
        return Outcome(event_id, "queued")
    result = dict(outcome["result"] or {})
    if outcome["status"] == "failed":
        return Outcome(event_id, "failed", result, outcome["error"])
    return Outcome(event_id, "refused" if result.get("refusal") else "accepted", result)


def _reply_parts(action: Mapping[str, Any]) -> int:
    message = action.get("message")
    text = message.get("text") if isinstance(message, Mapping) else None
    return len(split_text(text, MAX_TEXT_BYTES)) if isinstance(text, str) and text else 1


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
