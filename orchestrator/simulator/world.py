"""The simulated Meta world: one Instagram business account, its apps and its customers.

Pure rules, no I/O (PLATFORM sections 1.3, 2, 4, 5, 7). Every action returns an `Outcome`: the
answer Meta would give and the webhooks Meta would send. The server and the webhook sender do
the I/O. Time comes from an injectable clock plus an offset moved by `advance()`, so windows and
expiries are testable without sleeping.
"""

from __future__ import annotations

import base64
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

INSTAGRAM_INBOX_APP_ID = "1217981644879628"
PAGE_INBOX_APP_ID = "263902037430900"
INBOX_APP_IDS = (INSTAGRAM_INBOX_APP_ID, PAGE_INBOX_APP_ID)

DAY_S = 86_400.0
WINDOW_S = DAY_S  # standard messaging window
HUMAN_AGENT_WINDOW_S = 7 * DAY_S
CONTROL_TTL_S = DAY_S  # control expires after 24 h without a customer message
MAX_EXTEND_S = 7 * DAY_S
PRIVATE_REPLY_WINDOW_S = 7 * DAY_S
MAX_TEXT_BYTES = 1000
MAX_QUICK_REPLIES = 13
QUICK_REPLY_TITLE_CHARS = 20
MAX_EDITS = 5

RETIRED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"})
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY"})
SENDER_ACTIONS = frozenset({"react", "unreact", "mark_seen", "typing_on", "typing_off"})
REACTIONS: dict[str, str] = {
    "love": "\u2764\ufe0f",
    "like": "\U0001f44d",
    "laugh": "\U0001f606",
    "wow": "\U0001f62e",
    "sad": "\U0001f622",
    "angry": "\U0001f620",
}

# Webhook field each event needs the receiving app to be subscribed to (PLATFORM 2, 10).
EVENT_FIELDS: dict[str, str] = {
    "message": "messages",
    "reaction": "message_reactions",
    "postback": "messaging_postbacks",
    "read": "messaging_seen",
    "referral": "messaging_referral",
    "message_edit": "message_edits",
    "pass_thread_control": "messaging_handover",
    "take_thread_control": "messaging_handover",
    "request_thread_control": "messaging_handover",
}
ALL_FIELDS = frozenset(
    {
        "messages",
        "message_reactions",
        "messaging_postbacks",
        "messaging_seen",
        "messaging_referral",
        "messaging_optins",
        "messaging_handover",
        "message_edits",
        "standby",
        "comments",
        "live_comments",
        "mentions",
    }
)
# Doubtful spellings Meta is said to accept (PLATFORM 2.6, 2.8, 11).
FIELD_ALIASES = {
    "messaging_handovers": "messaging_handover",
    "messaging_referrals": "messaging_referral",
    "message_edit": "message_edits",
}

Channel = Literal["messaging", "standby", "changes"]


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SimApp:
    name: str
    app_id: str
    secret: str
    token: str
    webhook_url: str | None
    is_default: bool = False
    can_take: bool = False
    subscribed: bool = True


@dataclass(frozen=True)
class SimConfig:
    account_id: str
    page_id: str
    apps: tuple[SimApp, ...]
    api_version: str = "v25.0"
    rate_limit_per_s: float = 100.0
    routing_enabled: bool = True

    def __post_init__(self) -> None:
        ids = [a.app_id for a in self.apps]
        if len(set(ids)) != len(ids):
            raise ValueError("SimConfig.apps: duplicate app_id")
        if set(ids) & set(INBOX_APP_IDS):
            raise ValueError("SimConfig.apps: app_id collides with an Inbox app id")
        tokens = [a.token for a in self.apps]
        if len(set(tokens)) != len(tokens) or "" in tokens:
            raise ValueError("SimConfig.apps: tokens must be non-empty and unique")
        if sum(a.is_default for a in self.apps) > 1:
            raise ValueError("SimConfig.apps: at most one app may be the default app")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SimConfig:
        """Build from plain data (YAML/JSON), e.g. `{"account_id":..., "apps":[{...}]}`."""
        apps = tuple(SimApp(**dict(a)) for a in data.get("apps", ()))
        rest = {k: v for k, v in data.items() if k != "apps"}
        return cls(apps=apps, **rest)


# ---------------------------------------------------------------- results and errors


class SimulatorError(Exception):
    """Base of the simulator's errors."""


class GraphError(SimulatorError):
    """A Graph API refusal, rendered as Meta's error body."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        error_type: str = "OAuthException",
        http_status: int = 400,
        is_transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.error_type = error_type
        self.http_status = http_status
        self.is_transient = is_transient

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        err: dict[str, Any] = {"message": self.message, "type": self.error_type}
        if self.is_transient:
            err["is_transient"] = True
        err["code"] = self.code
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        err["fbtrace_id"] = fbtrace_id
        return {"error": err}


class SimError(SimulatorError):
    """A bad request to the control API (unknown mid, closed window for the Inbox, ...)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def invalid_token() -> GraphError:
    return GraphError(190, "Invalid OAuth access token.")


def transient_error() -> GraphError:
    return GraphError(
        2,
        "An unexpected error has occurred. Please retry your request later.",
        http_status=500,
        is_transient=True,
    )


def rate_limited() -> GraphError:
    return GraphError(613, "(#613) Calls to this api have exceeded the rate limit.")


