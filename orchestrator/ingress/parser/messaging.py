"""`messaging[]` and `standby[]` items → events: messages, edits, reactions, postbacks, reads,
referrals, handover and app-role notices; each key of an item becomes its own event."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.ingress.events import (
    AppRolesEvent,
    Attachment,
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
    Referral,
    ReferralEvent,
)
from orchestrator.ingress.parser.context import _Malformed, _required_obj, _unknown, _Where
from orchestrator.ingress.parser.values import (
    _canonical,
    _flag,
    _id,
    _int,
    _json_type,
    _keys,
    _ms,
    _obj_id,
    _short,
)


@dataclass(frozen=True, slots=True)
class _Envelope:
    item: dict[str, Any]
    sender: str | None
    recipient: str | None
    timestamp_ms: int


def _envelope(w: _Where, item: dict[str, Any]) -> _Envelope:
    sender = _obj_id(item.get("sender"))
    recipient = _obj_id(item.get("recipient"))
    ms = _ms(item.get("timestamp"))
    if ms is None:
        if item.get("timestamp") is not None:
            w.note(
                f"unusable timestamp {_short(item['timestamp'])}; using entry.time", ".timestamp"
            )
        if w.entry_ms is not None:
            ms = w.entry_ms
        else:
            w.note("no timestamp and no entry.time; using 0")
            ms = 0
    return _Envelope(item=item, sender=sender, recipient=recipient, timestamp_ms=ms)


def _base(
    w: _Where, env: _Envelope, *, echo: bool = False, needs_customer: bool = True
) -> dict[str, Any]:
    """Common fields. The business side is the recipient (sender for echoes); in standby the
    entry id is the account (docs/platform.md 2.9) unless it turns out to be the customer's id."""
    business, customer = (env.sender, env.recipient) if echo else (env.recipient, env.sender)
    account = business or w.entry_id
    if w.source == EventSource.STANDBY and w.entry_id and w.entry_id != account:
        if w.entry_id == customer:
            w.note("standby entry.id is the customer's id; using the business side as account")
        else:
            account = w.entry_id
    if not account:
        side = "sender" if echo else "recipient"
        raise _Malformed(f"no account id (neither {side}.id nor entry.id)")
    if needs_customer and not customer:
        raise _Malformed(f"no customer id ({'recipient' if echo else 'sender'}.id missing)")
    return {
        "object": w.obj,
        "source": w.source,
        "account_id": account,
        "customer_id": customer if needs_customer else None,
        "timestamp_ms": env.timestamp_ms,
        "raw": env.item,
    }


def _referral(w: _Where, value: Any, path: str) -> Referral | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        w.note(f"expected an object, got {_json_type(value)}; ignored", path)
        return None
    source = w.text(value, "source", path)
    if source is not None:
        source = source.strip().upper()
        source = "SHORTLINKS" if source == "SHORTLINK" else source
    ads_context = w.obj_at(value, "ads_context_data", path) or {}
    product = w.obj_at(value, "product", path) or {}
    return Referral(
        ref=w.text(value, "ref", path),
        source=source,
        type=w.text(value, "type", path),
        ad_id=w.id(value, "ad_id", path),
        ads_context_data=ads_context,
        product_id=w.id(product, "id", f"{path}.product"),
    )


def _attachments(w: _Where, value: Any, path: str) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    if isinstance(value, dict):
        w.note("expected an array, got an object; read as one attachment", path)
        value = [value]
    if not isinstance(value, list):
        w.note(f"expected an array, got {_json_type(value)}; ignored", path)
        return ()
    out = []
    for k, att in enumerate(value):
        here = f"{path}[{k}]"
        if not isinstance(att, dict):
            w.note(f"expected an object, got {_json_type(att)}; skipped", here)
            continue
        payload = w.obj_at(att, "payload", here) or {}
        ptext, atext = f"{here}.payload", here
        out.append(
            Attachment(
                type=w.text(att, "type", here) or "unknown",
                # Messenger's `fallback` puts url/title on the attachment itself.
                url=w.text(payload, "url", ptext) or w.text(att, "url", atext),
                title=w.text(payload, "title", ptext) or w.text(att, "title", atext),
                sticker_id=w.id(payload, "sticker_id", ptext),
                reel_video_id=w.id(payload, "reel_video_id", ptext),
                payload=payload,
            )
        )
    return tuple(out)


