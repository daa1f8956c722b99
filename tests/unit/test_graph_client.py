"""GraphClient against aioresponses: URLs, hosts, token placement, bodies, error mapping."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from orchestrator.graph import (
    CallRecord,
    ContentError,
    GraphClient,
    GraphError,
    GraphTarget,
    GraphUnreachable,
    InvalidParameter,
    InvalidToken,
    NotThreadOwner,
    PermissionDenied,
    PrivateReplyUsed,
    RateLimited,
    RateLimiter,
    RecipientUnavailable,
    TakeNotSupported,
    ThreadOwner,
    TransientError,
    UnknownGraphError,
    WindowClosed,
    classify,
    retry_after_from_headers,
)
from tests.meta_mock import MetaMock

TOKEN = "EAAGsecretPageToken123"
IG_TOKEN = "IGQVJsecretUserToken456"
FB = GraphTarget(
    account_id="17841400000000001", page_id="1100000001", login="facebook", token=TOKEN
)
IG = GraphTarget(account_id="17841400000000001", page_id=None, login="instagram", token=IG_TOKEN)
IGSID = "6543210987654321"

ANY_FB = re.compile(r"^https://graph\.facebook\.com/.*$")
ANY_IG = re.compile(r"^https://graph\.instagram\.com/.*$")
SENT = {"recipient_id": IGSID, "message_id": "aWdfZAG1faWQ"}


CompatAioresponses = MetaMock


class RecordingLimiter(RateLimiter):
    def __init__(self) -> None:
        super().__init__()
        self.acquired: list[tuple[str, str]] = []

    async def acquire(self, key: str, bucket: str) -> float:
        self.acquired.append((key, bucket))
        return 0.0


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def meta() -> Iterator[aioresponses]:
    with CompatAioresponses() as m:
        yield m


@pytest.fixture
def records() -> list[CallRecord]:
    return []


@pytest.fixture
def limiter() -> RecordingLimiter:
    return RecordingLimiter()


@pytest.fixture
def client(
    session: aiohttp.ClientSession, records: list[CallRecord], limiter: RecordingLimiter
) -> GraphClient:
    return GraphClient(session, limiter=limiter, on_call=records.append)


def only_request(meta: aioresponses) -> tuple[str, URL, dict[str, Any]]:
    calls = [
        (method, url, call.kwargs) for (method, url), cs in meta.requests.items() for call in cs
    ]
    assert len(calls) == 1, calls
    return calls[0]


def body_of(kwargs: dict[str, Any]) -> Any:
    return kwargs["json"]


# --- targets and token placement --------------------------------------------------------------


def test_graph_target_repr_and_str_hide_the_token() -> None:
    assert TOKEN not in repr(FB)
    assert TOKEN not in str(FB)
    assert "***" in repr(FB)
    assert "1100000001" in repr(FB)


def test_graph_target_refuses_unknown_login_and_empty_token() -> None:
    with pytest.raises(ValueError, match="login"):
        GraphTarget("1", None, "twitter", "t")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty token"):
        GraphTarget("1", None, "facebook", "")


async def test_facebook_login_sends_to_page_node_with_token_in_query(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload=SENT)
    answer = await client.send_message(FB, {"id": IGSID}, {"text": "Hallo!"})
    assert answer == SENT
    method, url, kwargs = only_request(meta)
    assert method == "POST"
    assert url.host == "graph.facebook.com"
    assert url.path == "/v25.0/1100000001/messages"
    assert url.query["access_token"] == TOKEN
    assert "Authorization" not in kwargs["headers"]
    assert body_of(kwargs) == {
        "recipient": {"id": IGSID},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hallo!"},
    }


async def test_facebook_login_without_page_id_uses_me(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload=SENT)
    target = GraphTarget(account_id="178", page_id=None, login="facebook", token=TOKEN)
    await client.send_message(target, {"id": IGSID}, {"text": "hi"})
    _, url, _ = only_request(meta)
    assert url.path == "/v25.0/me/messages"


async def test_instagram_login_sends_to_ig_account_node_with_bearer_token(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_IG, payload=SENT)
    await client.send_message(IG, {"id": IGSID}, {"text": "hi"})
    _, url, kwargs = only_request(meta)
    assert url.host == "graph.instagram.com"
    assert url.path == "/v25.0/17841400000000001/messages"
    assert "access_token" not in url.query
    assert kwargs["headers"]["Authorization"] == f"Bearer {IG_TOKEN}"


async def test_api_version_and_base_urls_are_configurable(
    session: aiohttp.ClientSession, meta: aioresponses
) -> None:
    client = GraphClient(session, api_version="v26.0", facebook_base_url="http://sim.local:8080/")
    meta.post(re.compile(r"^http://sim\.local:8080/.*$"), payload=SENT)
    await client.send_message(FB, {"id": IGSID}, {"text": "hi"})
    _, url, _ = only_request(meta)
    assert str(url).startswith("http://sim.local:8080/v26.0/1100000001/messages")


# --- Send API bodies --------------------------------------------------------------------------


async def test_human_agent_tag_body_has_message_tag_type_and_tag(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload=SENT)
    await client.send_message(
        FB,
        {"id": IGSID},
        {"text": "Sorry for the wait"},
        messaging_type="MESSAGE_TAG",
        tag="HUMAN_AGENT",
    )
    _, _, kwargs = only_request(meta)
    assert body_of(kwargs) == {
        "recipient": {"id": IGSID},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Sorry for the wait"},
    }


async def test_reply_to_and_inline_thread_control_are_top_level_fields(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload=SENT)
    await client.send_message(
        FB,
        {"id": IGSID},
        {"text": "Passing you to a human"},
        reply_to_mid="m_123",
        thread_control={"control_type": "pass", "app_id": "263902037430900"},
    )
    body = body_of(only_request(meta)[2])
    assert body["reply_to"] == {"mid": "m_123"}
    assert body["thread_control"] == {"control_type": "pass", "app_id": "263902037430900"}


async def test_messaging_type_none_is_left_out_of_the_body(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload=SENT)
    await client.send_message(FB, {"id": IGSID}, {"text": "hi"}, messaging_type=None)
    assert "messaging_type" not in body_of(only_request(meta)[2])


@pytest.mark.parametrize(
    ("messaging_type", "tag", "rule"),
    [
        ("MESSAGE_TAG", None, "tag_missing"),
        ("RESPONSE", "HUMAN_AGENT", "tag_without_message_tag"),
        ("MESSAGE_TAG", "ACCOUNT_UPDATE", "tag_retired"),
        ("PROMOTIONAL", None, "messaging_type"),
    ],
)
async def test_inconsistent_or_retired_tags_are_refused_before_sending(
    client: GraphClient, meta: aioresponses, messaging_type: str, tag: str | None, rule: str
) -> None:
    with pytest.raises(ContentError) as info:
        await client.send_message(
            FB, {"id": IGSID}, {"text": "hi"}, messaging_type=messaging_type, tag=tag
        )
    assert info.value.rule_name == rule
    assert not meta.requests


async def test_invalid_content_raises_content_error_and_sends_nothing(
    client: GraphClient, meta: aioresponses
) -> None:
    with pytest.raises(ContentError, match="1000 bytes"):
        await client.send_message(FB, {"id": IGSID}, {"text": "ü" * 501})
    assert not meta.requests


async def test_recipient_without_id_or_comment_id_is_refused(
    client: GraphClient, meta: aioresponses
) -> None:
    with pytest.raises(ContentError, match="recipient"):
        await client.send_message(FB, {"igsid": IGSID}, {"text": "hi"})
    assert not meta.requests


async def test_private_reply_targets_the_comment(
    client: GraphClient, meta: aioresponses, limiter: RecordingLimiter
) -> None:
    meta.post(ANY_FB, payload={"recipient_id": IGSID, "message_id": "m_1"})
    await client.private_reply(FB, "17900000000000001", {"text": "Thanks, DM'd you!"})
    _, url, kwargs = only_request(meta)
    assert url.path == "/v25.0/1100000001/messages"
    assert body_of(kwargs) == {
        "recipient": {"comment_id": "17900000000000001"},
        "message": {"text": "Thanks, DM'd you!"},
    }
    assert limiter.acquired == [(FB.account_id, "private_reply")]


@pytest.mark.parametrize("action", ["typing_on", "typing_off", "mark_seen"])
async def test_sender_action_body_has_recipient_and_action_only(
    client: GraphClient, meta: aioresponses, action: str
) -> None:
    meta.post(ANY_FB, payload={"recipient_id": IGSID})
    await client.sender_action(FB, IGSID, action)  # type: ignore[arg-type]
    assert body_of(only_request(meta)[2]) == {"recipient": {"id": IGSID}, "sender_action": action}


async def test_unknown_sender_action_is_refused(client: GraphClient) -> None:
    with pytest.raises(ValueError, match="sender action"):
        await client.sender_action(FB, IGSID, "dance")  # type: ignore[arg-type]


async def test_react_and_unreact_bodies(client: GraphClient, meta: aioresponses) -> None:
    meta.post(ANY_IG, payload={"recipient_id": IGSID}, repeat=True)
    await client.react(IG, IGSID, "m_9", "love")
    await client.unreact(IG, IGSID, "m_9")
    bodies = [call.kwargs["json"] for calls in meta.requests.values() for call in calls]
    assert bodies == [
        {
            "recipient": {"id": IGSID},
            "sender_action": "react",
            "payload": {"message_id": "m_9", "reaction": "love"},
        },
        {"recipient": {"id": IGSID}, "sender_action": "unreact", "payload": {"message_id": "m_9"}},
    ]


# --- rate-limit buckets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "bucket"),
    [
        ({"text": "hi"}, "send_text"),
        ({"attachment": {"type": "image", "payload": {"url": "https://x/y.png"}}}, "send_text"),
        ({"attachment": {"type": "audio", "payload": {"url": "https://x/y.m4a"}}}, "send_media"),
        ({"attachment": {"type": "video", "payload": {"attachment_id": "123"}}}, "send_media"),
    ],
)
async def test_send_message_uses_media_bucket_only_for_audio_and_video(
    client: GraphClient,
    meta: aioresponses,
    limiter: RecordingLimiter,
    message: dict[str, Any],
    bucket: str,
) -> None:
    meta.post(ANY_FB, payload=SENT)
    await client.send_message(FB, {"id": IGSID}, message)
    assert limiter.acquired == [(FB.account_id, bucket)]


async def test_conversations_and_thread_control_use_their_buckets(
    client: GraphClient, meta: aioresponses, limiter: RecordingLimiter
) -> None:
    meta.get(ANY_FB, payload={"data": []}, repeat=True)
    meta.post(ANY_FB, payload={"success": True}, repeat=True)
    await client.conversations(FB)
    await client.pass_thread_control(FB, IGSID)
    await client.thread_owner(FB, IGSID)
    assert [bucket for _, bucket in limiter.acquired] == [
        "conversations",
        "thread_control",
        "thread_control",
    ]


# --- thread control ---------------------------------------------------------------------------


async def test_pass_thread_control_posts_recipient_target_and_metadata_to_page(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload={"success": True})
    answer = await client.pass_thread_control(FB, IGSID, "263902037430900", "escalated")
    assert answer == {"success": True}
    _, url, kwargs = only_request(meta)
    assert url.path == "/v25.0/1100000001/pass_thread_control"
    assert url.query["access_token"] == TOKEN
    assert body_of(kwargs) == {
        "recipient": {"id": IGSID},
        "target_app_id": "263902037430900",
        "metadata": "escalated",
    }


async def test_pass_without_target_app_lets_meta_pick_the_default_app(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload={"success": True})
    await client.pass_thread_control(FB, IGSID)
    assert body_of(only_request(meta)[2]) == {"recipient": {"id": IGSID}}


async def test_take_thread_control_adds_platform_instagram_by_default(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload={"success": True})
    await client.take_thread_control(FB, IGSID, metadata="agent took over")
    _, url, kwargs = only_request(meta)
    assert url.path == "/v25.0/1100000001/take_thread_control"
    assert body_of(kwargs) == {
        "recipient": {"id": IGSID},
        "metadata": "agent took over",
        "platform": "instagram",
    }


async def test_platform_param_can_be_switched_off(
    session: aiohttp.ClientSession, meta: aioresponses
) -> None:
    client = GraphClient(session, thread_control_platform_param=False)
    meta.post(ANY_FB, payload={"success": True})
    meta.get(ANY_FB, payload={"data": []})
    await client.take_thread_control(FB, IGSID)
    await client.thread_owner(FB, IGSID)
    for (_, url), calls in meta.requests.items():
        assert "platform" not in url.query
        for call in calls:
            assert "platform" not in (call.kwargs.get("json") or {})


@pytest.mark.parametrize(
    ("call", "edge"),
    [
        ("release_thread_control", "release_thread_control"),
        ("request_thread_control", "request_thread_control"),
    ],
)
async def test_release_and_request_post_recipient_and_metadata(
    client: GraphClient, meta: aioresponses, call: str, edge: str
) -> None:
    meta.post(ANY_FB, payload={"success": True})
    await getattr(client, call)(FB, IGSID, metadata="done")
    _, url, kwargs = only_request(meta)
    assert url.path == f"/v25.0/1100000001/{edge}"
    assert body_of(kwargs) == {"recipient": {"id": IGSID}, "metadata": "done"}


async def test_extend_thread_control_sends_duration_in_seconds(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload={"success": True})
    await client.extend_thread_control(FB, IGSID, 3600)
    _, url, kwargs = only_request(meta)
    assert url.path == "/v25.0/1100000001/extend_thread_control"
    assert body_of(kwargs) == {"recipient": {"id": IGSID}, "duration": 3600}


@pytest.mark.parametrize("duration", [0, -5, 7 * 24 * 3600 + 1])
async def test_extend_beyond_seven_days_or_non_positive_is_refused(
    client: GraphClient, duration: int
) -> None:
    with pytest.raises(ValueError, match="7 days"):
        await client.extend_thread_control(FB, IGSID, duration)


async def test_thread_control_refuses_instagram_login_targets_it_cannot_authenticate(
    client: GraphClient,
) -> None:
    with pytest.raises(ValueError, match="facebook-login target"):
        await client.pass_thread_control(IG, IGSID)


async def test_thread_owner_query_and_numeric_app_id(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.get(
        ANY_FB,
        payload={"data": [{"thread_owner": {"app_id": 263902037430900, "expiration": 1767225600}}]},
    )
    owner = await client.thread_owner(FB, IGSID)
    assert owner == ThreadOwner(app_id="263902037430900", expiration=1767225600)
    assert not owner.is_idle
    _, url, _ = only_request(meta)
    assert url.path == "/v25.0/1100000001/thread_owner"
    assert url.query["recipient"] == IGSID
    assert url.query["platform"] == "instagram"
    assert url.query["access_token"] == TOKEN


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"data": []}, ThreadOwner(None, None)),
        ({"data": [{}]}, ThreadOwner(None, None)),
        (
            {"data": [{"thread_owner": {"app_id": "1217981644879628"}}]},
            ThreadOwner("1217981644879628", None),
        ),
        ({"data": [{"thread_owner": {"expiration": 1767225600}}]}, ThreadOwner(None, 1767225600)),
        (
            {"data": [{"thread_owner": {"app_id": "1", "expiration": "1767225600000"}}]},
            ThreadOwner("1", 1767225600),
        ),
    ],
)
async def test_thread_owner_tolerates_idle_string_ids_and_millisecond_expiry(
    client: GraphClient, meta: aioresponses, payload: dict[str, Any], expected: ThreadOwner
) -> None:
    meta.get(ANY_FB, payload=payload)
    assert await client.thread_owner(FB, IGSID) == expected


# --- status, conversations, subscriptions -----------------------------------------------------


async def test_messaging_feature_status_reads_the_page_field(
    client: GraphClient, meta: aioresponses
) -> None:
    payload = {
        "messaging_feature_status": {"hop_v2": False, "msgr_multi_app": True, "ig_multi_app": True},
        "id": "1100000001",
    }
    meta.get(ANY_FB, payload=payload)
    assert await client.messaging_feature_status(FB) == payload
    _, url, _ = only_request(meta)
    assert url.path == "/v25.0/1100000001"
    assert url.query["fields"] == "messaging_feature_status"


async def test_conversations_on_facebook_login_filters_by_platform_and_user(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.get(ANY_FB, payload={"data": [{"id": "t_1", "updated_time": "2026-01-01T00:00:00+0000"}]})
    answer = await client.conversations(FB, user_id=IGSID)
    assert answer["data"][0]["id"] == "t_1"
    _, url, _ = only_request(meta)
    assert url.path == "/v25.0/1100000001/conversations"
    assert url.query["platform"] == "instagram"
    assert url.query["user_id"] == IGSID


async def test_conversations_on_instagram_login_uses_ig_host_and_bearer(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.get(ANY_IG, payload={"data": []})
    await client.conversations(IG, fields=["messages", "is_owner"])
    _, url, kwargs = only_request(meta)
    assert url.path == "/v25.0/17841400000000001/conversations"
    assert url.query["fields"] == "messages,is_owner"
    assert kwargs["headers"]["Authorization"] == f"Bearer {IG_TOKEN}"


async def test_subscribed_apps_and_subscribe_app(client: GraphClient, meta: aioresponses) -> None:
    meta.get(
        ANY_FB, payload={"data": [{"id": "1", "name": "bot", "subscribed_fields": ["messages"]}]}
    )
    meta.post(ANY_FB, payload={"success": "true"})
    listed = await client.subscribed_apps(FB)
    assert listed["data"][0]["subscribed_fields"] == ["messages"]
    answer = await client.subscribe_app(
        FB, ["messages", "messaging_postbacks", "messaging_handovers"]
    )
    assert answer == {"success": "true"}
    posts = [
        (url, call.kwargs)
        for (method, url), calls in meta.requests.items()
        for call in calls
        if method == "POST"
    ]
    assert len(posts) == 1
    url, kwargs = posts[0]
    assert url.path == "/v25.0/1100000001/subscribed_apps"
    assert kwargs["json"] == {
        "subscribed_fields": "messages,messaging_postbacks,messaging_handovers"
    }


async def test_subscribe_app_on_instagram_login_uses_ig_node(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_IG, payload={"success": True})
    await client.subscribe_app(IG, ["comments", "messages"])
    _, url, kwargs = only_request(meta)
    assert url.host == "graph.instagram.com"
    assert url.path == "/v25.0/17841400000000001/subscribed_apps"
    assert kwargs["json"] == {"subscribed_fields": "comments,messages"}


# --- error mapping ----------------------------------------------------------------------------


def meta_error(
    code: int, message: str, subcode: int | None = None, type_: str = "OAuthException"
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": message,
        "type": type_,
        "code": code,
        "fbtrace_id": "AZx9Qk1",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


ERROR_CASES: list[tuple[int, dict[str, Any], type[GraphError]]] = [
    (400, meta_error(10, "This message is sent outside of allowed window.", 2534022), WindowClosed),
    (
        400,
        meta_error(10, "(#10) This message is sent outside of allowed window.", 2018278),
        WindowClosed,
    ),
    (400, meta_error(10, "Outside window, needs news messaging", 2018065), WindowClosed),
    (400, meta_error(1545041, "Message failed to send because the window closed"), WindowClosed),
    (400, meta_error(551, "This person isn't available right now."), RecipientUnavailable),
    (400, meta_error(551, "This person isn't available right now.", 1545041), RecipientUnavailable),
    (
        400,
        meta_error(10, "This person isn't receiving messages from you right now.", 2018108),
        RecipientUnavailable,
    ),
    (
        400,
        meta_error(100, "(#100) Esta persona no es la propietaria del hilo.", 2534037),
        NotThreadOwner,
    ),
    (400, meta_error(2534014, "User not found"), NotThreadOwner),
    (400, meta_error(100, "User not found", 2534014), NotThreadOwner),
    (
        400,
        meta_error(
            27,
            "(#27) Take thread control is not supported when Conversation Routing is not enabled",
        ),
        TakeNotSupported,
    ),
    (400, meta_error(100, "Take thread control is not supported", 2534123), TakeNotSupported),
    (400, meta_error(10, "Private reply already sent", 2534025), PrivateReplyUsed),
    (
        400,
        meta_error(100, "(#100) Param recipient must be a valid id", type_="GraphMethodException"),
        InvalidParameter,
    ),
    (400, meta_error(100, "No matching user found", 2018001), InvalidParameter),
    (400, meta_error(100, "Attachment fetch failed", 2018008), InvalidParameter),
    (400, meta_error(100, "(#100) Tag ACCOUNT_UPDATE is no longer supported"), InvalidParameter),
    (400, meta_error(1, "Invalid instant form id", 2018382), InvalidParameter),
    (
        401,
        meta_error(
            190, "Error validating access token: Session has expired on Sunday, 01-Mar-26.", 463
        ),
        InvalidToken,
    ),
    (
        403,
        meta_error(200, "(#200) Requires instagram_manage_messages permission"),
        PermissionDenied,
    ),
    (
        403,
        meta_error(10, "(#10) Application does not have permission for this action"),
        PermissionDenied,
    ),
    (400, meta_error(4, "(#4) Application request limit reached"), RateLimited),
    (400, meta_error(17, "(#17) User request limit reached"), RateLimited),
    (400, meta_error(32, "(#32) Page request limit reached"), RateLimited),
    (400, meta_error(613, "Calls to this api have exceeded the rate limit."), RateLimited),
    (
        400,
        meta_error(80002, "There have been too many calls to this Instagram account."),
        RateLimited,
    ),
    (400, meta_error(80004, "There have been too many calls to this ad-account."), RateLimited),
    (
        500,
        meta_error(2, "An unexpected error has occurred. Please retry your request later."),
        TransientError,
    ),
    (500, meta_error(1, "An unknown error has occurred."), TransientError),
    (502, {}, TransientError),
    (400, meta_error(36103, "Messaging not available"), UnknownGraphError),
    (404, {}, UnknownGraphError),
]


@pytest.mark.parametrize(("status", "body", "expected"), ERROR_CASES)
def test_classify_maps_meta_error_bodies_to_typed_errors(
    status: int, body: dict[str, Any], expected: type[GraphError]
) -> None:
    error = classify(status, body)
    assert type(error) is expected
    if body:
        assert error.code == body["error"]["code"]
        assert error.subcode == body["error"].get("error_subcode")
        assert error.fbtrace_id == "AZx9Qk1"
        assert error.error_type == body["error"]["type"]
        assert error.message == body["error"]["message"]
    assert error.http_status == status


@pytest.mark.parametrize(("status", "body", "expected"), ERROR_CASES)
async def test_client_raises_typed_error_from_meta_answer(
    client: GraphClient,
    meta: aioresponses,
    records: list[CallRecord],
    status: int,
    body: dict[str, Any],
    expected: type[GraphError],
) -> None:
    meta.post(ANY_FB, status=status, payload=body)
    with pytest.raises(GraphError) as info:
        await client.send_message(FB, {"id": IGSID}, {"text": "hi"})
    assert type(info.value) is expected
    assert TOKEN not in str(info.value)
    assert records[-1].status == status
    assert records[-1].error_code == (body["error"]["code"] if body else None)


@pytest.mark.parametrize(
    ("error_class", "action"),
    [
        (WindowClosed, "give_up"),
        (RecipientUnavailable, "give_up"),
        (NotThreadOwner, "reconcile"),
        (TakeNotSupported, "alert"),
        (PrivateReplyUsed, "give_up"),
        (InvalidParameter, "alert"),
        (InvalidToken, "alert"),
        (PermissionDenied, "alert"),
        (RateLimited, "slow_down"),
        (TransientError, "retry"),
        (GraphUnreachable, "retry"),
        (UnknownGraphError, "alert"),
        (ContentError, "give_up"),
    ],
)
def test_each_error_class_carries_platform_action(
    error_class: type[GraphError], action: str
) -> None:
    assert error_class.action == action


async def test_not_owner_answer_raises_not_thread_owner_with_code_and_subcode(
    client: GraphClient, meta: aioresponses
) -> None:
    body = meta_error(100, "(#100) Esta persona no es la propietaria del hilo.", 2534037)
    meta.post(ANY_FB, status=400, payload=body)
    with pytest.raises(NotThreadOwner) as info:
        await client.release_thread_control(FB, IGSID)
    assert (info.value.code, info.value.subcode) == (100, 2534037)
    assert "code 100/2534037" in str(info.value)
    assert "propietaria" in str(info.value)


async def test_rate_limited_613_reads_time_to_regain_access_from_buc_header(
    client: GraphClient, meta: aioresponses
) -> None:
    usage = {
        "1100000001": [
            {
                "type": "messenger",
                "call_count": 100,
                "total_cputime": 25,
                "total_time": 40,
                "estimated_time_to_regain_access": 5,
            }
        ]
    }
    meta.post(
        ANY_FB,
        status=400,
        payload=meta_error(613, "Calls to this api have exceeded the rate limit."),
        headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
    )
    with pytest.raises(RateLimited) as info:
        await client.send_message(FB, {"id": IGSID}, {"text": "hi"})
    assert info.value.retry_after == 300.0
    assert info.value.code == 613


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"X-App-Usage": '{"call_count": 100, "total_cputime": 10, "total_time": 12}'}, None),
        ({"x-app-usage": '{"call_count": 100, "estimated_time_to_regain_access": 2}'}, 120.0),
        (
            {
                "X-Business-Use-Case-Usage": json.dumps(
                    {
                        "1": [{"estimated_time_to_regain_access": 1}],
                        "2": [{"estimated_time_to_regain_access": 3}],
                    }
                )
            },
            180.0,
        ),
        ({"X-Business-Use-Case-Usage": '{"1": [{"estimated_time_to_regain_access": 0}]}'}, None),
        ({"X-Business-Use-Case-Usage": "not json"}, None),
        ({"Retry-After": "42"}, 42.0),
    ],
)
def test_retry_after_comes_from_usage_headers_in_minutes_or_retry_after_in_seconds(
    headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after_from_headers(headers) == expected


def test_http_429_without_body_is_rate_limited() -> None:
    error = classify(429, b"", {"Retry-After": "7"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0


def test_non_json_5xx_body_is_transient_and_keeps_a_snippet() -> None:
    error = classify(503, b"<html>Service Unavailable</html>")
    assert isinstance(error, TransientError)
    assert "Service Unavailable" in error.message


def test_graph_error_str_names_code_subcode_and_message() -> None:
    error = classify(
        400, meta_error(10, "This message is sent outside of allowed window.", 2534022)
    )
    text = str(error)
    assert "code 10/2534022" in text
    assert "outside of allowed window" in text
    assert "AZx9Qk1" in text


def test_graph_errors_survive_pickling() -> None:
    error = classify(
        400,
        meta_error(613, "Calls to this api have exceeded the rate limit."),
        {"Retry-After": "9"},
    )
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is RateLimited
    assert (copy.code, copy.retry_after, copy.message) == (613, 9.0, error.message)


async def test_token_echoed_in_meta_message_is_redacted(
    client: GraphClient, meta: aioresponses
) -> None:
    body = meta_error(190, f"Malformed access token {TOKEN}")
    meta.post(ANY_FB, status=400, payload=body)
    with pytest.raises(InvalidToken) as info:
        await client.send_message(FB, {"id": IGSID}, {"text": "hi"})
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    assert TOKEN not in info.value.message


async def test_error_inside_a_200_answer_is_raised(client: GraphClient, meta: aioresponses) -> None:
    meta.post(ANY_FB, status=200, payload=meta_error(2, "An unexpected error has occurred."))
    with pytest.raises(TransientError):
        await client.send_message(FB, {"id": IGSID}, {"text": "hi"})


async def test_non_json_success_answer_is_unknown_not_retried(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, status=200, body="<html>ok</html>", content_type="text/html")
    with pytest.raises(UnknownGraphError, match="not JSON"):
        await client.send_message(FB, {"id": IGSID}, {"text": "hi"})


# --- network faults ---------------------------------------------------------------------------


async def test_timeout_becomes_graph_unreachable(
    client: GraphClient, meta: aioresponses, records: list[CallRecord]
) -> None:
    meta.post(ANY_FB, exception=TimeoutError())
    with pytest.raises(GraphUnreachable) as info:
        await client.send_message(FB, {"id": IGSID}, {"text": "hi"})
    assert isinstance(info.value, TransientError)
    assert info.value.action == "retry"
    assert records[-1].status is None
    assert records[-1].error_code is None


async def test_server_timeout_becomes_graph_unreachable(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.get(ANY_FB, exception=aiohttp.ServerTimeoutError("Timeout on reading data from socket"))
    with pytest.raises(GraphUnreachable):
        await client.thread_owner(FB, IGSID)


async def test_connection_error_becomes_graph_unreachable_without_token(
    client: GraphClient, meta: aioresponses
) -> None:
    leaky = aiohttp.ClientConnectionError(
        f"Cannot connect to https://graph.facebook.com/v25.0/me/messages?access_token={TOKEN}"
    )
    meta.post(ANY_FB, exception=leaky)
    with pytest.raises(GraphUnreachable) as info:
        await client.send_message(FB, {"id": IGSID}, {"text": "hi"})
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


async def test_unmatched_request_connection_refused_never_shows_bearer_token(
    client: GraphClient, meta: aioresponses
) -> None:
    meta.post(ANY_FB, payload=SENT)  # nothing for graph.instagram.com
    with pytest.raises(GraphUnreachable) as info:
        await client.send_message(IG, {"id": IGSID}, {"text": "hi"})
    assert IG_TOKEN not in str(info.value)


async def test_broken_payload_is_transient(client: GraphClient, meta: aioresponses) -> None:
    meta.post(ANY_FB, exception=aiohttp.ClientPayloadError("Response payload is not completed"))
    with pytest.raises(TransientError) as info:
        await client.send_message(FB, {"id": IGSID}, {"text": "hi"})
    assert not isinstance(info.value, GraphUnreachable)


# --- metrics hook -----------------------------------------------------------------------------


async def test_on_call_records_method_template_path_status_and_duration(
    session: aiohttp.ClientSession, meta: aioresponses
) -> None:
    ticks = iter([10.0, 10.25])
    records: list[CallRecord] = []
    client = GraphClient(session, on_call=records.append, clock=lambda: next(ticks))
    meta.post(ANY_FB, payload=SENT)
    await client.send_message(FB, {"id": IGSID}, {"text": "hi"})
    assert records == [
        CallRecord(
            method="POST", path="/{node}/messages", status=200, error_code=None, duration_s=0.25
        )
    ]
    assert TOKEN not in repr(records)


async def test_failing_metrics_hook_does_not_fail_the_call(
    session: aiohttp.ClientSession, meta: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: CallRecord) -> None:
        raise RuntimeError("metrics down")

    client = GraphClient(session, on_call=broken)
    meta.post(ANY_FB, payload=SENT)
    assert await client.send_message(FB, {"id": IGSID}, {"text": "hi"}) == SENT
    assert "on_call hook failed" in caplog.text


async def test_client_uses_the_session_it_was_given(
    session: aiohttp.ClientSession, meta: aioresponses
) -> None:
    client = GraphClient(session)
    meta.post(ANY_FB, payload=SENT, repeat=True)
    await client.send_message(FB, {"id": IGSID}, {"text": "one"})
    await client.send_message(FB, {"id": IGSID}, {"text": "two"})
    assert not session.closed
