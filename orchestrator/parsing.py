"""Webhook POST body → typed events (PLATFORM 2). Pure: no I/O, no logging, no clock.

Every entry and every item of `messaging[]`, `standby[]` and `changes[]` is read (Meta batches).
Whatever is not understood becomes an `UnknownEvent` plus a line in `problems` naming where it
was; the parser never raises on a decoded payload and never drops an item silently.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from math import isfinite
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.events import (
    AppRolesEvent,
    Attachment,
    CommentEvent,
    Event,
    EventKind,
    EventSource,
    HandoverEvent,
    MentionEvent,
    MessageDeletedEvent,
    MessageEditEvent,
    MessageEvent,
    PostbackEvent,
    ReactionEvent,
    ReadEvent,
    Referral,
    ReferralEvent,
    UnknownEvent,
    jsonable,
)

__all__ = ["KNOWN_OBJECTS", "MalformedJSON", "ParsedBody", "parse_body", "parse_payload"]

KNOWN_OBJECTS = frozenset({"instagram", "page"})

# Epoch values below this are seconds (PLATFORM 2.1: `changes` examples use seconds).
_SECONDS_BELOW = 10**12
# 9999-12-31T23:59:59.999Z: larger values cannot become a datetime, so they are rejected.
_MAX_MS = 253_402_300_799_999


class MalformedJSON(OrchestratorError, ValueError):
    """The body is not valid JSON; `line`/`column` are 1-based when known."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """The events of one POST, in payload order, and everything odd found on the way.

    `shape_ok` is False when the top level is not an object with an `entry` list; then there
    are no events and `problems` says why.
    """

    events: tuple[Event, ...] = ()
    problems: tuple[str, ...] = ()
    shape_ok: bool = True


# ---------------------------------------------------------------------------------------------
# JSON decoding


class _NonStandardConstant(Exception):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstant(name)


# Strings are matched whole so that a `NaN` inside a string is not reported.
_CONSTANT_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.DOTALL)


def _line_col(text: str | bytes, pos: int) -> tuple[int, int]:
    newline: Any = "\n" if isinstance(text, str) else b"\n"
    return text.count(newline, 0, pos) + 1, pos - text.rfind(newline, 0, pos)


def _load_json(body: bytes) -> Any:
    if isinstance(body, str):  # tolerated, although the edge hands over raw bytes
        text = body
    else:
        raw = bytes(body)
        try:
            text = raw.decode(json.detect_encoding(raw))
        except UnicodeDecodeError as exc:
            line, column = _line_col(raw, exc.start)
            raise MalformedJSON(
                f"malformed JSON: invalid {exc.encoding} byte at line {line}, column {column}",
                line=line,
                column=column,
            ) from exc
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedJSON(
            f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            line=exc.lineno,
            column=exc.colno,
        ) from exc
    except _NonStandardConstant as exc:
        pos = next((m.start(1) for m in _CONSTANT_TOKEN.finditer(text) if m.group(1)), 0)
        line, column = _line_col(text, pos)
        raise MalformedJSON(
            f"malformed JSON at line {line}, column {column}: {exc.args[0]} is not valid JSON",
            line=line,
            column=column,
        ) from None
    except RecursionError:
        raise MalformedJSON("malformed JSON: nested too deeply to decode") from None


def parse_body(body: bytes) -> ParsedBody:
    """Decode a webhook POST body and parse it; invalid JSON raises `MalformedJSON`."""
    return parse_payload(_load_json(body))


# ---------------------------------------------------------------------------------------------
# Small coercions: ids to str, epoch to ms, and a note when a present value is unusable


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _keys(mapping: dict[Any, Any], limit: int = 12) -> str:
    names = [str(k)[:40] for k in list(mapping)[:limit]]
    more = ", ..." if len(mapping) > limit else ""
    return (", ".join(names) + more) if names else "none"


def _id(value: Any) -> str | None:
    """An id as a string; Meta sends ids both as strings and as numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and isfinite(value) and value.is_integer():
        return str(int(value))
    return None


def _obj_id(value: Any) -> str | None:
    """`{"id": ...}` → id; a bare id is accepted too."""
    return _id(value.get("id")) if isinstance(value, dict) else _id(value)


def _ms(value: Any) -> int | None:
    """Epoch ms from seconds or ms (number or numeric string); None when unusable."""
    number: int | float
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text) if text.isascii() and text.isdigit() else float(text)
        except ValueError:
            return None
    else:
        return None
    if isinstance(number, float) and not isfinite(number):
        return None
    if number < 0:
        return None
    ms = round(number * 1000) if number < _SECONDS_BELOW else int(number)
    return ms if ms <= _MAX_MS else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1"}
    return value is True or (type(value) in (int, float) and value == 1)


