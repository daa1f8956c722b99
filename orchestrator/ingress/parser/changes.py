"""`changes[]` items → events: comments, live comments, mentions and story insights (also the
IG Login layout with field/value directly under the entry, which arrives here as one change).

One public function, `parse_change`; builds on `context`, `values` and `unknown`.
"""

from __future__ import annotations

from typing import Any

from orchestrator.ingress.events import (
    CommentEvent,
    Event,
    EventKind,
    MentionEvent,
    StoryInsightsEvent,
)
from orchestrator.ingress.parser.context import ItemContext, Malformed
from orchestrator.ingress.parser.unknown import unknown_event
from orchestrator.ingress.parser.values import as_int, as_ms, json_type, key_list, short

__all__ = ["parse_change"]


def parse_change(ctx: ItemContext, item: dict[str, Any]) -> list[Event]:
    """One `changes[]` item → its event; what cannot be built becomes an UnknownEvent."""
    try:
        return [_change(ctx, item)]
    except Malformed as exc:
        return [unknown_event(ctx, item, exc.reason)]


def _change(ctx: ItemContext, item: dict[str, Any]) -> Event:
    name = item.get("field")
    if not isinstance(name, str) or not name:
        raise Malformed(f"change has no field name (keys: {key_list(item)})")
    if name not in ("comments", "live_comments", "mentions", "story_insights"):
        raise Malformed(f"changes field {name!r} is not handled")
    value = item.get("value")
    if not isinstance(value, dict):
        raise Malformed(f"{name} change has no value object (got {json_type(value)})")
    if not ctx.entry_id:
        raise Malformed(f"{name} change without entry.id: no account")
    ms = as_ms(value.get("timestamp"))
    if ms is None:
        ms = ctx.entry_ms if ctx.entry_ms is not None else 0
        if ctx.entry_ms is None:
            ctx.note("no timestamp and no entry.time; using 0")
    sender = ctx.obj_at(value, "from", ".value") or {}
    media = ctx.obj_at(value, "media", ".value") or {}
    media_id = ctx.id(media, "id", ".value.media") or ctx.id(value, "media_id", ".value")
    base: dict[str, Any] = {
        "object": ctx.obj,
        "source": ctx.source,
        "account_id": ctx.entry_id,
        "customer_id": ctx.id(sender, "id", ".value.from"),
        "timestamp_ms": ms,
        "raw": item,
    }
    if name == "story_insights":
        return _story_insights(ctx, value, media_id, base)
    comment_id = ctx.id(value, "comment_id", ".value") or ctx.id(value, "id", ".value")
    if name == "mentions":
        if media_id is None:
            raise Malformed("mentions change has no media_id")
        return MentionEvent(
            kind=EventKind.MENTION,
            dedup_key=f"mention:{media_id}:{comment_id or ''}",
            comment_id=comment_id,
            media_id=media_id,
            **base,
        )
    if comment_id is None:
        raise Malformed(f"{name} change has neither comment_id nor id")
    username = ctx.text(sender, "username", ".value.from")
    if base["customer_id"] is None:
        # Meta's Instagram-Login sample names the author by username only: the comment is kept
        # by its id (a private reply needs only that) but no conversation can be made for it.
        who = f"username {username!r} only" if username else "no author"
        ctx.note(
            f"comment {comment_id} has {who} (no from.id): kept without a conversation",
            ".value.from",
        )
    return CommentEvent(
        kind=EventKind.COMMENT if name == "comments" else EventKind.LIVE_COMMENT,
        dedup_key=f"comment:{comment_id}",
        comment_id=comment_id,
        parent_id=ctx.id(value, "parent_id", ".value"),
        text=ctx.text(value, "text", ".value"),
        username=username,
        media_id=media_id,
        media_product_type=ctx.text(media, "media_product_type", ".value.media"),
        ad_id=ctx.id(media, "ad_id", ".value.media"),
        **base,
    )


def _story_insights(
    ctx: ItemContext, value: dict[str, Any], media_id: str | None, base: dict[str, Any]
) -> Event:
    if media_id is None:
        raise Malformed("story_insights change has no media_id")
    metrics: dict[str, int] = {}
    for key, number in value.items():
        if key == "media_id":
            continue
        count = as_int(number)
        if count is None:
            ctx.note(f"unusable metric {short(number)}; ignored", f".value.{key}")
        else:
            metrics[str(key)] = count
    return StoryInsightsEvent(
        kind=EventKind.STORY_INSIGHTS,
        dedup_key=f"story_insights:{media_id}",
        media_id=media_id,
        metrics=metrics,
        **base,
    )
