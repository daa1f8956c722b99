"""The simulated world's data: threads, messages, comments, app subscription state, and the
values every action returns (`Outcome` with its `WebhookEvent`s)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Channel = Literal["messaging", "standby", "changes"]
# Where a customer writes: the Instagram account's Direct messages, or the Page on Messenger.
CustomerChannel = Literal["instagram", "messenger"]


@dataclass(frozen=True)
class WebhookEvent:
    """One event for one of our apps: a `messaging`/`standby` item or a `changes` item."""

    app_id: str
    channel: Channel
    payload: dict[str, Any]
    time: float  # world seconds; the entry's `time`
    object: str = "instagram"  # the body's `object`: "page" for a Messenger thread
    entry_id: str | None = None  # the entry's `id` (the Page for Messenger); None: the account


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    webhooks: tuple[WebhookEvent, ...] = ()


@dataclass
class Message:
    """A message in a thread, from the customer's point of view: `in` = received by the customer,
    `out` = sent by the customer."""

    mid: str
    direction: Literal["in", "out"]
    timestamp: float
    text: str | None = None
    app_id: str | None = None  # sending app of an `in` message
    attachments: list[dict[str, Any]] = field(default_factory=list)
    quick_replies: list[dict[str, Any]] = field(default_factory=list)
    quick_reply_payload: str | None = None
    reply_to: str | None = None
    tag: str | None = None
    messaging_type: str | None = None
    via: str = "send_api"  # send_api | private_reply | inbox | customer | postback
    comment_id: str | None = None
    deleted: bool = False
    edits: int = 0
    customer_reaction: str | None = None
    business_reaction: str | None = None


@dataclass
class Comment:
    comment_id: str
    igsid: str
    text: str
    media_id: str
    timestamp: float
    parent_id: str | None = None
    private_reply_mid: str | None = None


@dataclass
class Thread:
    igsid: str
    username: str
    created_at: float
    owner: str | None = None
    expires_at: float | None = None
    last_customer_at: float | None = None  # opens the messaging window
    updated_at: float = 0.0
    messages: list[Message] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    pending_ref: str | None = None
    seen_mid: str | None = None
    typing: bool = False
    channel: CustomerChannel = "instagram"  # a Messenger thread's customer id is a PSID


@dataclass
class AppState:
    """Runtime subscription state of one of our apps (changed by Graph calls at run time)."""

    webhook_url: str | None
    subscribed: bool
    fields: frozenset[str]
    # What `debug_token` says about the app's Page token (the doctor's token checks): tests
    # make a token invalid or drop a permission to see the failure reported.
    token_valid: bool = True
    scopes: frozenset[str] = frozenset(
        {
            "instagram_basic",
            "instagram_manage_messages",
            "pages_manage_metadata",
            "pages_messaging",
            "pages_show_list",
        }
    )
