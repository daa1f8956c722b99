"""Pieces of message content shared by several item kinds: the `referral` object (messages,
postbacks, referral events) and `attachments[]`."""

from __future__ import annotations

from typing import Any

from orchestrator.ingress.events import Attachment, Referral
from orchestrator.ingress.parser.context import ItemContext
from orchestrator.ingress.parser.values import json_type

__all__ = ["parse_attachments", "parse_referral"]


def parse_referral(ctx: ItemContext, value: Any, path: str) -> Referral | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        ctx.note(f"expected an object, got {json_type(value)}; ignored", path)
        return None
    source = ctx.text(value, "source", path)
    if source is not None:
        source = source.strip().upper()
        source = "SHORTLINKS" if source == "SHORTLINK" else source
    ads_context = ctx.obj_at(value, "ads_context_data", path) or {}
    product = ctx.obj_at(value, "product", path) or {}
    return Referral(
        ref=ctx.text(value, "ref", path),
        source=source,
        type=ctx.text(value, "type", path),
        ad_id=ctx.id(value, "ad_id", path),
        ads_context_data=ads_context,
        product_id=ctx.id(product, "id", f"{path}.product"),
    )


def parse_attachments(ctx: ItemContext, value: Any, path: str) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        ctx.note("expected an array, got an object; read as one attachment", path)
        value = [value]
    if not isinstance(value, list):
        ctx.note(f"expected an array, got {json_type(value)}; ignored", path)
        return ()
    out = []
    for k, att in enumerate(value):
        here = f"{path}[{k}]"
        if not isinstance(att, dict):
            ctx.note(f"expected an object, got {json_type(att)}; skipped", here)
            continue
        payload = ctx.obj_at(att, "payload", here) or {}
        ptext, atext = f"{here}.payload", here
        out.append(
            Attachment(
                type=ctx.text(att, "type", here) or "unknown",
                # `ig_story` keeps its URL in `story_media_url`; Messenger's `fallback` puts
                # url/title on the attachment itself, spelt `URL` in the older reference.
                url=ctx.text(payload, "url", ptext)
                or ctx.text(payload, "story_media_url", ptext)
                or ctx.text(att, "url", atext)
                or ctx.text(att, "URL", atext),
                title=ctx.text(payload, "title", ptext) or ctx.text(att, "title", atext),
                sticker_id=ctx.id(payload, "sticker_id", ptext),
                reel_video_id=ctx.id(payload, "reel_video_id", ptext),
                payload=payload,
            )
        )
    return tuple(out)