def not_owner() -> GraphError:
    return GraphError(100, "(#100) This person is not the owner of the thread", subcode=2534037)


def outside_window() -> GraphError:
    return GraphError(10, "(#10) This message is sent outside of allowed window.", subcode=2534022)


def no_matching_user() -> GraphError:
    return GraphError(100, "(#100) No matching user found", subcode=2018001)


def param_error(text: str) -> GraphError:
    return GraphError(100, f"(#100) {text}")


def private_reply_used() -> GraphError:
    return GraphError(
        10, "(#10) This comment has already been replied to privately.", subcode=2534025
    )


def take_unsupported() -> GraphError:
    return GraphError(
        27,
        "(#27) Take thread control is not supported when Conversation Routing is not enabled",
        subcode=2534123,
    )


def take_not_allowed() -> GraphError:
    return GraphError(
        10,
        "(#10) This app is not allowed to take control of conversations. Allow it in Page"
        " Settings > Advanced Messaging.",
    )


def unsupported_request(method: str, node: str) -> GraphError:
    return GraphError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be"
        " loaded due to missing permissions, or does not support this operation. Please read the"
        " Graph API documentation at https://developers.facebook.com/docs/graph-api",
        subcode=33,
        error_type="GraphMethodException",
    )


@dataclass(frozen=True)
class WebhookEvent:
    """One event for one of our apps: a `messaging`/`standby` item or a `changes` item."""

    app_id: str
    channel: Channel
    payload: dict[str, Any]
    time: float  # world seconds; the entry's `time`


@dataclass(frozen=True)
class Outcome:
    result: dict[str, Any]
    webhooks: tuple[WebhookEvent, ...] = ()


# ---------------------------------------------------------------- thread state


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


@dataclass
class AppState:
    """Runtime subscription state of one of our apps (changed by Graph calls at run time)."""

    webhook_url: str | None
    subscribed: bool
    fields: frozenset[str]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def normalise_fields(raw: Iterable[str]) -> frozenset[str]:
    out = set()
    for name in raw:
        name = name.strip()
        if not name:
            continue
        name = FIELD_ALIASES.get(name, name)
        if name not in ALL_FIELDS:
            raise param_error(
                f"Param subscribed_fields must be one of {{{', '.join(sorted(ALL_FIELDS))}}}"
                f' - got "{name}"'
            )
        out.add(name)
    return frozenset(out)


# ---------------------------------------------------------------- the world


