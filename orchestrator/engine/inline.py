"""In-process sub-apps run inline, inside the worker's claim of the conversation.

A built-in bot is Python code in this process: calling it from the outbox and feeding its
actions back through the queue cost a second transaction, two more outbox rows and a round
trip per reply. Run inline, its actions are decided in the same step as the event that
prompted them, in order, and an automated reply costs one decision and one send. The call is
guarded by a timeout; a failure is recorded on the delivery row (a dead letter with the
reason) and the conversation goes on. HTTP vendors are never called inline: they are remote
and slow, so their deliveries stay outbox rows in the app's own lane.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from orchestrator.engine.subapps import Delivery, SubApp, conversation_summary

log = structlog.get_logger(__name__)

INLINE_TIMEOUT_S = 5.0
# Inline deliveries may cause deliveries (a bot passing to another in-process bot): past this
# depth they are queued as outbox rows instead, so no chain of apps can recurse forever.
MAX_DEPTH = 3


@dataclass(frozen=True, slots=True)
class InlineOutcome:
    actions: list[dict[str, Any]]
    error: str | None = None


def as_json(action: Any) -> dict[str, Any]:
    if isinstance(action, Mapping):
        return dict(action)
    to_json = getattr(action, "to_json", None)
    if callable(to_json):
        return dict(to_json())
    raise TypeError(f"an action must be a JSON object, got {type(action).__name__}")


async def call_inline(
    handler: SubApp,
    *,
    delivery_id: int,
    app: str,
    conversation: Mapping[str, Any],
    event: Mapping[str, Any],
    standby: bool,
    channel: str | None = None,
    timeout_s: float = INLINE_TIMEOUT_S,
) -> InlineOutcome:
    delivery = Delivery(
        id=delivery_id,
        app=app,
        conversation=conversation_summary(conversation, channel),
        event=event,
        standby=standby,
    )
    try:
        async with asyncio.timeout(timeout_s):
            returned: Sequence[Any] = await handler.handle(delivery)
        return InlineOutcome([as_json(a) for a in returned or ()])
    except TimeoutError:
        log.error("subapp_timeout", app=app, delivery_id=delivery_id, timeout_s=timeout_s)
        return InlineOutcome([], f"handler timed out after {timeout_s:g}s")
    except Exception as exc:
        log.exception("subapp_failed", app=app, delivery_id=delivery_id)
        return InlineOutcome([], f"handler failed: {type(exc).__name__}: {exc}")