class _Malformed(Exception):
    """A known item that cannot be turned into its event; becomes an UnknownEvent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Where:
    """Context of one item: where it sits, its entry's id/time, and the shared problem list."""

    obj: str
    source: EventSource
    loc: str
    entry_id: str | None
    entry_ms: int | None
    problems: list[str]

    def note(self, message: str, path: str = "") -> None:
        self.problems.append(f"{self.loc}{path}: {message}")

    def text(self, mapping: dict[str, Any], key: str, path: str) -> str | None:
        value = mapping.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.note(f"expected a string, got {_json_type(value)}; ignored", f"{path}.{key}")
        return None

    def id(self, mapping: dict[str, Any], key: str, path: str) -> str | None:
        value = mapping.get(key)
        result = _id(value)
        if result is None and value is not None:
            self.note(f"unusable id {_short(value)}; ignored", f"{path}.{key}")
        return result

    def obj_at(self, mapping: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
        value = mapping.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.note(f"expected an object, got {_json_type(value)}; ignored", f"{path}.{key}")
        return None


def _required_obj(item: dict[str, Any], key: str) -> dict[str, Any]:
    value = item.get(key)
    if not isinstance(value, dict):
        raise _Malformed(f"{key} is not an object (got {_json_type(value)})")
    return value


def _canonical(value: Any) -> str:
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# ---------------------------------------------------------------------------------------------
# messaging[] / standby[] items


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
    entry id is the account (PLATFORM 2.9) unless it turns out to be the customer's id."""
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


# ---------------------------------------------------------------------------------------------
# changes[] items (and the IG Login layout with field/value directly under the entry)


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


# ---------------------------------------------------------------------------------------------
# Unknown items, entries, top level


def _unknown(w: _Where, raw: dict[str, Any], reason: str) -> UnknownEvent:
    """Keep what was not understood, with a best-effort account/customer/time and a stable key.

    The key hashes the item with its location kind; `standby` counts as `messaging` so that a
    redelivery through another app's standby gets the same key.
    """
    w.note(reason)
    if w.source == EventSource.CHANGES:
        value = raw.get("value")
        value = value if isinstance(value, dict) else {}
        account = w.entry_id or ""
        customer = _obj_id(value.get("from"))
        ms = _ms(value.get("timestamp"))
        location = "changes"
    else:
        sender, recipient = _obj_id(raw.get("sender")), _obj_id(raw.get("recipient"))
        account = w.entry_id or recipient or sender or ""
        customer = next((i for i in (sender, recipient) if i and i != account), None)
        ms = _ms(raw.get("timestamp"))
        location = "messaging"
    if ms is None:
        ms = w.entry_ms if w.entry_ms is not None else 0
    digest = hashlib.sha256(_canonical([location, raw]).encode("ascii")).hexdigest()
    return UnknownEvent(
        kind=EventKind.UNKNOWN,
        object=w.obj,
        source=w.source,
        account_id=account,
        customer_id=customer,
        timestamp_ms=ms,
        dedup_key=f"unknown:{digest}",
        raw=raw,
        reason=reason,
    )


def _parse_item(w: _Where, item: Any) -> list[Event]:
    if not isinstance(item, dict):
        w.note(f"expected an object, got {_json_type(item)}; skipped")
        return []
    try:
        if w.source == EventSource.CHANGES:
            try:
                return _change(w, item)
            except _Malformed as exc:
                return [_unknown(w, item, exc.reason)]
        return _messaging_item(w, item)
    except Exception as exc:  # a parser bug must cost one item, never the whole batch
        return [_unknown(w, item, f"parser error: {type(exc).__name__}: {exc}")]


def _parse_entry(obj: str, index: int, entry: Any, problems: list[str]) -> list[Event]:
    loc = f"entry[{index}]"
    if not isinstance(entry, dict):
        problems.append(f"{loc}: expected an object, got {_json_type(entry)}; skipped")
        return []
    entry_id = _id(entry.get("id"))
    entry_ms = _ms(entry.get("time"))
    if entry_ms is None and entry.get("time") is not None:
        problems.append(f"{loc}.time: unusable time {_short(entry['time'])}; ignored")
    events: list[Event] = []
    seen_items = False
    for source in (EventSource.MESSAGING, EventSource.STANDBY, EventSource.CHANGES):
        if source.value not in entry:
            continue
        items = entry[source.value]
        if isinstance(items, dict):
            problems.append(f"{loc}.{source}: expected an array, got an object; read as one item")
            items = [items]
        if not isinstance(items, list):
            problems.append(f"{loc}.{source}: expected an array, got {_json_type(items)}")
            continue
        for j, item in enumerate(items):
            seen_items = True
            w = _Where(obj, source, f"{loc}.{source}[{j}]", entry_id, entry_ms, problems)
            events.extend(_parse_item(w, item))
    if "field" in entry or "value" in entry:
        # IG Login's example puts one change directly under the entry (PLATFORM 2.11).
        seen_items = True
        w = _Where(obj, EventSource.CHANGES, loc, entry_id, entry_ms, problems)
        events.extend(_parse_item(w, {"field": entry.get("field"), "value": entry.get("value")}))
    if not seen_items:
        problems.append(f"{loc}: no messaging, standby or changes items (keys: {_keys(entry)})")
    return events


def parse_payload(payload: Any) -> ParsedBody:
    """Turn a decoded webhook body into events; never raises."""
    if not isinstance(payload, dict):
        problem = f"top level: expected an object with an entry array, got {_json_type(payload)}"
        return ParsedBody(problems=(problem,), shape_ok=False)
    entries = payload.get("entry")
    if not isinstance(entries, list):
        problem = (
            f"entry: expected an array, got {_json_type(entries)}"
            if "entry" in payload
            else f"top level: no entry array (keys: {_keys(payload)})"
        )
        return ParsedBody(problems=(problem,), shape_ok=False)
    problems: list[str] = []
    obj = payload.get("object")
    obj_name = obj if isinstance(obj, str) else ""
    if obj_name not in KNOWN_OBJECTS:
        problems.append(
            f"object: expected 'instagram' or 'page', got {_short(obj)}; items parsed anyway"
        )
    if not entries:
        problems.append("entry: empty array, no events")
    events: list[Event] = []
    for index, entry in enumerate(entries):
        events.extend(_parse_entry(obj_name, index, entry, problems))
    return ParsedBody(events=tuple(events), problems=tuple(problems), shape_ok=True)
