"""`messaging[]` and `standby[]` items → events: messages, edits, reactions, postbacks, reads,
referrals, handover and app-role notices, and Messenger's deliveries, opt-ins, policy notices
and account linking; each key of an item becomes its own event.

One public function, `parse_messaging_item`; builds on `content` (referrals, attachments),
`context`, `values` and `unknown`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.ingress.events import (
    AccountLinkingEvent,
    AppRolesEvent,
    DeliveryEvent,
    Event,
    EventKind,
    EventSource,
    HandoverEvent,
    MessageDeletedEvent,
    MessageEditEvent,
    MessageEvent,
    OptinEvent,
    PolicyEnforcementEvent,
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
    json_type,
    key_list,
    object_id,
    short,
)

__all__ = ["parse_messaging_item"]


# Where Meta may put the self-messaging flag: on the item or inside its event object.
_SELF_FLAG_HOLDERS = ("message", "postback", "reaction", "read", "message_edit")


@dataclass(frozen=True, slots=True)
class _Envelope:
    item: dict[str, Any]
    sender: str | None
    recipient: str | None
    timestamp_ms: int
    self_flag: bool


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
    self_flag = as_flag(item.get("is_self")) or any(
        isinstance(item.get(key), dict) and as_flag(item[key].get("is_self"))
        for key in _SELF_FLAG_HOLDERS
    )
    return _Envelope(item, sender, recipient, ms, self_flag)


def _is_business(ctx: ItemContext, side: str | None) -> bool:
    """A configured account id, or the entry's id where that is the account (`messaging[]`;
    in `standby[]` Meta calls entry.id the user's id, docs/platform.md 2.9)."""
    if side is None:
        return False
    return side in ctx.account_ids or (side == ctx.entry_id and ctx.source == EventSource.MESSAGING)


