"""`changes[]` items → events: comments, live comments and mentions (also the IG Login layout
with field/value directly under the entry, which arrives here as one change)."""

from __future__ import annotations

from typing import Any

from orchestrator.ingress.events import CommentEvent, Event, EventKind, MentionEvent
from orchestrator.ingress.parser.context import _Malformed, _Where
from orchestrator.ingress.parser.values import _json_type, _keys, _ms


def _change(w: _Where, item: dict[str, Any]) -> list[Event]:
    name = item.get("field")
    if not isinstance(name, str) or not name:
        raise _Malformed(f"change has no field name (keys: {_keys(item)})")
    if name not in ("comments", "live_comments", "mentions"):
        raise _Malformed(f"changes field {name!r} is not handled")
    value = item.get("value")
    if not isinstance(value, dict):
        raise _Malformed(f"{name} change has no value object (got {_json_type(value)})")
    if not w.entry_id:
        raise _Malformed(f"{name} change without entry.id: no account")
    ms = _ms(value.get("timestamp"))
    if ms is None:
        ms = w.entry_ms if w.entry_ms is not None else 0
        if w.entry_ms is None:
            w.note("no timestamp and no entry.time; using 0")
    sender = w.obj_at(value, "from", ".value") or {}
    media = w.obj_at(value, "media", ".value") or {}
    media_id = w.id(media, "id", ".value.media") or w.id(value, "media_id", ".value")
    base: dict[str, Any] = {
        "object": w.obj,
        "source": w.source,
        "account_id": w.entry_id,
        "customer_id": w.id(sender, "id", ".value.from"),
        "timestamp_ms": ms,
        "raw": item,
    }
    comment_id = w.id(value, "comment_id", ".value") or w.id(value, "id", ".value")
    if name == "mentions":
        if media_id is None:
            raise _Malformed("mentions change has no media_id")
        return [
            MentionEvent(
                kind=EventKind.MENTION,
                dedup_key=f"mention:{media_id}:{comment_id or ''}",
                comment_id=comment_id,
                media_id=media_id,
                **base,
            )
        ]
    if comment_id is None:
        raise _Malformed(f"{name} change has neither comment_id nor id")
    return [
        CommentEvent(
            kind=EventKind.COMMENT if name == "comments" else EventKind.LIVE_COMMENT,
            dedup_key=f"comment:{comment_id}",
            comment_id=comment_id,
            parent_id=w.id(value, "parent_id", ".value"),
            text=w.text(value, "text", ".value"),
            username=w.text(sender, "username", ".value.from"),
            media_id=media_id,
            media_product_type=w.text(media, "media_product_type", ".value.media"),
            ad_id=w.id(media, "ad_id", ".value.media"),
            **base,
        )
    ]
