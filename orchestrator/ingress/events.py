"""Typed webhook events: immutable value objects built by `orchestrator.ingress.parser`.

One event per `messaging[]` / `standby[]` / `changes[]` item of a Meta webhook POST
(docs/platform.md 2).
Ids are always strings, times are epoch milliseconds, and `raw` keeps the item exactly as Meta
sent it, so nothing is lost when a field is not modelled here. `to_json()` is the plain form used
for logs, storage and delivery to sub-apps; `event_from_json()` is its exact inverse, so a stored
typed event is rebuilt without parsing the raw item again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from math import isfinite
from typing import Any, ClassVar, cast

__all__ = [
    "AccountLinkingEvent",
    "AnyEvent",
    "AppRolesEvent",
    "Attachment",
    "CommentEvent",
    "DeliveryEvent",
    "Event",
    "EventKind",
    "EventSource",
    "HandoverEvent",
    "MentionEvent",
    "MessageDeletedEvent",
    "MessageEditEvent",
    "MessageEvent",
    "OptinEvent",
    "PolicyEnforcementEvent",
    "PostbackEvent",
    "ReactionEvent",
    "ReadEvent",
    "Referral",
    "ReferralEvent",
    "StoryInsightsEvent",
    "UnknownEvent",
    "event_from_json",
    "jsonable",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Deeper than any real Meta payload; bounds recursion on hostile or cyclic input.
_MAX_DEPTH = 64


class EventKind(StrEnum):
    MESSAGE = "message"
    MESSAGE_ECHO = "message_echo"
    MESSAGE_DELETED = "message_deleted"
    MESSAGE_EDIT = "message_edit"
    REACTION = "reaction"
    POSTBACK = "postback"
    READ = "read"
    REFERRAL = "referral"
    PASS_THREAD_CONTROL = "pass_thread_control"
    TAKE_THREAD_CONTROL = "take_thread_control"
    REQUEST_THREAD_CONTROL = "request_thread_control"
    APP_ROLES = "app_roles"
    # Messenger only (object "page"): delivery receipts, opt-ins, Page policy notices, account
    # linking (docs/payloads.md).
    DELIVERY = "delivery"
    OPTIN = "optin"
    POLICY_ENFORCEMENT = "policy_enforcement"
    ACCOUNT_LINKING = "account_linking"
    COMMENT = "comment"
    LIVE_COMMENT = "live_comment"
    MENTION = "mention"
    STORY_INSIGHTS = "story_insights"
    UNKNOWN = "unknown"


class EventSource(StrEnum):
    """Where in the entry the item was found (`Event.source`); plain strings compare equal."""

    MESSAGING = "messaging"
    STANDBY = "standby"
    CHANGES = "changes"


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-serialisable copy of `value`: enums by value, dataclasses as dicts, tuples as lists.

    Never raises: dict keys become strings, non-finite floats and foreign objects become their
    `repr`, and nesting deeper than any real payload is cut off (this also stops cycles).
    """
    if isinstance(value, Enum):  # before str: StrEnum members become plain strings
        return jsonable(value.value, _depth)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if isfinite(value) else repr(value)
    if _depth >= _MAX_DEPTH:
        return "<nested too deeply>"
    if isinstance(value, dict):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, _depth + 1) for v in value]
    if hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name), _depth + 1) for f in fields(value)}
    return repr(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Referral:
    """How the customer arrived: CTD ad, ig.me link, Shops product (docs/platform.md 2.2, 2.6).

    `source` is upper-cased and `SHORTLINK` is folded into `SHORTLINKS`: Meta's pages spell it
    both ways. The original spelling stays in the event's `raw`.
    """

    ref: str | None = None
    source: str | None = None
    type: str | None = None
    ad_id: str | None = None
    ads_context_data: dict[str, Any] = field(default_factory=dict, hash=False)
    product_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    """One `message.attachments[]` element of any type (docs/platform.md 2.2); nothing is
    downloaded.

    `url` is the first of `payload.url`, `payload.story_media_url` (`ig_story`), the
    attachment's own `url` or `URL` (Messenger `fallback`, old spelling); `title` likewise from
    the payload or the attachment. `payload` keeps the whole payload for types not modelled here
    (template, booking, ...).
    """

    type: str
    url: str | None = None
    title: str | None = None
    sticker_id: str | None = None
    reel_video_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Fields every event has; see the subclasses for the per-kind fields.

    `account_id` is the business account, `customer_id` the customer's IGSID or PSID (None
    when the event has no customer or Meta did not say who it was), `dedup_key` is stable across
    redeliveries and across `messaging[]`/`standby[]`, and `raw` is the item exactly as received
    (for IG Login's layout with `field`/`value` directly under the entry: `{"field": ...,
    "value": ...}`).

    `is_self` marks Meta's self messaging: the business messaging its own account to preview
    its automation. The "customer" is then the business's own scoped id: deliver to the bot,
    never count it as a customer (no 24-hour window applies).
    """

    KINDS: ClassVar[frozenset[EventKind]] = frozenset(EventKind)

    kind: EventKind
    object: str
    source: str
    account_id: str
    customer_id: str | None = None
    timestamp_ms: int
    dedup_key: str
    is_self: bool = False
    raw: dict[str, Any] = field(default_factory=dict, hash=False, repr=False)

    def __post_init__(self) -> None:
        # Accept plain strings from callers, but always hold the enum member.
        object.__setattr__(self, "kind", EventKind(self.kind))
        if self.kind not in self.KINDS:
            allowed = ", ".join(sorted(self.KINDS))
            raise ValueError(f"{type(self).__name__} cannot have kind {self.kind!r} ({allowed})")
        self._check()

    def _check(self) -> None:
        """Per-class invariants; subclasses override (no super() in slotted dataclasses)."""

    @property
    def occurred_at(self) -> datetime:
        """`timestamp_ms` as an aware UTC datetime (exact to the millisecond)."""
        return _EPOCH + timedelta(milliseconds=self.timestamp_ms)

    def to_json(self) -> dict[str, Any]:
        """Every field as plain JSON values, `kind` first and `raw` (once) last."""
        out = {f.name: jsonable(getattr(self, f.name)) for f in fields(self) if f.name != "raw"}
        out["raw"] = jsonable(self.raw)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEvent(Event):
    """A customer's message (`message`) or the business's own one (`message_echo`).

    For echoes `account_id` is the sender and `customer_id` the recipient; `app_id` is the app
    that sent it (the Instagram Inbox `1217981644879628` for human replies).
    """

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.MESSAGE, EventKind.MESSAGE_ECHO})

    mid: str
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    is_unsupported: bool = False
    quick_reply_payload: str | None = None
    reply_to_mid: str | None = None
    reply_to_story_id: str | None = None
    reply_to_story_url: str | None = None
    referral: Referral | None = None
    is_echo: bool = False
    app_id: str | None = None

    def _check(self) -> None:
        if self.is_echo != (self.kind == EventKind.MESSAGE_ECHO):
            raise ValueError(f"kind {self.kind!r} does not match is_echo={self.is_echo}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDeletedEvent(Event):
    """The customer unsent a message: erase the stored copy (docs/platform.md 2.2, 9)."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.MESSAGE_DELETED})

    mid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageEditEvent(Event):
    """The customer edited a message (at most 5 times; `num_edit` counts from 0).

    Meta often sends only `mid` and `num_edit`: then `text_known` is False and `text` is None,
    which means "the new text is unknown" and never "erase the text". With `text_known` True,
    `text` is the new text ("" included).
    """

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.MESSAGE_EDIT})

    mid: str
    text: str | None = None
    text_known: bool = False
    num_edit: int | None = None

    def _check(self) -> None:
        if self.text_known != (self.text is not None):
            raise ValueError(f"text_known={self.text_known} but text is {self.text!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionEvent(Event):
    """`mid` is the message reacted to; `unreact` carries no reaction/emoji."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.REACTION})

    mid: str
    action: str
    reaction: str | None = None
    emoji: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PostbackEvent(Event):
    """A button tap; standby copies have no `payload`, and old API versions no `mid`."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.POSTBACK})

    mid: str | None = None
    title: str | None = None
    payload: str | None = None
    referral: Referral | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadEvent(Event):
    """IG sends `mid`; Messenger sends `watermark` (normalised to epoch ms). A read without
    `sender` (seen in real deliveries) has no `customer_id`: only its `mid` tells whose it is."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.READ})

    mid: str | None = None
    watermark: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferralEvent(Event):
    """An existing thread re-opened through an ig.me link (re-opens the 24-hour window)."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.REFERRAL})

    referral: Referral


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoverEvent(Event):
    """pass / take / request thread control; app ids normalised to strings
    (docs/platform.md 2.8)."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset(
        {
            EventKind.PASS_THREAD_CONTROL,
            EventKind.TAKE_THREAD_CONTROL,
            EventKind.REQUEST_THREAD_CONTROL,
        }
    )

    previous_owner_app_id: str | None = None
    new_owner_app_id: str | None = None
    requested_owner_app_id: str | None = None
    metadata: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AppRolesEvent(Event):
    """A Page admin changed app roles: app id → roles (`primary_receiver`, ...)."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.APP_ROLES})

    roles: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryEvent(Event):
    """Messenger: the customer's device received the Page's messages (`mids`, possibly empty)
    and every message before `watermark` (epoch ms)."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.DELIVERY})

    mids: tuple[str, ...] = ()
    watermark: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OptinEvent(Event):
    """Messenger opt-in: a plugin (`ref`, and `user_ref` instead of a sender for the checkbox
    plugin: then there is no `customer_id`) or a marketing-message / one-time notification
    opt-in (`optin_type`, `payload`, `token`, `token_expires_ms`, `title`)."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.OPTIN})

    optin_type: str | None = None
    ref: str | None = None
    user_ref: str | None = None
    payload: str | None = None
    token: str | None = None
    token_expires_ms: int | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyEnforcementEvent(Event):
    """Meta warned, blocked or unblocked the Page for policy reasons (no customer); `reason`
    is absent on `unblock`."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.POLICY_ENFORCEMENT})

    action: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountLinkingEvent(Event):
    """Messenger account linking: `status` is `linked` (with the `authorization_code` your
    login page passed through) or `unlinked`."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.ACCOUNT_LINKING})

    status: str
    authorization_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommentEvent(Event):
    """A comment or live comment on the account's media; `customer_id` is the commenter.

    The Instagram-Login layout may name the commenter by `username` only: then `customer_id`
    is None (no conversation can be made for it) and the comment is known by `comment_id`.
    """

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.COMMENT, EventKind.LIVE_COMMENT})

    comment_id: str
    parent_id: str | None = None
    text: str | None = None
    username: str | None = None
    media_id: str | None = None
    media_product_type: str | None = None
    ad_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MentionEvent(Event):
    """The account was @mentioned in a caption (no `comment_id`) or in a comment."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.MENTION})

    comment_id: str | None = None
    media_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StoryInsightsEvent(Event):
    """Metrics of one of the account's stories, sent once when it expires (no customer)."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.STORY_INSIGHTS})

    media_id: str
    metrics: dict[str, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """An item the parser did not understand, kept so it can be stored and looked at."""

    KINDS: ClassVar[frozenset[EventKind]] = frozenset({EventKind.UNKNOWN})

    reason: str


AnyEvent = (
    MessageEvent
    | MessageDeletedEvent
    | MessageEditEvent
    | ReactionEvent
    | PostbackEvent
    | ReadEvent
    | ReferralEvent
    | HandoverEvent
    | AppRolesEvent
    | DeliveryEvent
    | OptinEvent
    | PolicyEnforcementEvent
    | AccountLinkingEvent
    | CommentEvent
    | MentionEvent
    | StoryInsightsEvent
    | UnknownEvent
)


_EVENT_CLASSES: tuple[type[Event], ...] = (
    MessageEvent,
    MessageDeletedEvent,
    MessageEditEvent,
    ReactionEvent,
    PostbackEvent,
    ReadEvent,
    ReferralEvent,
    HandoverEvent,
    AppRolesEvent,
    DeliveryEvent,
    OptinEvent,
    PolicyEnforcementEvent,
    AccountLinkingEvent,
    CommentEvent,
    MentionEvent,
    StoryInsightsEvent,
    UnknownEvent,
)
_CLASS_OF_KIND: dict[EventKind, type[Event]] = {
    kind: cls for cls in _EVENT_CLASSES for kind in cls.KINDS
}
assert set(_CLASS_OF_KIND) == set(EventKind), "every kind has exactly one event class"


def _referral_from_json(value: Any) -> Referral | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"referral must be an object or null, got {type(value).__name__}")
    return Referral(**value)


def _attachments_from_json(value: Any) -> tuple[Attachment, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"attachments must be an array, got {type(value).__name__}")
    out = []
    for item in value:
        if not isinstance(item, dict):
            raise ValueError(f"an attachment must be an object, got {type(item).__name__}")
        out.append(Attachment(**item))
    return tuple(out)


def _strings_from_json(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be an array of strings")
    return tuple(value)


def _roles_from_json(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ValueError(f"roles must be an object, got {type(value).__name__}")
    return {str(app): tuple(roles) for app, roles in value.items()}


# Fields whose JSON form differs from the Python value (tuples, nested dataclasses).
_FIELD_FROM_JSON: dict[str, Callable[[Any], Any]] = {
    "attachments": _attachments_from_json,
    "mids": lambda value: _strings_from_json("mids", value),
    "referral": _referral_from_json,
    "roles": _roles_from_json,
}


def event_from_json(data: dict[str, Any]) -> AnyEvent:
    """The event that `to_json()` produced `data` from: `event_from_json(e.to_json()) == e`.

    Strict: an unknown kind, a missing required field or a field the kind does not have raise
    `ValueError` naming it (a stored event must come back exactly or not at all).
    """
    if not isinstance(data, dict):
        raise ValueError(f"an event must be an object, got {type(data).__name__}")
    raw_kind = data.get("kind")
    if not isinstance(raw_kind, str) or raw_kind not in set(EventKind):
        raise ValueError(f"unknown event kind {raw_kind!r}")
    kind = EventKind(raw_kind)
    cls = _CLASS_OF_KIND[kind]
    names = {f.name for f in fields(cls)}
    extra = sorted(set(data) - names)
    if extra:
        raise ValueError(f"{kind} event has no field(s) {', '.join(extra)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        convert = _FIELD_FROM_JSON.get(name)
        try:
            values[name] = convert(value) if convert is not None else value
        except TypeError as exc:
            raise ValueError(f"{kind} event field {name}: {exc}") from None
    source = values.get("source")
    if isinstance(source, str) and source in set(EventSource):  # the parser's enum
        values["source"] = EventSource(source)
    try:
        return cast(AnyEvent, cls(**values))
    except TypeError as exc:
        raise ValueError(f"{kind} event: {exc}") from None
