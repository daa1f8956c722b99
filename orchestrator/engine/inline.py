"""In-process sub-apps run inline, inside the worker's claim of the conversation.

A built-in bot is Python code in this process: calling it from the outbox and feeding its
actions back through the queue cost a second transaction, two more outbox rows and a round
trip per reply. Run inline, its actions are decided in the same step as the event that
prompted them, in order, and an automated reply costs one decision and one send. The call is
guarded by a timeout; a failure is recorded on the delivery row (a dead letter with the
reason) and the conversation goes on.

Only handlers that declare `inline = True` run here (subapps.SubApp): the worker calls them
one after the other inside one transaction for many conversations, so a handler that waits
on the network (an LLM, a remote API) would make every conversation of the batch wait for
each of its answers. Those, and HTTP vendors, are delivered through the outbox in the app's
own lane, concurrently across conversations. An inline call slower than `SLOW_S` is logged
(`inline_handler_slow`) with that advice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from orchestrator.engine.subapps import Delivery, SubApp, conversation_summary

log = structlog.get_logger(__name__)

INLINE_TIMEOUT_S = 5.0
SLOW_S = 0.25  # an inline call this slow holds back its whole batch: worth a warning
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
    started = time.monotonic()
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
    finally:
        elapsed = time.monotonic() - started
        if elapsed > SLOW_S:
            log.warning(
                "inline_handler_slow",
                app=app,
                delivery_id=delivery_id,
                elapsed_ms=round(elapsed * 1000),
                advice="every conversation in this worker's batch waited for it; a handler "
                "that waits on the network must not declare `inline = True` (its deliveries "
                "then go through the outbox, concurrently)",
            )
