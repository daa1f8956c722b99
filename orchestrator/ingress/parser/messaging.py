"""`messaging[]` and `standby[]` items → events: messages, edits, reactions, postbacks, reads,
referrals, handover and app-role notices; each key of an item becomes its own event.

One public function, `parse_messaging_item`; builds on `content` (referrals, attachments),
`context`, `values` and `unknown`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.ingress.events import (
    AppRolesEvent,
    Event,
    EventKind,
    EventSource,
    HandoverEvent,
    MessageDeletedEvent,
    MessageEditEvent,
    MessageEvent,
    PostbackEvent,
    ReactionEvent,
    ReadEvent,
    ReferralEvent,
)
from orchestrator.ingress.parser.content import parse_attachments, parse_referral
from orchestrator.ingress.parser.context import ItemContext, Malformed, required_object
from orchestrator.ingress.parser.unknown import unknown_event
from orchestrator.ingress.parser.values import (
    as_flag,
    as_id,
    as_int,
    as_ms,
    canonical,
    key_list,
    object_id,
    short,
)

__all__ = ["parse_messaging_item"]


@dataclass(frozen=True, slots=True)
class _Envelope:
    item: dict[str, Any]
    sender: str | None
    recipient: str | None
    timestamp_ms: int


def _envelope(ctx: ItemContext, item: dict[str, Any]) -> _Envelope:
    sender = object_id(item.get("sender"))
    recipient = object_id(item.get("recipient"))
    ms = as_ms(item.get("timestamp"))
    if ms is None:
        if item.get("timestamp") is not None:
            ctx.note(
                f"unusable timestamp {short(item['timestamp'])}; using entry.time", ".timestamp"
            )
        if ctx.entry_ms is not None:
            ms = ctx.entry_ms
        else:
            ctx.note("no timestamp and no entry.time; using 0")
            ms = 0
    return _Envelope(item=item, sender=sender, recipient=recipient, timestamp_ms=ms)


def _base(
    ctx: ItemContext, env: _Envelope, *, echo: bool = False, needs_customer: bool = True
) -> dict[str, Any]:
    """Common fields. The business side is the recipient (sender for echoes); in standby the
    entry id is the account (PLATFORM 2.9) unless it turns out to be the customer's id."""
    business, customer = (env.sender, env.recipient) if echo else (env.recipient, env.sender)
    account = business or ctx.entry_id
    if ctx.source == EventSource.STANDBY and ctx.entry_id and ctx.entry_id != account:
        if ctx.entry_id == customer:
            ctx.note("standby entry.id is the customer's id; using the business side as account")
        else:
            account = ctx.entry_id
    if not account:
        side = "sender" if echo else "recipient"
        raise Malformed(f"no account id (neither {side}.id nor entry.id)")
    if needs_customer and not customer:
        raise Malformed(f"no customer id ({'recipient' if echo else 'sender'}.id missing)")
    return {
        "object": ctx.obj,
        "source": ctx.source,
        "account_id": account,
        "customer_id": customer if needs_customer else None,
        "timestamp_ms": env.timestamp_ms,
        "raw": env.item,
    }