def _message(w: _Where, env: _Envelope) -> Event:
    msg = _required_obj(env.item, "message")
    mid = _id(msg.get("mid"))
    if mid is None:
        raise _Malformed("message has no mid")
    echo = _flag(msg.get("is_echo"))
    base = _base(w, env, echo=echo)
    if _flag(msg.get("is_deleted")):
        return MessageDeletedEvent(
            kind=EventKind.MESSAGE_DELETED, dedup_key=f"del:{mid}", mid=mid, **base
        )
    path = ".message"
    quick_reply = w.obj_at(msg, "quick_reply", path) or {}
    reply_to = w.obj_at(msg, "reply_to", path) or {}
    story = w.obj_at(reply_to, "story", f"{path}.reply_to") or {}
    referral = _referral(w, msg.get("referral"), f"{path}.referral")
    if referral is None:  # a sibling `referral` next to `message` belongs to this message
        referral = _referral(w, env.item.get("referral"), ".referral")
    return MessageEvent(
        kind=EventKind.MESSAGE_ECHO if echo else EventKind.MESSAGE,
        dedup_key=f"msg:{mid}",
        mid=mid,
        text=w.text(msg, "text", path),
        attachments=_attachments(w, msg.get("attachments"), f"{path}.attachments"),
        is_unsupported=_flag(msg.get("is_unsupported")),
        quick_reply_payload=w.text(quick_reply, "payload", f"{path}.quick_reply"),
        reply_to_mid=w.id(reply_to, "mid", f"{path}.reply_to"),
        reply_to_story_id=w.id(story, "id", f"{path}.reply_to.story"),
        reply_to_story_url=w.text(story, "url", f"{path}.reply_to.story"),
        referral=referral,
        is_echo=echo,
        app_id=w.id(msg, "app_id", path),
        **base,
    )


def _message_edit(w: _Where, env: _Envelope) -> Event:
    edit = _required_obj(env.item, "message_edit")
    mid = _id(edit.get("mid"))
    if mid is None:
        raise _Malformed("message_edit has no mid")
    num_edit = _int(edit.get("num_edit"))
    if num_edit is None and edit.get("num_edit") is not None:
        w.note(f"unusable num_edit {_short(edit['num_edit'])}; ignored", ".message_edit.num_edit")
    return MessageEditEvent(
        kind=EventKind.MESSAGE_EDIT,
        dedup_key=f"edit:{mid}:{'' if num_edit is None else num_edit}",
        mid=mid,
        text=w.text(edit, "text", ".message_edit"),
        num_edit=num_edit,
        **_base(w, env),
    )


def _reaction(w: _Where, env: _Envelope) -> Event:
    reaction = _required_obj(env.item, "reaction")
    mid = _id(reaction.get("mid"))
    if mid is None:
        raise _Malformed("reaction has no mid")
    action = (w.text(reaction, "action", ".reaction") or "").strip().lower()
    if not action:
        raise _Malformed("reaction has no action")
    base = _base(w, env)
    value = w.text(reaction, "reaction", ".reaction")
    return ReactionEvent(
        kind=EventKind.REACTION,
        dedup_key=(
            f"reaction:{mid}:{base['customer_id']}:{action}:{value or ''}:{env.timestamp_ms}"
        ),
        mid=mid,
        action=action,
        reaction=value,
        emoji=w.text(reaction, "emoji", ".reaction"),
        **base,
    )


def _postback(w: _Where, env: _Envelope) -> Event:
    postback = _required_obj(env.item, "postback")
    base = _base(w, env)
    mid = w.id(postback, "mid", ".postback")
    payload = w.text(postback, "payload", ".postback")
    referral = _referral(w, postback.get("referral"), ".postback.referral")
    if referral is None:
        referral = _referral(w, env.item.get("referral"), ".referral")
    key = (
        f"postback:{mid}"
        if mid
        else f"postback:{base['customer_id']}:{env.timestamp_ms}:{payload or ''}"
    )
    return PostbackEvent(
        kind=EventKind.POSTBACK,
        dedup_key=key,
        mid=mid,
        title=w.text(postback, "title", ".postback"),
        payload=payload,
        referral=referral,
        **base,
    )


