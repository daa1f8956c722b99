"""The world's core: state, clock, id minting, thread lookups, the rate limit, and the webhook
fan-out that every action mixin of `World` builds on."""

from __future__ import annotations

import base64
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from orchestrator.sandbox.simulator.config import (
    INBOX_APP_IDS,
    INSTAGRAM_INBOX_APP_ID,
    PAGE_INBOX_APP_ID,
    SimApp,
    SimConfig,
)
from orchestrator.sandbox.simulator.errors import SimError, no_matching_user, rate_limited
from orchestrator.sandbox.simulator.model import (
    AppState,
    Channel,
    Comment,
    Message,
    Thread,
    WebhookEvent,
)
from orchestrator.sandbox.simulator.rules import ALL_FIELDS, EVENT_FIELDS


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


class WorldCore:
    """State, clock, ids, lookups and webhook fan-out shared by `World`'s mixins."""

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

    def inbox_of(self, igsid: str) -> str:
        """Meta's own inbox app for a thread: the Page Inbox on Messenger (263902037430900),
        the Instagram Inbox otherwise."""
        thread = self.threads.get(igsid)
        if thread is not None and thread.channel == "messenger":
            return PAGE_INBOX_APP_ID
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

    def _customer_thread(
        self, igsid: str, username: str | None = None, channel: str | None = None
    ) -> Thread:
        """The customer's thread, made on first contact. `channel` "messenger" makes a
        Messenger customer (a PSID writing to the Page); a thread keeps its channel."""
        if not igsid:
            raise SimError("igsid is required")
        if channel not in (None, "instagram", "messenger"):
            raise SimError(f"channel must be 'instagram' or 'messenger', got {channel!r}")
        thread = self.threads.get(igsid)
        if thread is None:
            thread = Thread(igsid, username or f"customer_{igsid[-6:]}", self.now)
            thread.updated_at = self.now
            if channel == "messenger":
                thread.channel = "messenger"
            self.threads[igsid] = thread
        else:
            if channel is not None and channel != thread.channel:
                raise SimError(f"{igsid} is a {thread.channel} customer, not {channel}")
            if username:
                thread.username = username
        return self._refresh(thread)

    def _business_id(self, igsid: str) -> str:
        """The business side of a thread: the Page for Messenger, else the IG account."""
        thread = self.threads.get(igsid)
        if thread is not None and thread.channel == "messenger":
            return self.config.page_id
        return self.config.account_id

    def _webhook(
        self, app_id: str, channel: Channel, payload: dict[str, Any], igsid: str
    ) -> WebhookEvent:
        """One webhook item of `igsid`'s thread: `object: "page"` under the Page id for a
        Messenger thread, `object: "instagram"` under the account otherwise."""
        thread = self.threads.get(igsid)
        if thread is not None and thread.channel == "messenger":
            return WebhookEvent(app_id, channel, payload, self.now, "page", self.config.page_id)
        return WebhookEvent(app_id, channel, payload, self.now)

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

    def _event(
        self, igsid: str, key: str, body: dict[str, Any], timestamp_ms: int | None = None
    ) -> dict[str, Any]:
        return {
            "sender": {"id": igsid},
            "recipient": {"id": self._business_id(igsid)},
            "timestamp": self._ms() if timestamp_ms is None else timestamp_ms,
            key: body,
        }

    def _fan_out(
        self, thread: Thread, key: str, body: dict[str, Any], standby_body: dict[str, Any] | None
    ) -> tuple[WebhookEvent, ...]:
        """A customer event: the owner (or the default app while idle) gets it in `messaging[]`,
        every other subscribed app of ours a copy in `standby[]`. Routing off: everyone gets
        `messaging[]` (docs/platform.md 1.3 "default behavior")."""
        primary = thread.owner or self.default_app_id
        out = []
        # One event, one time: every copy (messaging or standby) carries the same timestamp,
        # as Meta's do — receivers derive dedup keys from it.
        at_ms = self._ms()
        for app in self.our_apps:
            if not self.config.routing_enabled or app.app_id == primary:
                if self._wants(app.app_id, EVENT_FIELDS[key]):
                    event = self._event(thread.igsid, key, body, at_ms)
                    out.append(self._webhook(app.app_id, "messaging", event, thread.igsid))
            elif self._wants(app.app_id, "standby"):
                event = self._event(thread.igsid, key, standby_body or body, at_ms)
                out.append(self._webhook(app.app_id, "standby", event, thread.igsid))
        return tuple(out)

    def _handover(
        self, to_app: str | None, igsid: str, key: str, body: dict[str, Any]
    ) -> tuple[WebhookEvent, ...]:
        if to_app is None or to_app not in self.app_states:
            return ()  # an Inbox, or idle: no webhook
        if not self._wants(to_app, EVENT_FIELDS[key]):
            return ()
        return (self._webhook(to_app, "messaging", self._event(igsid, key, body), igsid),)

    def _echo(self, app_id: str, thread: Thread, msg: Message, channel: Channel) -> WebhookEvent:
        message: dict[str, Any] = {"mid": msg.mid}
        if msg.text is not None:
            message["text"] = msg.text
        if msg.attachments:
            message["attachments"] = msg.attachments
        message["is_echo"] = True
        message["app_id"] = msg.app_id
        event = {
            "sender": {"id": self._business_id(thread.igsid)},
            "recipient": {"id": thread.igsid},
            "timestamp": self._ms(),
            "message": message,
        }
        return self._webhook(app_id, channel, event, thread.igsid)