class World:
    def __init__(self, config: SimConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._nonce = int(clock() * 1000) % 10**9  # keeps ids unique across simulator restarts
        self._seq = 0  # never reset, so ids stay unique across `reset()`
        inbox_names = {INSTAGRAM_INBOX_APP_ID: "Instagram Inbox", PAGE_INBOX_APP_ID: "Page Inbox"}
        self.apps: dict[str, SimApp] = {a.app_id: a for a in config.apps}
        for app_id, name in inbox_names.items():
            self.apps[app_id] = SimApp(name, app_id, "", "", None, can_take=True, subscribed=False)
        self._by_token = {a.token: a for a in config.apps}
        self.threads: dict[str, Thread] = {}
        self._comments: dict[str, Comment] = {}
        self._calls: dict[str, deque[float]] = {}
        self.app_states: dict[str, AppState] = {}
        self._offset = 0.0
        self.reset(apps=True)

    def reset(self, *, apps: bool = False) -> None:
        """Forget customers, threads and the clock offset. App registrations made at run time
        (webhook URLs, subscriptions) survive unless `apps=True`: an orchestrator registers them
        once at start-up, while QA resets between scenarios."""
        self._offset = 0.0
        self.threads = {}
        self._comments = {}
        self._calls = {}
        if apps:
            self.app_states = {
                a.app_id: AppState(
                    a.webhook_url, a.subscribed, ALL_FIELDS if a.subscribed else frozenset()
                )
                for a in self.config.apps
            }

    # ------------------------------------------------------------ clock and lookups

    @property
    def now(self) -> float:
        return self._clock() + self._offset

    def _ms(self) -> int:
        return int(self.now * 1000)

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise SimError("the clock only moves forward")
        self._offset += seconds
        return self.now

    @property
    def our_apps(self) -> tuple[SimApp, ...]:
        return self.config.apps

    @property
    def default_app_id(self) -> str:
        """The routing default app; the Instagram Inbox when none of ours is the default."""
        for app in self.config.apps:
            if app.is_default:
                return app.app_id
        return INSTAGRAM_INBOX_APP_ID

    def app_by_token(self, token: str | None) -> SimApp | None:
        return self._by_token.get(token) if token else None

    def app_by_app_token(self, token: str | None) -> SimApp | None:
        """An app access token `<app_id>|<secret>`."""
        if not token or "|" not in token:
            return None
        app_id, _, secret = token.partition("|")
        app = self.apps.get(app_id)
        if app and app.app_id not in INBOX_APP_IDS and app.secret == secret:
            return app
        return None

    def app_name(self, app_id: str | None) -> str | None:
        app = self.apps.get(app_id) if app_id else None
        return app.name if app else None

    def _next(self, kind: str) -> str:
        self._seq += 1
        return _b64(f"ig_{kind}:{self.config.account_id}:{self._nonce}:{self._seq}")

    def _new_mid(self) -> str:
        return self._next("message")

    def _new_comment_id(self) -> str:
        self._seq += 1
        return str(17_800_000_000_000_000 + self._nonce * 1000 + self._seq)

    def _refresh(self, thread: Thread) -> Thread:
        """Apply control expiry: without customer messages, control ends after 24 h (or the
        extended expiry) and the thread goes idle."""
        if thread.owner is not None and thread.expires_at is not None:
            if self.now > thread.expires_at:
                thread.owner = None
                thread.expires_at = None
        return thread

    def thread(self, igsid: str) -> Thread | None:
        thread = self.threads.get(igsid)
        return self._refresh(thread) if thread else None

    def _customer_thread(self, igsid: str, username: str | None = None) -> Thread:
        if not igsid:
            raise SimError("igsid is required")
        thread = self.threads.get(igsid)
        if thread is None:
            thread = Thread(igsid, username or f"customer_{igsid[-6:]}", self.now)
            thread.updated_at = self.now
            self.threads[igsid] = thread
        elif username:
            thread.username = username
        return self._refresh(thread)

    def _graph_thread(self, igsid: str | None) -> Thread:
        thread = self.thread(igsid) if igsid else None
        if thread is None:
            raise no_matching_user()
        return thread

    def _find_message(self, thread: Thread, mid: str) -> Message:
        for msg in thread.messages:
            if msg.mid == mid:
                return msg
        raise SimError(f"no message {mid!r} in the thread of {thread.igsid}", status=404)

    # ------------------------------------------------------------ rate limit

    def check_rate(self, app_id: str) -> None:
        """Count one Graph call; refuse (613) beyond `rate_limit_per_s` calls in the last second.
        Refused calls are not counted."""
        calls = self._calls.setdefault(app_id, deque())
        now = self.now
        while calls and calls[0] <= now - 1.0:
            calls.popleft()
        if len(calls) >= self.config.rate_limit_per_s:
            raise rate_limited()
        calls.append(now)

    # ------------------------------------------------------------ webhook fan-out

    def _wants(self, app_id: str, field_name: str) -> bool:
        state = self.app_states.get(app_id)
        return bool(state and state.subscribed and field_name in state.fields)

    def _event(self, igsid: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "sender": {"id": igsid},
            "recipient": {"id": self.config.account_id},
            "timestamp": self._ms(),
            key: body,
        }

    def _fan_out(
        self, thread: Thread, key: str, body: dict[str, Any], standby_body: dict[str, Any] | None
    ) -> tuple[WebhookEvent, ...]:
        """A customer event: the owner (or the default app while idle) gets it in `messaging[]`,
        every other subscribed app of ours a copy in `standby[]`. Routing off: everyone gets
        `messaging[]` (PLATFORM 1.3 "default behavior")."""
        primary = thread.owner or self.default_app_id
        out = []
        for app in self.our_apps:
            if not self.config.routing_enabled or app.app_id == primary:
                if self._wants(app.app_id, EVENT_FIELDS[key]):
                    event = self._event(thread.igsid, key, body)
                    out.append(WebhookEvent(app.app_id, "messaging", event, self.now))
            elif self._wants(app.app_id, "standby"):
                event = self._event(thread.igsid, key, standby_body or body)
                out.append(WebhookEvent(app.app_id, "standby", event, self.now))
        return tuple(out)

    def _handover(
        self, to_app: str | None, igsid: str, key: str, body: dict[str, Any]
    ) -> tuple[WebhookEvent, ...]:
        if to_app is None or to_app not in self.app_states:
            return ()  # an Inbox, or idle: no webhook
        if not self._wants(to_app, EVENT_FIELDS[key]):
            return ()
        return (WebhookEvent(to_app, "messaging", self._event(igsid, key, body), self.now),)

    def _echo(self, app_id: str, thread: Thread, msg: Message, channel: Channel) -> WebhookEvent:
        message: dict[str, Any] = {"mid": msg.mid}
        if msg.text is not None:
            message["text"] = msg.text
        if msg.attachments:
            message["attachments"] = msg.attachments
        message["is_echo"] = True
        message["app_id"] = msg.app_id
        event = {
            "sender": {"id": self.config.account_id},
            "recipient": {"id": thread.igsid},
            "timestamp": self._ms(),
            "message": message,
        }
        return WebhookEvent(app_id, channel, event, self.now)

    # ------------------------------------------------------------ customer actions

    def _customer_activity(self, thread: Thread) -> None:
        """A customer message (or CTA tap, reaction, ig.me referral): reopens the 24-hour window
        and keeps the owner's control alive for another 24 h.

        PLATFORM 1.3: a thread is idle only without a customer message for 24 h or after a
        release, so a customer writing to an idle thread makes it active with the default app in
        control: `thread_owner` names it, a later take notifies it, pass and request follow the
        owner rules. Routing off ("default behavior"): no default app takes control."""
        now = self.now
        thread.last_customer_at = now
        thread.updated_at = now
        if thread.owner is None and self.config.routing_enabled:
            thread.owner = self.default_app_id
        if thread.owner is not None:
            thread.expires_at = max(thread.expires_at or now, now + CONTROL_TTL_S)

    def say(
        self,
        igsid: str,
        text: str | None,
        quick_reply_payload: str | None = None,
        *,
        reply_to: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        username: str | None = None,
    ) -> Outcome:
        if not text and not attachments:
            raise SimError("text or attachments is required")
        thread = self._customer_thread(igsid, username)
        if reply_to is not None:
            self._find_message(thread, reply_to)
        msg = Message(
            self._new_mid(),
            "out",
            self.now,
            text=text or None,
            attachments=list(attachments or []),
            quick_reply_payload=quick_reply_payload,
            reply_to=reply_to,
            via="customer",
        )
        thread.messages.append(msg)
        self._customer_activity(thread)
        body: dict[str, Any] = {"mid": msg.mid}
        if msg.text is not None:
            body["text"] = msg.text
        if msg.attachments:
            body["attachments"] = msg.attachments
        if quick_reply_payload is not None:
            body["quick_reply"] = {"payload": quick_reply_payload}
        if reply_to is not None:
            body["reply_to"] = {"mid": reply_to}
        if thread.pending_ref is not None:  # ig.me link on a new thread: ref in the first message
            body["referral"] = {
                "ref": thread.pending_ref,
                "source": "SHORTLINKS",
                "type": "OPEN_THREAD",
            }
            thread.pending_ref = None
        return Outcome({"mid": msg.mid}, self._fan_out(thread, "message", body, None))

    def react(self, igsid: str, mid: str, reaction: str) -> Outcome:
        thread = self._customer_thread(igsid)
        msg = self._find_message(thread, mid)
        if reaction in REACTIONS:
            name, emoji = reaction, REACTIONS[reaction]
        else:
            named = {e: n for n, e in REACTIONS.items()}
            name, emoji = named.get(reaction, "other"), reaction
        msg.customer_reaction = name
        self._customer_activity(thread)
        body = {"mid": mid, "action": "react", "reaction": name, "emoji": emoji}
        return Outcome(
            {"mid": mid, "reaction": name}, self._fan_out(thread, "reaction", body, None)
        )

    def unreact(self, igsid: str, mid: str) -> Outcome:
        thread = self._customer_thread(igsid)
        msg = self._find_message(thread, mid)
        msg.customer_reaction = None
        body = {"mid": mid, "action": "unreact"}
        return Outcome({"mid": mid}, self._fan_out(thread, "reaction", body, None))

    def unsend(self, igsid: str, mid: str) -> Outcome:
        thread = self._customer_thread(igsid)
        msg = self._find_message(thread, mid)
        if msg.direction != "out":
            raise SimError("a customer can only unsend their own messages")
        if msg.deleted:
            raise SimError(f"message {mid!r} is already unsent")
        msg.deleted = True
        msg.text = None
        msg.attachments = []
        body = {"mid": mid, "is_deleted": True}
        return Outcome({"mid": mid}, self._fan_out(thread, "message", body, None))

    def edit(self, igsid: str, mid: str, text: str) -> Outcome:
        thread = self._customer_thread(igsid)
        msg = self._find_message(thread, mid)
        if msg.direction != "out" or msg.deleted:
            raise SimError("a customer can only edit their own, not unsent, messages")
        if msg.edits >= MAX_EDITS:
            raise SimError(f"a message can be edited at most {MAX_EDITS} times")
        msg.edits += 1
        msg.text = text
        body = {"mid": mid, "text": text, "num_edit": msg.edits}
        return Outcome(
            {"mid": mid, "num_edit": msg.edits}, self._fan_out(thread, "message_edit", body, None)
        )

    def postback(self, igsid: str, payload: str, title: str) -> Outcome:
        thread = self._customer_thread(igsid)
        mid = self._new_mid()
        thread.messages.append(
            Message(mid, "out", self.now, text=title, quick_reply_payload=payload, via="postback")
        )
        self._customer_activity(thread)
        body = {"mid": mid, "title": title, "payload": payload}
        standby = {"mid": mid, "title": title}  # standby postbacks carry no payload
        return Outcome({"mid": mid}, self._fan_out(thread, "postback", body, standby))

    def read(self, igsid: str, mid: str | None = None) -> Outcome:
        """The customer saw the business's messages (up to `mid`, default the last one)."""
        thread = self._customer_thread(igsid)
        if mid is None:
            received = [m for m in thread.messages if m.direction == "in"]
            if not received:
                raise SimError("the customer has received nothing to read")
            mid = received[-1].mid
        else:
            self._find_message(thread, mid)
        return Outcome({"mid": mid}, self._fan_out(thread, "read", {"mid": mid}, None))

    def open_link(self, igsid: str, ref: str) -> Outcome:
        """The customer opens an ig.me link with `ref`: an existing thread gets a `referral`
        event (and, like a message, a fresh window and the default app in control if idle); a
        new thread carries the ref in its first message."""
        existing = igsid in self.threads and bool(self.threads[igsid].messages)
        thread = self._customer_thread(igsid)
        if not existing:
            thread.pending_ref = ref
            return Outcome({"ref": ref, "pending": True})
        self._customer_activity(thread)
        body = {"ref": ref, "source": "SHORTLINKS", "type": "OPEN_THREAD"}
        return Outcome(
            {"ref": ref, "pending": False}, self._fan_out(thread, "referral", body, None)
        )

    def comment(
        self,
        igsid: str,
        text: str,
        media_id: str | None = None,
        *,
        parent_id: str | None = None,
        username: str | None = None,
    ) -> Outcome:
        """A comment on a post: `changes[]` (field `comments`) to every subscribed app."""
        thread = self._customer_thread(igsid, username)
        comment = Comment(
            self._new_comment_id(),
            igsid,
            text,
            media_id or "17900000000000001",
            self.now,
            parent_id,
        )
        thread.comments.append(comment)
        self._comments[comment.comment_id] = comment
        # Commenting on a post reopens the messaging window (PLATFORM 4.5), not thread control.
        thread.last_customer_at = self.now
        thread.updated_at = self.now
        value: dict[str, Any] = {
            "from": {"id": igsid, "username": thread.username},
            "comment_id": comment.comment_id,
            "text": text,
            "media": {"id": comment.media_id, "media_product_type": "FEED"},
        }
        if parent_id is not None:
            value["parent_id"] = parent_id
        out = tuple(
            WebhookEvent(a.app_id, "changes", {"field": "comments", "value": value}, self.now)
            for a in self.our_apps
            if self._wants(a.app_id, "comments")
        )
        return Outcome({"comment_id": comment.comment_id}, out)

    # ------------------------------------------------------------ Meta-side humans (Inbox)

    def _inbox_thread(self, igsid: str, inbox_app_id: str) -> Thread:
        if inbox_app_id not in INBOX_APP_IDS:
            raise SimError(f"{inbox_app_id!r} is not an Inbox app id")
        thread = self.thread(igsid)
        if thread is None:
            raise SimError(f"no conversation with customer {igsid!r}", 404)
        return thread

    def inbox_take(
        self, igsid: str, metadata: str | None = None, *, inbox_app_id: str = INSTAGRAM_INBOX_APP_ID
    ) -> Outcome:
        """A human moves the thread to the Inbox: take webhook to the previous owner (often the
        default app, which a customer message put in control); none from an idle thread."""
        thread = self._inbox_thread(igsid, inbox_app_id)
        hooks = self._take(thread, inbox_app_id, metadata)
        return Outcome({"owner_app_id": thread.owner}, hooks)

    def inbox_reply(
        self, igsid: str, text: str, *, inbox_app_id: str = INSTAGRAM_INBOX_APP_ID
    ) -> Outcome:
        """A human replies from the Inbox: the Inbox takes control if it has not (PLATFORM 1.3,
        unconfirmed), the customer receives the text, our apps see a standby echo (2.9)."""
        thread = self._inbox_thread(igsid, inbox_app_id)
        if not text:
            raise SimError("text is required")
        last = thread.last_customer_at
        if last is None or self.now - last > HUMAN_AGENT_WINDOW_S:
            raise SimError("the Inbox cannot reply: 7 days since the customer's last message", 409)
        hooks = list(self._take(thread, inbox_app_id, None)) if thread.owner != inbox_app_id else []
        msg = Message(self._new_mid(), "in", self.now, text=text, app_id=inbox_app_id, via="inbox")
        thread.messages.append(msg)
        thread.updated_at = self.now
        for app in self.our_apps:
            if self._wants(app.app_id, "standby"):
                hooks.append(self._echo(app.app_id, thread, msg, "standby"))
        return Outcome({"mid": msg.mid}, tuple(hooks))

    def inbox_pass(
        self,
        igsid: str,
        target_app_id: str | None = None,
        metadata: str | None = None,
        *,
        inbox_app_id: str = INSTAGRAM_INBOX_APP_ID,
    ) -> Outcome:
        thread = self._inbox_thread(igsid, inbox_app_id)
        if thread.owner not in (None, inbox_app_id):
            raise SimError("the Inbox does not own this thread", 409)
        try:
            outcome = self.pass_thread_control(inbox_app_id, igsid, target_app_id, metadata)
        except GraphError as exc:
            raise SimError(exc.message) from exc
        return Outcome({"owner_app_id": thread.owner}, outcome.webhooks)

    # ------------------------------------------------------------ Send API

    def send(self, app_id: str, params: Mapping[str, Any]) -> Outcome:
        """`POST /{id}/messages` by `app_id` (params already JSON-decoded)."""
        recipient = params.get("recipient")
        if not isinstance(recipient, dict) or not (
            recipient.get("id") or recipient.get("comment_id")
        ):
            raise param_error("The parameter recipient is required")
        if params.get("sender_action") is not None:
            return self._sender_action(app_id, recipient, params)
        message = params.get("message")
        if not isinstance(message, dict) or not message:
            raise param_error("The parameter message is required")
        text, attachments, quick_replies = self._content(message)
        messaging_type = params.get("messaging_type")
        tag = params.get("tag")
        if messaging_type is not None and messaging_type not in MESSAGING_TYPES:
            raise param_error(
                "Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG, UTILITY}"
            )
        if tag is not None:
            if tag in RETIRED_TAGS:
                raise param_error(f"The tag {tag} is no longer supported.")
            if tag != "HUMAN_AGENT":
                raise param_error(f'Param tag must be one of {{HUMAN_AGENT}} - got "{tag}"')
        elif messaging_type == "MESSAGE_TAG":
            raise param_error("The parameter tag is required when messaging_type is MESSAGE_TAG")
        control = params.get("thread_control")
        if control is not None:
            if not isinstance(control, dict) or control.get("control_type") not in (
                "pass",
                "release",
            ):
                raise param_error(
                    "Param thread_control[control_type] must be one of {pass, release}"
                )
        reply_to = params.get("reply_to")
        reply_mid = reply_to.get("mid") if isinstance(reply_to, dict) else None

        if recipient.get("comment_id"):
            return self._private_reply(app_id, str(recipient["comment_id"]), text, attachments)

        thread = self._graph_thread(str(recipient["id"]))
        self._check_may_send(app_id, thread)
        limit = HUMAN_AGENT_WINDOW_S if tag == "HUMAN_AGENT" else WINDOW_S
        if thread.last_customer_at is None or self.now - thread.last_customer_at > limit:
            raise outside_window()
        msg = Message(
            self._new_mid(),
            "in",
            self.now,
            text=text,
            app_id=app_id,
            attachments=attachments,
            quick_replies=quick_replies,
            reply_to=reply_mid,
            tag=tag,
            messaging_type=messaging_type,
        )
        thread.messages.append(msg)
        thread.updated_at = self.now
        hooks = (
            [self._echo(app_id, thread, msg, "messaging")]
            if self._wants(app_id, "messages")
            else []
        )
        if control is not None:  # inline thread control (PLATFORM 4.6): send, then run the flow
            if control["control_type"] == "pass":
                target = control.get("app_id") or control.get("target_app_id")
                hooks += self._pass(
                    thread, app_id, _opt_str(target), _opt_str(control.get("metadata"))
                )
            else:
                thread.owner, thread.expires_at = None, None
        return Outcome({"recipient_id": thread.igsid, "message_id": msg.mid}, tuple(hooks))

    def _content(
        self, message: dict[str, Any]
    ) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]:
        text = message.get("text")
        if text is not None and not isinstance(text, str):
            raise param_error("Param message[text] must be a string")
        if text is not None and len(text.encode()) > MAX_TEXT_BYTES:
            raise param_error(
                f"Length of param message[text] must be less than or equal to {MAX_TEXT_BYTES}"
            )
        attachments: list[dict[str, Any]] = []
        if isinstance(message.get("attachment"), dict):
            attachments.append(message["attachment"])
        if isinstance(message.get("attachments"), list):
            attachments.extend(a for a in message["attachments"] if isinstance(a, dict))
        if len(attachments) > 10:
            raise param_error("Param message[attachments] can have at most 10 items")
        if not text and not attachments:
            raise param_error("Param message must have text or an attachment")
        quick_replies: list[dict[str, Any]] = []
        raw_qr = message.get("quick_replies") or []
        if not isinstance(raw_qr, list) or len(raw_qr) > MAX_QUICK_REPLIES:
            raise param_error(
                f"Param message[quick_replies] must have at most {MAX_QUICK_REPLIES} items"
            )
        for qr in raw_qr:
            if not isinstance(qr, dict):
                raise param_error("Param message[quick_replies] must be a list of objects")
            content_type = qr.get("content_type", "text")
            if content_type == "text":
                if not qr.get("title") or not qr.get("payload"):
                    raise param_error(
                        "Quick replies of content_type text need a title and a payload"
                    )
                title = str(qr["title"])[:QUICK_REPLY_TITLE_CHARS]  # cut on the phone
                quick_replies.append(
                    {"content_type": "text", "title": title, "payload": str(qr["payload"])}
                )
            elif content_type == "user_phone_number":
                quick_replies.append({"content_type": content_type})
            else:
                raise param_error(
                    f'Param message[quick_replies][content_type] is invalid: "{content_type}"'
                )
        return text, attachments, quick_replies

    def _may_send(self, app_id: str, thread: Thread) -> bool:
        if thread.owner is not None:
            return thread.owner == app_id
        if not self.config.routing_enabled:
            return True  # routing not configured: uncoordinated replies are possible
        return app_id == self.default_app_id

    def _check_may_send(self, app_id: str, thread: Thread) -> None:
        if not self._may_send(app_id, thread):
            raise not_owner()

    def _private_reply(
        self, app_id: str, comment_id: str, text: str | None, attachments: list[dict[str, Any]]
    ) -> Outcome:
        comment = self._comments.get(comment_id)
        if comment is None:
            raise param_error(f"Invalid comment_id {comment_id}")
        if comment.private_reply_mid is not None:
            raise private_reply_used()
        if self.now - comment.timestamp > PRIVATE_REPLY_WINDOW_S:
            raise outside_window()
        thread = self._customer_thread(comment.igsid)
        msg = Message(
            self._new_mid(),
            "in",
            self.now,
            text=text,
            app_id=app_id,
            attachments=attachments,
            via="private_reply",
            comment_id=comment_id,
        )
        comment.private_reply_mid = msg.mid
        thread.messages.append(msg)
        thread.updated_at = self.now
        hooks = (
            (self._echo(app_id, thread, msg, "messaging"),)
            if self._wants(app_id, "messages")
            else ()
        )
        return Outcome({"recipient_id": comment.igsid, "message_id": msg.mid}, hooks)

    def _sender_action(
        self, app_id: str, recipient: dict[str, Any], params: Mapping[str, Any]
    ) -> Outcome:
        action = params.get("sender_action")
        if action not in SENDER_ACTIONS:
            raise param_error(
                "Param sender_action must be one of"
                " {react, unreact, mark_seen, typing_on, typing_off}"
            )
        thread = self._graph_thread(_opt_str(recipient.get("id")))
        self._check_may_send(app_id, thread)
        if thread.last_customer_at is None or self.now - thread.last_customer_at > WINDOW_S:
            raise outside_window()
        payload = params.get("payload") if isinstance(params.get("payload"), dict) else {}
        assert isinstance(payload, dict)
        if action in ("react", "unreact"):
            mid = payload.get("message_id")
            msg = next((m for m in thread.messages if m.mid == mid), None)
            if msg is None:
                raise param_error("Param payload[message_id] must be a valid message id")
            if action == "react":
                reaction = payload.get("reaction", "love")
                if reaction not in REACTIONS:
                    raise param_error("Param payload[reaction] is invalid")
                msg.business_reaction = reaction
            else:
                msg.business_reaction = None
        elif action == "mark_seen":
            outs = [m for m in thread.messages if m.direction == "out"]
            thread.seen_mid = outs[-1].mid if outs else None
        else:
            thread.typing = action == "typing_on"
        return Outcome({"recipient_id": thread.igsid})  # the business's reactions have no echo

    # ------------------------------------------------------------ thread control

    def _known_app(self, app_id: str) -> None:
        if app_id not in self.apps:
            raise param_error(f'Param target_app_id must be a valid app ID - got "{app_id}"')

    def _grant(self, thread: Thread, app_id: str) -> None:
        thread.owner = app_id
        thread.expires_at = self.now + CONTROL_TTL_S  # any control action resets expiry to 1 day
        thread.updated_at = self.now

    def _pass(
        self, thread: Thread, from_app: str, target: str | None, metadata: str | None
    ) -> tuple[WebhookEvent, ...]:
        if target is None:
            if not self.config.routing_enabled:
                raise param_error("The parameter target_app_id is required")
            target = self.default_app_id
        self._known_app(target)
        if self.config.routing_enabled and thread.owner is not None and thread.owner == target:
            raise param_error("Cannot pass thread control to the app that already owns the thread")
        previous = thread.owner
        self._grant(thread, target)
        body: dict[str, Any] = {"previous_owner_app_id": previous, "new_owner_app_id": target}
        if metadata is not None:
            body["metadata"] = metadata
        return self._handover(target, thread.igsid, "pass_thread_control", body)

    def _take(self, thread: Thread, app_id: str, metadata: str | None) -> tuple[WebhookEvent, ...]:
        previous = thread.owner
        if previous == app_id:
            return ()  # take does not extend control
        self._grant(thread, app_id)
        body: dict[str, Any] = {"previous_owner_app_id": previous, "new_owner_app_id": app_id}
        if metadata is not None:
            body["metadata"] = metadata
        return self._handover(previous, thread.igsid, "take_thread_control", body)

    def pass_thread_control(
        self,
        app_id: str,
        igsid: str | None,
        target_app_id: str | None = None,
        metadata: str | None = None,
    ) -> Outcome:
        thread = self._graph_thread(igsid)
        if thread.owner is not None and thread.owner != app_id:
            raise not_owner()
        return Outcome({"success": True}, self._pass(thread, app_id, target_app_id, metadata))

    def take_thread_control(
        self, app_id: str, igsid: str | None, metadata: str | None = None
    ) -> Outcome:
        if not self.config.routing_enabled:
            raise take_unsupported()
        if not self.apps[app_id].can_take:
            raise take_not_allowed()
        thread = self._graph_thread(igsid)
        return Outcome({"success": True}, self._take(thread, app_id, metadata))

    def release_thread_control(
        self, app_id: str, igsid: str | None, metadata: str | None = None
    ) -> Outcome:
        thread = self._graph_thread(igsid)
        if thread.owner != app_id:
            raise not_owner()
        thread.owner, thread.expires_at = None, None
        thread.updated_at = self.now
        return Outcome({"success": True})  # release sends no webhook

    def request_thread_control(
        self, app_id: str, igsid: str | None, metadata: str | None = None
    ) -> Outcome:
        thread = self._graph_thread(igsid)
        if thread.owner == app_id:
            raise param_error("The app already owns the thread")
        body: dict[str, Any]
        if thread.owner is None:  # idle: control at once, announced as a pass
            self._grant(thread, app_id)
            body = {"previous_owner_app_id": None, "new_owner_app_id": app_id}
            if metadata is not None:
                body["metadata"] = metadata
            return Outcome(
                {"success": True}, self._handover(app_id, thread.igsid, "pass_thread_control", body)
            )
        body = {"requested_owner_app_id": app_id}
        if metadata is not None:
            body["metadata"] = metadata
        return Outcome(
            {"success": True},
            self._handover(thread.owner, thread.igsid, "request_thread_control", body),
        )

    def extend_thread_control(self, app_id: str, igsid: str | None, duration: Any) -> Outcome:
        thread = self._graph_thread(igsid)
        if thread.owner != app_id:
            raise not_owner()
        try:
            seconds = int(duration)
        except (TypeError, ValueError):
            raise param_error("The parameter duration is required") from None
        if not 0 < seconds <= MAX_EXTEND_S:
            raise param_error(f"Param duration must be between 1 and {int(MAX_EXTEND_S)} seconds")
        thread.expires_at = self.now + seconds
        return Outcome({"success": True})

    def thread_owner(self, app_id: str, igsid: str | None) -> dict[str, Any]:
        """Owner and default app see both fields; other apps only `expiration`; idle: empty."""
        thread = self.thread(igsid) if igsid else None
        if thread is None or thread.owner is None:
            return {"data": []}
        owner: dict[str, Any] = {}
        if app_id in (thread.owner, self.default_app_id):
            owner["app_id"] = thread.owner
        owner["expiration"] = int(thread.expires_at or 0)
        return {"data": [{"thread_owner": owner}]}

    # ------------------------------------------------------------ reads and subscriptions

    def conversation_id(self, igsid: str) -> str:
        return _b64(f"ig_thread:{self.config.account_id}:{igsid}")

    def conversations(
        self, app_id: str, platform: str | None, user_id: str | None, fields: Iterable[str] = ()
    ) -> dict[str, Any]:
        if (platform or "").lower() != "instagram":
            return {"data": []}  # the Page's Messenger conversations: none here
        threads = [self._refresh(t) for t in self.threads.values() if t.messages]
        if user_id is not None:
            threads = [t for t in threads if t.igsid == user_id]
        threads.sort(key=lambda t: t.updated_at, reverse=True)
        wanted = set(fields)
        data = []
        for t in threads:
            row: dict[str, Any] = {
                "id": self.conversation_id(t.igsid),
                "updated_time": _iso(t.updated_at),
            }
            if "participants" in wanted:
                row["participants"] = {
                    "data": [
                        {"username": "business", "id": self.config.account_id},
                        {"username": t.username, "id": t.igsid},
                    ]
                }
            if "messages" in wanted:
                recent = [m for m in reversed(t.messages) if not m.deleted][:20]
                row["messages"] = {
                    "data": [{"id": m.mid, "created_time": _iso(m.timestamp)} for m in recent]
                }
            if "is_owner" in wanted:
                row["is_owner"] = self._may_send(app_id, t)
            data.append(row)
        return {"data": data}

    def subscribed_apps(self) -> dict[str, Any]:
        data = []
        for app in self.our_apps:
            state = self.app_states[app.app_id]
            if state.subscribed:
                data.append(
                    {"id": app.app_id, "name": app.name, "subscribed_fields": sorted(state.fields)}
                )
        return {"data": data}

    def subscribe(self, app_id: str, fields: Iterable[str] | str | None) -> Outcome:
        if fields is None or fields == "":
            raise param_error("The parameter subscribed_fields is required")
        names = fields.split(",") if isinstance(fields, str) else list(fields)
        state = self.app_states[app_id]
        state.fields = normalise_fields(names)
        state.subscribed = True
        return Outcome({"success": True})

    def unsubscribe(self, app_id: str) -> Outcome:
        state = self.app_states[app_id]
        state.subscribed = False
        return Outcome({"success": True})

    def set_webhook_url(self, app_id: str, url: str | None) -> None:
        if app_id not in self.app_states:
            raise SimError(f"unknown app {app_id!r}", 404)
        self.app_states[app_id].webhook_url = url

    def feature_status(self) -> dict[str, Any]:
        return {
            "messaging_feature_status": {
                "hop_v2": False,
                "msgr_multi_app": True,
                "ig_multi_app": self.config.routing_enabled,
            },
            "id": self.config.page_id,
        }

    def profile(self, igsid: str) -> dict[str, Any] | None:
        thread = self.threads.get(igsid)
        if thread is None:
            return None
        return {
            "id": igsid,
            "username": thread.username,
            "name": thread.username.replace("_", " ").title(),
        }

    # ------------------------------------------------------------ inspection

    def _message_view(self, msg: Message) -> dict[str, Any]:
        return {
            "mid": msg.mid,
            "direction": msg.direction,
            "text": msg.text,
            "app_id": msg.app_id,
            "app_name": self.app_name(msg.app_id),
            "attachments": msg.attachments,
            "quick_replies": msg.quick_replies,
            "quick_reply_payload": msg.quick_reply_payload,
            "reply_to": msg.reply_to,
            "tag": msg.tag,
            "messaging_type": msg.messaging_type,
            "via": msg.via,
            "comment_id": msg.comment_id,
            "timestamp": msg.timestamp,
            "deleted": msg.deleted,
            "edits": msg.edits,
            "customer_reaction": msg.customer_reaction,
            "business_reaction": msg.business_reaction,
        }

    def customer_view(self, igsid: str) -> dict[str, Any]:
        thread = self.thread(igsid)
        now = self.now
        if thread is None:
            return {
                "igsid": igsid,
                "exists": False,
                "owner_app_id": None,
                "owner_app_name": None,
                "owner_expires_at": None,
                "default_app_id": self.default_app_id,
                "window_open": False,
                "human_agent_window_open": False,
                "last_customer_message_at": None,
                "now": now,
                "timeline": [],
                "received": [],
                "sent": [],
                "comments": [],
            }
        last = thread.last_customer_at
        timeline = [self._message_view(m) for m in thread.messages]
        return {
            "igsid": igsid,
            "exists": True,
            "username": thread.username,
            "owner_app_id": thread.owner,
            "owner_app_name": self.app_name(thread.owner),
            "owner_expires_at": thread.expires_at,
            "default_app_id": self.default_app_id,
            "window_open": last is not None and now - last <= WINDOW_S,
            "human_agent_window_open": last is not None and now - last <= HUMAN_AGENT_WINDOW_S,
            "last_customer_message_at": last,
            "now": now,
            "seen_mid": thread.seen_mid,
            "typing": thread.typing,
            "timeline": timeline,
            "received": [m for m in timeline if m["direction"] == "in"],
            "sent": [m for m in timeline if m["direction"] == "out"],
            "comments": [
                {
                    "comment_id": c.comment_id,
                    "text": c.text,
                    "media_id": c.media_id,
                    "parent_id": c.parent_id,
                    "timestamp": c.timestamp,
                    "private_reply_mid": c.private_reply_mid,
                }
                for c in thread.comments
            ],
        }


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
