"""Meta Graph API client for Instagram messaging (docs/platform.md sections 4, 5, 8, 10).

One :class:`GraphClient` wraps the application's single ``aiohttp.ClientSession`` (it never
creates one). A :class:`GraphTarget` says which account to act for and with which token:

- ``login="facebook"``: ``graph.facebook.com``, node = the Page id (``me`` without one), the
  Page token as the ``access_token`` query parameter;
- ``login="instagram"``: ``graph.instagram.com``, node = the IG account id (or ``me``), the IG
  user token as ``Authorization: Bearer``.

Thread control and the messaging feature status are Page features: they always go to the Page
node on ``graph.facebook.com`` and need a Facebook-login target (thread control on
``graph.instagram.com`` is unconfirmed, docs/platform.md 11).

Every call returns Meta's parsed JSON or raises a :mod:`~orchestrator.graph.errors` type;
network faults and timeouts become :class:`GraphUnreachable`. Tokens never reach exception
messages, reprs or the ``on_call`` records.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp

from .errors import (
    GraphError,
    GraphUnreachable,
    TransientError,
    UnknownGraphError,
    as_int,
    classify,
    redact,
)
from .rate_limit import RateLimiter
from .text import has_media, validate_message, validate_messaging_type, validate_recipient

__all__ = [
    "CallRecord",
    "ChannelName",
    "GraphClient",
    "GraphTarget",
    "Login",
    "ThreadOwner",
    "parse_thread_owner",
]

log = logging.getLogger(__name__)

Login = Literal["facebook", "instagram"]
# The conversation's channel: an Instagram account's Direct messages, or its Facebook Page's
# Messenger conversations (same Page node and token; no `platform=instagram` on thread
# control, docs/platform.md 5).
ChannelName = Literal["instagram", "messenger"]
SenderAction = Literal["typing_on", "typing_off", "mark_seen"]

SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})
MAX_EXTEND_S = 7 * 24 * 3600


@dataclass(frozen=True)
class GraphTarget:
    """Where to call and with which token. ``repr`` and ``str`` never show the token."""

    account_id: str
    page_id: str | None
    login: Login
    token: str = field(repr=False)
    channel: ChannelName = "instagram"

    def __post_init__(self) -> None:
        if self.login not in ("facebook", "instagram"):
            raise ValueError(
                f"GraphTarget.login must be 'facebook' or 'instagram', got {self.login!r}"
            )
        if self.channel not in ("instagram", "messenger"):
            raise ValueError(
                f"GraphTarget.channel must be 'instagram' or 'messenger', got {self.channel!r}"
            )
        if self.channel == "messenger" and (self.login != "facebook" or not self.page_id):
            raise ValueError("a Messenger GraphTarget needs login 'facebook' and a page_id")
        if not self.token:
            raise ValueError(f"GraphTarget for account {self.account_id!r} has an empty token")

    def __repr__(self) -> str:
        return (
            f"GraphTarget(account_id={self.account_id!r}, page_id={self.page_id!r}, "
            f"login={self.login!r}, channel={self.channel!r}, token='***')"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class ThreadOwner:
    """Answer of ``thread_owner``: both fields None when the thread is idle."""

    app_id: str | None
    expiration: int | None  # unix seconds

    @property
    def is_idle(self) -> bool:
        return self.app_id is None and self.expiration is None


@dataclass(frozen=True)
class CallRecord:
    """One Graph call, for metrics. ``path`` is a template (``/{node}/messages``) so that
    labels stay few; ``status`` is None when Meta never answered."""

    method: str
    path: str
    status: int | None
    error_code: int | None
    duration_s: float


class GraphClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        api_version: str = "v25.0",
        facebook_base_url: str = "https://graph.facebook.com",
        instagram_base_url: str = "https://graph.instagram.com",
        limiter: RateLimiter | None = None,
        timeout: float = 10.0,
        thread_control_platform_param: bool = True,
        on_call: Callable[[CallRecord], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._session = session
        self.api_version = api_version.strip("/")
        self._bases: dict[Login, str] = {
            "facebook": facebook_base_url.rstrip("/"),
            "instagram": instagram_base_url.rstrip("/"),
        }
        self._limiter = limiter
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.thread_control_platform_param = thread_control_platform_param
        self._on_call = on_call
        self._clock = clock

    # -- Send API (docs/platform.md 4) -------------------------------------------------------

    async def send_message(
        self,
        target: GraphTarget,
        recipient: dict[str, Any],
        message: dict[str, Any],
        *,
        messaging_type: str | None = "RESPONSE",
        tag: str | None = None,
        reply_to_mid: str | None = None,
        thread_control: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one message; answers ``{"recipient_id", "message_id"}``.

        Content is validated first (:func:`validate_message`): a bad message raises
        :class:`ContentError` and nothing is sent. ``messaging_type=None`` leaves it out.
        """
        validate_recipient(recipient)
        validate_message(message)
        validate_messaging_type(messaging_type, tag)
        body: dict[str, Any] = {"recipient": recipient}
        if messaging_type is not None:
            body["messaging_type"] = messaging_type
        if tag is not None:
            body["tag"] = tag
        body["message"] = message
        if reply_to_mid is not None:
            body["reply_to"] = {"mid": reply_to_mid}
        if thread_control is not None:
            body["thread_control"] = thread_control
        if "comment_id" in recipient:
            bucket = "private_reply"
        else:
            bucket = "send_media" if has_media(message) else "send_text"
        return await self._messages(target, body, bucket)

    async def private_reply(
        self, target: GraphTarget, comment_id: str, message: dict[str, Any]
    ) -> dict[str, Any]:
        """The one private reply allowed per comment (within 7 days of it)."""
        validate_message(message)
        body = {"recipient": {"comment_id": comment_id}, "message": message}
        return await self._messages(target, body, "private_reply")

    async def sender_action(
        self, target: GraphTarget, igsid: str, action: SenderAction
    ) -> dict[str, Any]:
        """``typing_on``/``typing_off``/``mark_seen``. Callers should tolerate failures."""
        if action not in SENDER_ACTIONS:
            raise ValueError(
                f"sender action must be one of {sorted(SENDER_ACTIONS)}, got {action!r}"
            )
        body = {"recipient": {"id": igsid}, "sender_action": action}
        return await self._messages(target, body, "send_text")

    async def react(
        self, target: GraphTarget, igsid: str, mid: str, reaction: str = "love"
    ) -> dict[str, Any]:
        body = {
            "recipient": {"id": igsid},
            "sender_action": "react",
            "payload": {"message_id": mid, "reaction": reaction},
        }
        return await self._messages(target, body, "send_text")

    async def unreact(self, target: GraphTarget, igsid: str, mid: str) -> dict[str, Any]:
        body = {
            "recipient": {"id": igsid},
            "sender_action": "unreact",
            "payload": {"message_id": mid},
        }
        return await self._messages(target, body, "send_text")

    # -- thread control (docs/platform.md 5) -------------------------------------------------

    async def pass_thread_control(
        self,
        target: GraphTarget,
        igsid: str,
        target_app_id: str | int | None = None,
        metadata: str | None = None,
    ) -> dict[str, Any]:
        """Pass to ``target_app_id``; without one, to the default app (routing on)."""
        body = _control_body(igsid, metadata)
        if target_app_id is not None:
            body["target_app_id"] = target_app_id
        return await self._page_post(target, "pass_thread_control", body)

    async def take_thread_control(
        self, target: GraphTarget, igsid: str, metadata: str | None = None
    ) -> dict[str, Any]:
        body = _control_body(igsid, metadata)
        if self.thread_control_platform_param and target.channel == "instagram":
            body["platform"] = "instagram"
        return await self._page_post(target, "take_thread_control", body)

    async def release_thread_control(
        self, target: GraphTarget, igsid: str, metadata: str | None = None
    ) -> dict[str, Any]:
        return await self._page_post(
            target, "release_thread_control", _control_body(igsid, metadata)
        )

    async def request_thread_control(
        self, target: GraphTarget, igsid: str, metadata: str | None = None
    ) -> dict[str, Any]:
        return await self._page_post(
            target, "request_thread_control", _control_body(igsid, metadata)
        )

    async def extend_thread_control(
        self, target: GraphTarget, igsid: str, duration_s: int
    ) -> dict[str, Any]:
        """Extend the owner's control by ``duration_s`` seconds (at most 7 days)."""
        if not 0 < duration_s <= MAX_EXTEND_S:
            raise ValueError(f"duration_s must be in 1..{MAX_EXTEND_S} (7 days), got {duration_s}")
        body = {"recipient": {"id": igsid}, "duration": int(duration_s)}
        return await self._page_post(target, "extend_thread_control", body)

    async def thread_owner(self, target: GraphTarget, igsid: str) -> ThreadOwner:
        params: dict[str, str] = {"recipient": igsid}
        if self.thread_control_platform_param and target.channel == "instagram":
            params["platform"] = "instagram"
        node = self._page_node(target)
        data = await self._call(
            "GET", target, "facebook", node, "thread_owner", params=params, bucket="thread_control"
        )
        return parse_thread_owner(data)

    async def user_profile(
        self, target: GraphTarget, igsid: str, fields: Sequence[str] = ("name", "username")
    ) -> dict[str, Any]:
        """The customer's public profile (PLATFORM 7: error 2018218 = no profile available)."""
        params = {"fields": ",".join(fields)}
        return await self._call("GET", target, target.login, igsid, None, params=params)

    async def messaging_feature_status(self, target: GraphTarget) -> dict[str, Any]:
        """``{"messaging_feature_status": {"hop_v2", "msgr_multi_app", "ig_multi_app"}, "id"}``."""
        node = self._page_node(target)
        params = {"fields": "messaging_feature_status"}
        return await self._call("GET", target, "facebook", node, None, params=params)

    # -- conversations and subscriptions (docs/platform.md 8, 10) ----------------------------

    async def conversations(
        self,
        target: GraphTarget,
        user_id: str | None = None,
        platform: str | None = None,
        *,
        fields: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        params: dict[str, str] = {"platform": platform or target.channel}
        if user_id is not None:
            params["user_id"] = user_id
        if fields:
            params["fields"] = ",".join(fields)
        return await self._call(
            "GET",
            target,
            target.login,
            _account_node(target),
            "conversations",
            params=params,
            bucket="conversations",
        )

    async def subscribed_apps(self, target: GraphTarget) -> dict[str, Any]:
        return await self._call(
            "GET", target, target.login, _account_node(target), "subscribed_apps"
        )

    async def subscribe_app(self, target: GraphTarget, fields: list[str]) -> dict[str, Any]:
        """Subscribe this app to the account's webhooks. Meta answers ``success`` as a
        boolean or the string ``"true"``; the answer is returned as is."""
        if not fields:
            raise ValueError("subscribe_app needs at least one field")
        body = {"subscribed_fields": ",".join(fields)}
        return await self._call(
            "POST", target, target.login, _account_node(target), "subscribed_apps", json_body=body
        )

    # -- set-up checks (`orchestrator doctor`, docs/platform.md 12) ----------------------------

    async def debug_token(self, app_token: GraphTarget, input_token: str) -> dict[str, Any]:
        """`GET /debug_token?input_token=…` with the app token `<app_id>|<app_secret>` as
        `app_token.token`: `{"data": {"app_id", "type", "is_valid", "expires_at", "scopes",
        "profile_id", …}}`."""
        return await self._call(
            "GET", app_token, "facebook", "debug_token", None, params={"input_token": input_token}
        )

    async def app_subscriptions(self, app_token: GraphTarget, app_id: str) -> dict[str, Any]:
        """`GET /{app-id}/subscriptions` with the app token: the app's webhook objects,
        `{"data": [{"object", "callback_url", "active", "fields": [{"name", "version"}]}]}`."""
        return await self._call("GET", app_token, "facebook", app_id, "subscriptions")

    async def me(self, target: GraphTarget, fields: Sequence[str]) -> dict[str, Any]:
        """`GET /me?fields=…` on the target's own host (an Instagram user token's check)."""
        return await self._call(
            "GET", target, target.login, "me", None, params={"fields": ",".join(fields)}
        )

    # -- plumbing -----------------------------------------------------------------------------

    async def _messages(
        self, target: GraphTarget, body: dict[str, Any], bucket: str
    ) -> dict[str, Any]:
        return await self._call(
            "POST",
            target,
            target.login,
            _account_node(target),
            "messages",
            json_body=body,
            bucket=bucket,
        )

    async def _page_post(
        self, target: GraphTarget, edge: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._call(
            "POST",
            target,
            "facebook",
            self._page_node(target),
            edge,
            json_body=body,
            bucket="thread_control",
        )

    def _page_node(self, target: GraphTarget) -> str:
        if target.login != "facebook":
            raise ValueError(
                "thread control and messaging_feature_status go through the Page on "
                "graph.facebook.com and need a facebook-login target with a Page token "
                f"(account {target.account_id!r} uses instagram login)"
            )
        return target.page_id or "me"

    async def _call(
        self,
        method: str,
        target: GraphTarget,
        host: Login,
        node: str,
        edge: str | None,
        *,
        params: Mapping[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        bucket: str | None = None,
    ) -> dict[str, Any]:
        path = f"/{self.api_version}/{node}" + (f"/{edge}" if edge else "")
        template = "/{node}" + (f"/{edge}" if edge else "")
        query = dict(params or {})
        headers: dict[str, str] = {}
        if host == "facebook":
            query["access_token"] = target.token
        else:
            headers["Authorization"] = f"Bearer {target.token}"
        if self._limiter is not None and bucket is not None:
            await self._limiter.acquire(target.account_id, bucket)

        status: int | None = None
        error: GraphError | None = None
        started = self._clock()
        try:
            try:
                async with self._session.request(
                    method,
                    self._bases[host] + path,
                    params=query,
                    json=json_body,
                    headers=headers,
                    timeout=self._timeout,
                ) as response:
                    status = response.status
                    raw = await response.read()
                    response_headers = dict(response.headers)
            except (TimeoutError, aiohttp.ClientConnectionError) as exc:
                error = GraphUnreachable(_describe(exc, target.token))
                raise error from None
            except aiohttp.ClientError as exc:
                error = TransientError(_describe(exc, target.token), http_status=status)
                raise error from None
            try:
                return _parse_success(status, raw, response_headers, target.token)
            except GraphError as exc:
                error = exc
                raise
        finally:
            self._record(
                CallRecord(
                    method=method,
                    path=template,
                    status=status,
                    error_code=error.code if error is not None else None,
                    duration_s=self._clock() - started,
                )
            )

    def _record(self, record: CallRecord) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(record)
        except Exception:  # a metrics hook must never fail a Graph call
            log.exception("graph on_call hook failed")


def _account_node(target: GraphTarget) -> str:
    if target.login == "facebook":
        return target.page_id or "me"
    return target.account_id or "me"


def _control_body(igsid: str, metadata: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"recipient": {"id": igsid}}
    if metadata is not None:
        body["metadata"] = metadata
    return body


def _describe(exc: BaseException, token: str) -> str:
    detail = str(exc)
    text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return redact(text, [token])


def _scrub(error: GraphError, token: str) -> GraphError:
    if token and token in error.message:
        error.message = redact(error.message, [token])
        error.args = (error.message,)
    return error


def _parse_success(
    status: int, raw: bytes, headers: Mapping[str, str], token: str
) -> dict[str, Any]:
    if not 200 <= status < 300:
        raise _scrub(classify(status, raw, headers), token)
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise UnknownGraphError("answer is not JSON", http_status=status) from None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        raise _scrub(classify(status, data, headers), token)
    if isinstance(data, dict):
        return data
    return {"result": data}


def parse_thread_owner(data: Mapping[str, Any]) -> ThreadOwner:
    """``{"data": [{"thread_owner": {"app_id", "expiration"}}]}``; empty ``data`` = idle.

    Accepts ``app_id`` as number or string and ``expiration`` in seconds or milliseconds.
    """
    items = data.get("data", [data])
    if not isinstance(items, list) or not items or not isinstance(items[0], Mapping):
        return ThreadOwner(app_id=None, expiration=None)
    owner = items[0].get("thread_owner", items[0])
    if not isinstance(owner, Mapping):
        return ThreadOwner(app_id=None, expiration=None)
    raw_app = owner.get("app_id")
    app_id = str(raw_app) if raw_app not in (None, "") else None
    expiration = as_int(owner.get("expiration"))
    if expiration is not None and expiration > 100_000_000_000:  # milliseconds
        expiration //= 1000
    return ThreadOwner(app_id=app_id, expiration=expiration)