def _base(
    ctx: ItemContext, env: _Envelope, *, echo: bool = False, customer: str = "required"
) -> dict[str, Any]:
    """Common fields; `customer` is "required", "optional" (noted when missing) or "none".

    The business side is the recipient (the sender for echoes), except when the sender is the
    business itself on a non-echo event (the entry's or a configured account id, or Meta's
    `is_self` flag): that is self messaging, the business previewing its own automation, and
    the other side is the business's own scoped id. In standby the entry id is the account
    (docs/platform.md 2.9) unless it turns out to be the customer's id.
    """
    is_self = env.self_flag
    sender_is_business = echo or (
        (_is_business(ctx, env.sender) or env.self_flag) and not _is_business(ctx, env.recipient)
    )
    if sender_is_business:
        business, other = env.sender, env.recipient
        is_self = is_self or not echo
    else:
        business, other = env.recipient, env.sender
    account = business or ctx.entry_id
    if ctx.source == EventSource.STANDBY and ctx.entry_id and ctx.entry_id != account:
        if ctx.entry_id == other:
            ctx.note("standby entry.id is the customer's id; using the business side as account")
        else:
            account = ctx.entry_id
    if not account:
        side = "sender" if echo else "recipient"
        raise Malformed(f"no account id (neither {side}.id nor entry.id)")
    other_side = "recipient" if sender_is_business else "sender"
    if customer == "required" and not other:
        raise Malformed(f"no customer id ({other_side}.id missing)")
    if customer == "optional" and not other:
        ctx.note(f"no {other_side}.id: the customer is unknown, kept without a conversation")
    return {
        "object": ctx.obj,
        "source": ctx.source,
        "account_id": account,
        "customer_id": other if customer != "none" else None,
        "timestamp_ms": env.timestamp_ms,
        "is_self": is_self,
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
    # Real deliveries often carry only mid and num_edit: the new text is then unknown, which
    # must never read as "the text is now empty" (docs/payloads.md).
    text = ctx.text(edit, "text", ".message_edit")
    return MessageEditEvent(
        kind=EventKind.MESSAGE_EDIT,
        dedup_key=f"edit:{mid}:{'' if num_edit is None else num_edit}",
        mid=mid,
        text=text,
        text_known=text is not None,
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
    # Seen in real deliveries: a read without sender. Kept (by its mid or watermark) and noted.
    base = _base(ctx, env, customer="optional")
    return ReadEvent(
        kind=EventKind.READ,
        dedup_key=f"read:{base['customer_id'] or ''}:{mid or watermark}",
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
        **_base(ctx, env, customer="none"),
    )


def _delivery(ctx: ItemContext, env: _Envelope) -> Event:
    delivery = required_object(env.item, "delivery")
    watermark = as_ms(delivery.get("watermark"))
    listed = delivery.get("mids")
    if listed is not None and not isinstance(listed, list):
        ctx.note(f"expected an array, got {json_type(listed)}; ignored", ".delivery.mids")
        listed = None
    mids = tuple(m for m in (as_id(v) for v in listed or []) if m is not None)
    if len(mids) != len(listed or []):
        ctx.note("unusable mids ignored", ".delivery.mids")
    if not mids and watermark is None:
        raise Malformed("delivery has neither mids nor watermark")
    base = _base(ctx, env)
    return DeliveryEvent(
        kind=EventKind.DELIVERY,
        dedup_key=f"delivery:{base['customer_id']}:{watermark or ''}:{','.join(mids)}",
        mids=mids,
        watermark=watermark,
        **base,
    )


def _optin(ctx: ItemContext, env: _Envelope) -> Event:
    optin = required_object(env.item, "optin")
    path = ".optin"
    user_ref = ctx.text(optin, "user_ref", path)
    # The checkbox plugin names the person by user_ref only (no sender): no customer yet.
    base = _base(ctx, env, customer="none" if env.sender is None and user_ref else "required")
    token = ctx.text(optin, "notification_messages_token", path) or ctx.text(
        optin, "one_time_notif_token", path
    )
    ref = ctx.text(optin, "ref", path)
    payload = ctx.text(optin, "payload", path)
    who = base["customer_id"] or f"user_ref={user_ref}"
    return OptinEvent(
        kind=EventKind.OPTIN,
        dedup_key=f"optin:{who}:{env.timestamp_ms}:{ref or ''}:{payload or ''}",
        optin_type=ctx.text(optin, "type", path),
        ref=ref,
        user_ref=user_ref,
        payload=payload,
        token=token,
        token_expires_ms=as_ms(optin.get("token_expiry_timestamp")),
        title=ctx.text(optin, "title", path),
        **base,
    )


def _policy_enforcement(key: str) -> Callable[[ItemContext, _Envelope], Event]:
    def build(ctx: ItemContext, env: _Envelope) -> Event:
        body = required_object(env.item, key)
        action = (ctx.text(body, "action", f".{key}") or "").strip().lower()
        if not action:
            raise Malformed(f"{key} has no action")
        base = _base(ctx, env, customer="none")
        return PolicyEnforcementEvent(
            kind=EventKind.POLICY_ENFORCEMENT,
            dedup_key=f"policy_enforcement:{base['account_id']}:{env.timestamp_ms}:{action}",
            action=action,
            reason=ctx.text(body, "reason", f".{key}"),
            **base,
        )

    return build


def _account_linking(ctx: ItemContext, env: _Envelope) -> Event:
    body = required_object(env.item, "account_linking")
    status = (ctx.text(body, "status", ".account_linking") or "").strip().lower()
    if not status:
        raise Malformed("account_linking has no status")
    base = _base(ctx, env)
    return AccountLinkingEvent(
        kind=EventKind.ACCOUNT_LINKING,
        dedup_key=f"account_linking:{base['customer_id']}:{env.timestamp_ms}:{status}",
        status=status,
        authorization_code=ctx.text(body, "authorization_code", ".account_linking"),
        **base,
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
    "delivery": _delivery,
    "optin": _optin,
    "policy_enforcement": _policy_enforcement("policy_enforcement"),
    # The older Messenger reference spells the key with a hyphen.
    "policy-enforcement": _policy_enforcement("policy-enforcement"),
    "account_linking": _account_linking,
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
