"""The `UnknownEvent` that keeps an item the parser did not understand, with a best-effort
account, customer and time and a key that is stable across redeliveries."""

from __future__ import annotations

import hashlib
from typing import Any

from orchestrator.ingress.events import EventKind, EventSource, UnknownEvent
from orchestrator.ingress.parser.context import ItemContext
from orchestrator.ingress.parser.values import as_ms, canonical, object_id

__all__ = ["unknown_event"]


def unknown_event(ctx: ItemContext, raw: dict[str, Any], reason: str) -> UnknownEvent:
    """Keep what was not understood and note `reason` at the item's location.

    The key hashes the item with its location kind; `standby` counts as `messaging` so that a
    redelivery through another app's standby gets the same key.
    """
    ctx.note(reason)
    if ctx.source == EventSource.CHANGES:
        value = raw.get("value")
        value = value if isinstance(value, dict) else {}
        account = ctx.entry_id or ""
        customer = object_id(value.get("from"))
        ms = as_ms(value.get("timestamp"))
        location = "changes"
    else:
        sender, recipient = object_id(raw.get("sender")), object_id(raw.get("recipient"))
        account = ctx.entry_id or recipient or sender or ""
        customer = next((i for i in (sender, recipient) if i and i != account), None)
        ms = as_ms(raw.get("timestamp"))
        location = "messaging"
    if ms is None:
        ms = ctx.entry_ms if ctx.entry_ms is not None else 0
    digest = hashlib.sha256(canonical([location, raw]).encode("ascii")).hexdigest()
    return UnknownEvent(
        kind=EventKind.UNKNOWN,
        object=ctx.obj,
        source=ctx.source,
        account_id=account,
        customer_id=customer,
        timestamp_ms=ms,
        dedup_key=f"unknown:{digest}",
        raw=raw,
        reason=reason,
    )