def _message(ctx: ItemContext, env: _Envelope) -> Event:
    msg = required_object(env.item, "message")
    mid = as_id(msg.get("mid"))
    if mid is None:
        raise Malformed("message has no mid")
    echo = as_flag(msg.get("is_echo"))
    base = _base(ctx, env, echo=echo)
    if as_flag(msg.get("is_deleted")):
        return MessageDeletedEvent(
            kind=EventKind.MESSAGE_DELETED, dedup_key=f"del:{mid}", mid=mid, **base
        )
    path = ".message"
    quick_reply = ctx.obj_at(msg, "quick_reply", path) or {}
    reply_to = ctx.obj_at(msg, "reply_to", path) or {}
    story = ctx.obj_at(reply_to, "story", f"{path}.reply_to") or {}
    referral = parse_referral(ctx, msg.get("referral"), f"{path}.referral")
    if referral is None:  # a sibling `referral` next to `message` belongs to this message
        referral = parse_referral(ctx, env.item.get("referral"), ".referral")
    return MessageEvent(
        kind=EventKind.MESSAGE_ECHO if echo else EventKind.MESSAGE,
        dedup_key=f"msg:{mid}",
        mid=mid,
        text=ctx.text(msg, "text", path),
        attachments=parse_attachments(ctx, msg.get("attachments"), f"{path}.attachments"),
        is_unsupported=as_flag(msg.get("is_unsupported")),
        quick_reply_payload=ctx.text(quick_reply, "payload", f"{path}.quick_reply"),
        reply_to_mid=ctx.id(reply_to, "mid", f"{path}.reply_to"),
        reply_to_story_id=ctx.id(story, "id", f"{path}.reply_to.story"),
        reply_to_story_url=ctx.text(story, "url", f"{path}.reply_to.story"),
        referral=referral,
        is_echo=echo,
        app_id=ctx.id(msg, "app_id", path),
        **base,
    )


def _message_edit(ctx: ItemContext, env: _Envelope) -> Event:
    edit = required_object(env.item, "message_edit")
    mid = as_id(edit.get("mid"))
    if mid is None:
        raise Malformed("message_edit has no mid")
    num_edit = as_int(edit.get("num_edit"))
    if num_edit is None and edit.get("num_edit") is not None:
        ctx.note(f"unusable num_edit {short(edit['num_edit'])}; ignored", ".message_edit.num_edit")
    return MessageEditEvent(
        kind=EventKind.MESSAGE_EDIT,
        dedup_key=f"edit:{mid}:{'' if num_edit is None else num_edit}",
        mid=mid,
        text=ctx.text(edit, "text", ".message_edit"),
        num_edit=num_edit,
        **_base(ctx, env),
    )


def _reaction(ctx: ItemContext, env: _Envelope) -> Event:
    reaction = required_object(env.item, "reaction")
    mid = as_id(reaction.get("mid"))
    if mid is None:
        raise Malformed("reaction has no mid")
    action = (ctx.text(reaction, "action", ".reaction") or "").strip().lower()
    if not action:
        raise Malformed("reaction has no action")
    base = _base(ctx, env)
    value = ctx.text(reaction, "reaction", ".reaction")
    return ReactionEvent(
        kind=EventKind.REACTION,
        dedup_key=(
            f"reaction:{mid}:{base['customer_id']}:{action}:{value or ''}:{env.timestamp_ms}"
        ),
        mid=mid,
        action=action,
        reaction=value,
        emoji=ctx.text(reaction, "emoji", ".reaction"),
        **base,
    )


def _postback(ctx: ItemContext, env: _Envelope) -> Event:
    postback = required_object(env.item, "postback")
    base = _base(ctx, env)
    mid = ctx.id(postback, "mid", ".postback")
    payload = ctx.text(postback, "payload", ".postback")
    referral = parse_referral(ctx, postback.get("referral"), ".postback.referral")
    if referral is None:
        referral = parse_referral(ctx, env.item.get("referral"), ".referral")
    key = (
        f"postback:{mid}"
        if mid
        else f"postback:{base['customer_id']}:{env.timestamp_ms}:{payload or ''}"
    )
    return PostbackEvent(
        kind=EventKind.POSTBACK,
        dedup_key=key,
        mid=mid,
        title=ctx.text(postback, "title", ".postback"),
        payload=payload,
        referral=referral,
        **base,
    )


def _read(ctx: ItemContext, env: _Envelope) -> Event:
    read = required_object(env.item, "read")
    mid = ctx.id(read, "mid", ".read")
    watermark = as_ms(read.get("watermark"))
    if mid is None and watermark is None:
        raise Malformed("read has neither mid nor watermark")
    base = _base(ctx, env)
    return ReadEvent(
        kind=EventKind.READ,
        dedup_key=f"read:{base['customer_id']}:{mid or watermark}",
        mid=mid,
        watermark=watermark,
        **base,
    )