def _read(w: _Where, env: _Envelope) -> Event:
    read = _required_obj(env.item, "read")
    mid = w.id(read, "mid", ".read")
    watermark = _ms(read.get("watermark"))
    if mid is None and watermark is None:
        raise _Malformed("read has neither mid nor watermark")
    base = _base(w, env)
    return ReadEvent(
        kind=EventKind.READ,
        dedup_key=f"read:{base['customer_id']}:{mid or watermark}",
        mid=mid,
        watermark=watermark,
        **base,
    )


def _referral_event(w: _Where, env: _Envelope) -> Event:
    _required_obj(env.item, "referral")
    referral = _referral(w, env.item["referral"], ".referral")
    assert referral is not None  # a dict always yields a Referral
    base = _base(w, env)
    return ReferralEvent(
        kind=EventKind.REFERRAL,
        dedup_key=f"referral:{base['customer_id']}:{env.timestamp_ms}:{referral.ref or ''}",
        referral=referral,
        **base,
    )


def _handover(kind: EventKind) -> Callable[[_Where, _Envelope], Event]:
    def build(w: _Where, env: _Envelope) -> Event:
        body = _required_obj(env.item, kind.value)
        path = f".{kind.value}"
        base = _base(w, env)
        new_owner = w.id(body, "new_owner_app_id", path)
        requested = w.id(body, "requested_owner_app_id", path)
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, str):
            metadata = _canonical(metadata)
        target = new_owner or requested or ""
        return HandoverEvent(
            kind=kind,
            dedup_key=f"{kind.value}:{base['customer_id']}:{env.timestamp_ms}:{target}",
            previous_owner_app_id=w.id(body, "previous_owner_app_id", path),
            new_owner_app_id=new_owner,
            requested_owner_app_id=requested,
            metadata=metadata,
            **base,
        )

    return build


def _app_roles(w: _Where, env: _Envelope) -> Event:
    body = _required_obj(env.item, "app_roles")
    roles: dict[str, tuple[str, ...]] = {}
    for app, value in body.items():
        app_id = _id(app)
        listed = [value] if isinstance(value, str) else value
        if app_id is None or not isinstance(listed, list):
            w.note(f"unusable role entry {_short(app)}: {_short(value)}; ignored", ".app_roles")
            continue
        roles[app_id] = tuple(r for r in listed if isinstance(r, str))
        if len(roles[app_id]) != len(listed):
            w.note("non-string roles ignored", f".app_roles.{app_id}")
    canonical_roles = json.dumps(
        {app: sorted(r) for app, r in roles.items()}, sort_keys=True, separators=(",", ":")
    )
    return AppRolesEvent(
        kind=EventKind.APP_ROLES,
        dedup_key=f"app_roles:{env.timestamp_ms}:{canonical_roles}",
        roles=roles,
        **_base(w, env, needs_customer=False),
    )


_MESSAGING_BUILDERS: dict[str, Callable[[_Where, _Envelope], Event]] = {
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


def _messaging_item(w: _Where, item: dict[str, Any]) -> list[Event]:
    keys = [key for key in _MESSAGING_BUILDERS if key in item]
    if "referral" in keys and ("message" in keys or "postback" in keys):
        keys.remove("referral")  # context of that message/postback, attached to it there
    if not keys:
        return [_unknown(w, item, f"no known event key (keys: {_keys(item)})")]
    if len(keys) > 1:
        w.note(f"several event keys in one item ({', '.join(keys)}); one event each")
    env = _envelope(w, item)
    events: list[Event] = []
    for key in keys:
        try:
            events.append(_MESSAGING_BUILDERS[key](w, env))
        except _Malformed as exc:
            events.append(_unknown(w, item, exc.reason))
    return events