def _referral_event(ctx: ItemContext, env: _Envelope) -> Event:
    required_object(env.item, "referral")
    referral = parse_referral(ctx, env.item["referral"], ".referral")
    assert referral is not None  # a dict always yields a Referral
    base = _base(ctx, env)
    return ReferralEvent(
        kind=EventKind.REFERRAL,
        dedup_key=f"referral:{base['customer_id']}:{env.timestamp_ms}:{referral.ref or ''}",
        referral=referral,
        **base,
    )


def _handover(kind: EventKind) -> Callable[[ItemContext, _Envelope], Event]:
    def build(ctx: ItemContext, env: _Envelope) -> Event:
        body = required_object(env.item, kind.value)
        path = f".{kind.value}"
        base = _base(ctx, env)
        new_owner = ctx.id(body, "new_owner_app_id", path)
        requested = ctx.id(body, "requested_owner_app_id", path)
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, str):
            metadata = canonical(metadata)
        target = new_owner or requested or ""
        return HandoverEvent(
            kind=kind,
            dedup_key=f"{kind.value}:{base['customer_id']}:{env.timestamp_ms}:{target}",
            previous_owner_app_id=ctx.id(body, "previous_owner_app_id", path),
            new_owner_app_id=new_owner,
            requested_owner_app_id=requested,
            metadata=metadata,
            **base,
        )

    return build


def _app_roles(ctx: ItemContext, env: _Envelope) -> Event:
    body = required_object(env.item, "app_roles")
    roles: dict[str, tuple[str, ...]] = {}
    for app, value in body.items():
        app_id = as_id(app)
        listed = [value] if isinstance(value, str) else value
        if app_id is None or not isinstance(listed, list):
            ctx.note(f"unusable role entry {short(app)}: {short(value)}; ignored", ".app_roles")
            continue
        roles[app_id] = tuple(r for r in listed if isinstance(r, str))
        if len(roles[app_id]) != len(listed):
            ctx.note("non-string roles ignored", f".app_roles.{app_id}")
    canonical_roles = json.dumps(
        {app: sorted(r) for app, r in roles.items()}, sort_keys=True, separators=(",", ":")
    )
    return AppRolesEvent(
        kind=EventKind.APP_ROLES,
        dedup_key=f"app_roles:{env.timestamp_ms}:{canonical_roles}",
        roles=roles,
        **_base(ctx, env, needs_customer=False),
    )


_MESSAGING_BUILDERS: dict[str, Callable[[ItemContext, _Envelope], Event]] = {
    "message": _message,
    "message_edit": _message_edit,
    "reaction": _reaction,
    "postback": _postback,
    "read": _read,
    "referral": _referral_event,
    "pass_thread_control": _handover(EventKind.PASS_THREAD_CONTROL),
    "take_thread_control": _handover(EventKind.TAKE_THREAD_CONTROL),
    "request_thread_control": _handover(EventKind.REQUEST_THREAD_CONTROL),
    "app_roles": _app_roles,
}


def parse_messaging_item(ctx: ItemContext, item: dict[str, Any]) -> list[Event]:
    """One `messaging[]`/`standby[]` item → one event per known key (UnknownEvent otherwise)."""
    keys = [key for key in _MESSAGING_BUILDERS if key in item]
    if "referral" in keys and ("message" in keys or "postback" in keys):
        keys.remove("referral")  # context of that message/postback, attached to it there
    if not keys:
        return [unknown_event(ctx, item, f"no known event key (keys: {key_list(item)})")]
    if len(keys) > 1:
        ctx.note(f"several event keys in one item ({', '.join(keys)}); one event each")
    env = _envelope(ctx, item)
    events: list[Event] = []
    for key in keys:
        try:
            events.append(_MESSAGING_BUILDERS[key](ctx, env))
        except Malformed as exc:
            events.append(unknown_event(ctx, item, exc.reason))
    return events
