"""Webhook bodies → typed events: every fixture, every field, and garbage that must not crash."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ingress.events import (
    AppRolesEvent,
    CommentEvent,
    Event,
    EventKind,
    HandoverEvent,
    MentionEvent,
    MessageDeletedEvent,
    MessageEditEvent,
    MessageEvent,
    PostbackEvent,
    ReactionEvent,
    ReadEvent,
    ReferralEvent,
    UnknownEvent,
)
from orchestrator.ingress.parser import (
    MalformedJSON,
    ParsedBody,
    parse_body,
    parse_payload,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"

IG = "17841400000000001"
CUSTOMER = "1234567890123456"
CUSTOMER_2 = "1234567890123457"
CUSTOMER_3 = "1234567890123458"
INBOX = "1217981644879628"
BOT = "1111111111"
AGENT = "2222222222"
T = 1730000000000
K = EventKind

EXPECTED_KINDS: dict[str, list[EventKind]] = {
    "message_text": [K.MESSAGE],
    "message_quick_reply": [K.MESSAGE],
    "message_reply_to": [K.MESSAGE],
    "message_story_reply": [K.MESSAGE],
    "message_referral_ad": [K.MESSAGE],
    "message_attachments": [K.MESSAGE],
    "message_unsupported": [K.MESSAGE],
    "message_echo": [K.MESSAGE_ECHO],
    "message_deleted": [K.MESSAGE_DELETED],
    "message_edit": [K.MESSAGE_EDIT],
    "reaction_react": [K.REACTION],
    "reaction_unreact": [K.REACTION],
    "postback": [K.POSTBACK],
    "read": [K.READ],
    "referral": [K.REFERRAL],
    "pass_thread_control": [K.PASS_THREAD_CONTROL],
    "take_thread_control": [K.TAKE_THREAD_CONTROL],
    "request_thread_control": [K.REQUEST_THREAD_CONTROL],
    "app_roles": [K.APP_ROLES],
    "standby_message": [K.MESSAGE],
    "comments": [K.COMMENT, K.COMMENT],
    "live_comments": [K.LIVE_COMMENT],
    "mentions": [K.MENTION, K.MENTION],
    "comments_ig_login_layout": [K.COMMENT],
    "batch": [
        K.MESSAGE,
        K.REACTION,
        K.MESSAGE,
        K.COMMENT,
        K.MESSAGE_ECHO,
        K.PASS_THREAD_CONTROL,
    ],
    "unknown_kind": [K.UNKNOWN, K.UNKNOWN],
    "non_ascii_text": [K.MESSAGE],
}
ALL_FIXTURES = sorted(EXPECTED_KINDS)


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_bytes())
    return payload


def parse_fixture(name: str) -> ParsedBody:
    return parse_body((FIXTURES / f"{name}.json").read_bytes())


def only(name: str) -> Event:
    parsed = parse_fixture(name)
    assert parsed.problems == ()
    assert len(parsed.events) == 1
    return parsed.events[0]


def first_item(payload: dict[str, Any]) -> dict[str, Any]:
    entry = payload["entry"][0]
    item: dict[str, Any] = (entry.get("messaging") or entry.get("standby") or entry["changes"])[0]
    return item


def envelope(item: dict[str, Any], *, entry_time: Any = T + 500) -> dict[str, Any]:
    return {"object": "instagram", "entry": [{"id": IG, "time": entry_time, "messaging": [item]}]}


def incoming(**event: Any) -> dict[str, Any]:
    return {"sender": {"id": CUSTOMER}, "recipient": {"id": IG}, "timestamp": T, **event}


# ---------------------------------------------------------------------------------------------
# Every fixture


def test_every_fixture_file_has_an_expectation() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == ALL_FIXTURES


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_parses_to_the_expected_kinds_and_count(name: str) -> None:
    parsed = parse_fixture(name)

    assert parsed.shape_ok
    assert [e.kind for e in parsed.events] == EXPECTED_KINDS[name]
    if name != "unknown_kind":
        assert parsed.problems == ()


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_events_serialise_to_plain_json_with_raw_once(name: str) -> None:
    for event in parse_fixture(name).events:
        data = event.to_json()

        assert data["kind"] == event.kind.value and type(data["kind"]) is str
        assert type(data["source"]) is str
        assert data["dedup_key"] == event.dedup_key
        assert data["raw"] == event.raw
        assert list(data).count("raw") == 1 and list(data)[-1] == "raw"
        assert json.loads(json.dumps(data, allow_nan=False)) == data


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixture_events_have_string_ids_ms_times_and_aware_utc_datetimes(name: str) -> None:
    for event in parse_fixture(name).events:
        assert isinstance(event.account_id, str) and event.account_id
        assert event.customer_id is None or isinstance(event.customer_id, str)
        assert event.timestamp_ms >= 10**12
        assert event.occurred_at.tzinfo is UTC
        assert event.object in {"instagram", "page"}
        assert event.source in {"messaging", "standby", "changes"}


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_redelivery_yields_identical_dedup_keys(name: str) -> None:
    body = (FIXTURES / f"{name}.json").read_bytes()
    compact = json.dumps(json.loads(body), separators=(",", ":")).encode()

    first, second, reformatted = parse_body(body), parse_body(body), parse_body(compact)

    keys = [e.dedup_key for e in first.events]
    assert keys == [e.dedup_key for e in second.events]
    assert keys == [e.dedup_key for e in reformatted.events]
    assert first.events == second.events


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_raw_is_the_item_exactly_as_received(name: str) -> None:
    payload = load(name)
    items = []
    for entry in payload["entry"]:
        for source in ("messaging", "standby", "changes"):
            items.extend(entry.get(source, []))
        if "field" in entry:
            items.append({"field": entry["field"], "value": entry["value"]})

    assert [e.raw for e in parse_payload(payload).events] == items


def test_dedup_keys_differ_between_all_fixture_events() -> None:
    keys = [e.dedup_key for name in ALL_FIXTURES for e in parse_fixture(name).events]

    assert len(keys) == len(set(keys))


# ---------------------------------------------------------------------------------------------
# Messages


def test_text_message_has_customer_account_mid_and_ms_time() -> None:
    event = only("message_text")

    assert isinstance(event, MessageEvent)
    assert event.kind == K.MESSAGE and not event.is_echo
    assert event.source == "messaging" and event.object == "instagram"
    assert event.account_id == IG
    assert event.customer_id == CUSTOMER
    assert event.mid.startswith("aWdf")
    assert event.dedup_key == f"msg:{event.mid}"
    assert event.text == "Hi! Do you ship to Vienna?"
    assert event.timestamp_ms == T
    assert event.occurred_at == datetime(2024, 10, 27, 3, 33, 20, tzinfo=UTC)
    assert event.attachments == () and event.app_id is None and event.referral is None


def test_quick_reply_payload_is_exposed() -> None:
    event = only("message_quick_reply")

    assert isinstance(event, MessageEvent)
    assert event.quick_reply_payload == "SIZE_M"
    assert event.text == "Size M"


def test_inline_reply_exposes_the_replied_mid() -> None:
    event = only("message_reply_to")

    assert isinstance(event, MessageEvent)
    assert event.reply_to_mid == first_item(load("message_text"))["message"]["mid"]
    assert event.reply_to_story_id is None and event.reply_to_story_url is None


def test_story_reply_exposes_story_id_and_cdn_url() -> None:
    event = only("message_story_reply")

    assert isinstance(event, MessageEvent)
    assert event.reply_to_mid is None
    assert event.reply_to_story_id == "17950000000000001"
    assert event.reply_to_story_url is not None
    assert event.reply_to_story_url.startswith("https://lookaside.fbsbx.com/")


def test_click_to_direct_ad_referral_is_typed() -> None:
    event = only("message_referral_ad")

    assert isinstance(event, MessageEvent)
    assert event.referral is not None
    assert event.referral.ref == "spring_sale"
    assert event.referral.source == "ADS"
    assert event.referral.type == "OPEN_THREAD"
    assert event.referral.ad_id == "120200000000000001"
    assert event.referral.ads_context_data["ad_title"] == "Spring sale: 20% off"
    assert event.referral.product_id is None


def test_every_attachment_type_is_typed_without_downloading() -> None:
    event = only("message_attachments")
    assert isinstance(event, MessageEvent)
    by_type = {a.type: a for a in event.attachments}

    assert [a.type for a in event.attachments] == [
        "image",
        "video",
        "audio",
        "file",
        "share",
        "story_mention",
        "ig_post",
        "post",
        "ig_reel",
        "reel",
        "sticker",
        "ephemeral",
        "fallback",
        "template",
        "appointment_booking",
        "holographic_note",
    ]
    for kind in ("image", "video", "audio", "file", "share", "story_mention", "post"):
        assert (by_type[kind].url or "").startswith("https://lookaside.fbsbx.com/"), kind
    assert by_type["ig_post"].title == "New collection"
    assert by_type["ig_reel"].title == "Behind the scenes"
    assert by_type["ig_reel"].reel_video_id == "17880000000000009"
    assert by_type["reel"].reel_video_id == "17880000000000010"  # number → str
    assert by_type["sticker"].sticker_id == "369239263222822"  # number → str
    assert by_type["ephemeral"].url is None and by_type["ephemeral"].payload == {}
    assert by_type["fallback"].url == "https://example.com/product/42"
    assert by_type["fallback"].title == "Shared link"
    assert by_type["template"].payload["template_type"] == "generic"
    assert by_type["appointment_booking"].payload["status"] == "confirmed"
    assert by_type["holographic_note"].payload["future"] is True
    assert event.text is None


def test_unsupported_message_is_flagged() -> None:
    event = only("message_unsupported")

    assert isinstance(event, MessageEvent)
    assert event.is_unsupported
    assert event.text is None and event.attachments == ()


def test_echo_swaps_account_and_customer_and_keeps_sending_app() -> None:
    event = only("message_echo")

    assert isinstance(event, MessageEvent)
    assert event.kind == K.MESSAGE_ECHO and event.is_echo
    assert event.account_id == IG  # the sender of an echo
    assert event.customer_id == CUSTOMER  # the recipient of an echo
    assert event.app_id == INBOX
    assert event.dedup_key == f"msg:{event.mid}"


def test_unsend_becomes_message_deleted_with_the_same_mid() -> None:
    event = only("message_deleted")
    original = first_item(load("message_text"))["message"]["mid"]

    assert isinstance(event, MessageDeletedEvent)
    assert event.mid == original
    assert event.dedup_key == f"del:{original}"
    assert event.customer_id == CUSTOMER


def test_edit_carries_new_text_and_edit_number() -> None:
    event = only("message_edit")

    assert isinstance(event, MessageEditEvent)
    assert event.text == "Hi! Do you ship to Graz?"
    assert event.num_edit == 1
    assert event.dedup_key == f"edit:{event.mid}:1"


def test_non_ascii_text_is_decoded_from_meta_escapes() -> None:
    event = only("non_ascii_text")

    assert isinstance(event, MessageEvent)
    assert event.text == (
        "Grüße aus München! Können Sie das Kleid in Größe M schicken? 😊👗 Danke \u2013 Jürgen"
    )
    assert "Grüße" in json.dumps(event.to_json(), ensure_ascii=False)


def test_message_without_mid_is_kept_as_unknown_with_reason() -> None:
    parsed = parse_payload(envelope(incoming(message={"text": "no mid"})))

    [event] = parsed.events
    assert isinstance(event, UnknownEvent)
    assert event.reason == "message has no mid"
    assert parsed.problems == ("entry[0].messaging[0]: message has no mid",)
    assert event.account_id == IG and event.customer_id == CUSTOMER


def test_message_without_sender_is_unknown_because_it_has_no_customer() -> None:
    item = {"recipient": {"id": IG}, "timestamp": T, "message": {"mid": "aWdfX1", "text": "?"}}

    [event] = parse_payload(envelope(item)).events

    assert isinstance(event, UnknownEvent)
    assert "customer" in event.reason


def test_numeric_ids_are_normalised_to_strings() -> None:
    item = {
        "sender": {"id": int(CUSTOMER)},
        "recipient": {"id": int(IG)},
        "timestamp": T,
        "message": {"mid": "aWdfX2", "text": "hi", "is_echo": False},
    }
    payload = {"object": "instagram", "entry": [{"id": int(IG), "time": T, "messaging": [item]}]}

    [event] = parse_payload(payload).events

    assert event.account_id == IG and event.customer_id == CUSTOMER


def test_sibling_referral_attaches_to_its_message_instead_of_a_second_event() -> None:
    item = incoming(
        message={"mid": "aWdfX3", "text": "hi"},
        referral={"ref": "spring", "source": "SHORTLINK", "type": "OPEN_THREAD"},
    )

    [event] = parse_payload(envelope(item)).events

    assert isinstance(event, MessageEvent)
    assert event.referral is not None and event.referral.ref == "spring"


# ---------------------------------------------------------------------------------------------
# Reactions, postbacks, reads, referrals


def test_react_has_action_reaction_emoji_and_full_dedup_key() -> None:
    event = only("reaction_react")

    assert isinstance(event, ReactionEvent)
    assert (event.action, event.reaction, event.emoji) == ("react", "love", "\u2764\ufe0f")
    assert event.dedup_key == f"reaction:{event.mid}:{CUSTOMER}:react:love:{T + 10000}"


def test_unreact_has_no_reaction_and_a_distinct_key() -> None:
    event = only("reaction_unreact")
    react = only("reaction_react")

    assert isinstance(event, ReactionEvent) and isinstance(react, ReactionEvent)
    assert event.action == "unreact" and event.reaction is None and event.emoji is None
    assert event.mid == react.mid
    assert event.dedup_key == f"reaction:{event.mid}:{CUSTOMER}:unreact::{T + 11000}"


def test_postback_has_title_payload_referral_and_mid_key() -> None:
    event = only("postback")

    assert isinstance(event, PostbackEvent)
    assert event.title == "Talk to an agent" and event.payload == "CARE_HELP"
    assert event.referral is not None and event.referral.source == "SHORTLINKS"
    assert event.dedup_key == f"postback:{event.mid}"


def test_postback_without_mid_keys_on_sender_time_and_payload() -> None:
    item = incoming(postback={"title": "Get started", "payload": "GET_STARTED"})

    [event] = parse_payload(envelope(item)).events

    assert isinstance(event, PostbackEvent) and event.mid is None
    assert event.dedup_key == f"postback:{CUSTOMER}:{T}:GET_STARTED"


def test_ig_read_keys_on_mid_and_messenger_read_on_watermark() -> None:
    ig = only("read")
    [messenger] = parse_payload(envelope(incoming(read={"watermark": T - 5000}))).events

    assert isinstance(ig, ReadEvent) and isinstance(messenger, ReadEvent)
    assert ig.dedup_key == f"read:{CUSTOMER}:{ig.mid}" and ig.watermark is None
    assert messenger.mid is None and messenger.watermark == T - 5000
    assert messenger.dedup_key == f"read:{CUSTOMER}:{T - 5000}"


@pytest.mark.parametrize("spelling", ["SHORTLINK", "SHORTLINKS", "shortlinks"])
def test_referral_accepts_every_spelling_of_the_ig_me_source(spelling: str) -> None:
    payload = load("referral")
    first_item(payload)["referral"]["source"] = spelling

    [event] = parse_payload(payload).events

    assert isinstance(event, ReferralEvent)
    assert event.referral.source == "SHORTLINKS"
    assert first_item(payload)["referral"]["source"] == spelling  # raw untouched


def test_referral_event_has_ref_and_key_on_sender_time_ref() -> None:
    event = only("referral")

    assert isinstance(event, ReferralEvent)
    assert (event.referral.ref, event.referral.type) == ("spring", "OPEN_THREAD")
    assert event.referral.source == "SHORTLINKS"  # fixture says SHORTLINK
    assert event.dedup_key == f"referral:{CUSTOMER}:{T + 14000}:spring"


# ---------------------------------------------------------------------------------------------
# Handovers and app roles


def test_pass_thread_control_names_previous_and_new_owner() -> None:
    event = only("pass_thread_control")

    assert isinstance(event, HandoverEvent)
    assert (event.previous_owner_app_id, event.new_owner_app_id) == (BOT, INBOX)
    assert event.metadata == "escalate:billing"
    assert event.dedup_key == f"pass_thread_control:{CUSTOMER}:{T + 15000}:{INBOX}"


def test_take_thread_control_normalises_numeric_new_owner() -> None:
    event = only("take_thread_control")

    assert isinstance(event, HandoverEvent)
    assert event.new_owner_app_id == BOT
    assert event.previous_owner_app_id == INBOX
    assert event.dedup_key == f"take_thread_control:{CUSTOMER}:{T + 16000}:{BOT}"


def test_request_thread_control_keys_on_requested_owner() -> None:
    event = only("request_thread_control")

    assert isinstance(event, HandoverEvent)
    assert event.requested_owner_app_id == AGENT and event.new_owner_app_id is None
    assert event.metadata == "user_asked_for_bot"
    assert event.dedup_key == f"request_thread_control:{CUSTOMER}:{T + 17000}:{AGENT}"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1111111111, BOT), ("1111111111", BOT), (1111111111.0, BOT), (None, None), ("", None)],
)
def test_handover_owner_ids_are_normalised_to_str_or_none(value: Any, expected: Any) -> None:
    item = incoming(pass_thread_control={"previous_owner_app_id": None, "new_owner_app_id": value})

    [event] = parse_payload(envelope(item)).events

    assert isinstance(event, HandoverEvent)
    assert event.new_owner_app_id == expected and event.previous_owner_app_id is None


def test_app_roles_maps_app_ids_to_role_tuples_without_customer() -> None:
    event = only("app_roles")

    assert isinstance(event, AppRolesEvent)
    assert event.object == "page"
    assert event.roles == {"123456789": ("primary_receiver",), AGENT: ("secondary_receiver",)}
    assert event.customer_id is None
    assert event.account_id == "102938475610293"
    assert event.dedup_key == (
        'app_roles:1458692752478:{"123456789":["primary_receiver"],'
        '"2222222222":["secondary_receiver"]}'
    )


# ---------------------------------------------------------------------------------------------
# Standby


def test_standby_message_is_a_message_with_standby_source_and_entry_account() -> None:
    event = only("standby_message")

    assert isinstance(event, MessageEvent)
    assert event.source == "standby"
    assert event.account_id == IG and event.customer_id == CUSTOMER


def test_same_item_in_messaging_or_standby_gets_the_same_dedup_key() -> None:
    for name in ALL_FIXTURES:
        payload = load(name)
        moved = copy.deepcopy(payload)
        for entry in moved["entry"]:
            if "messaging" in entry:
                entry["standby"] = entry.pop("messaging")

        assert [e.dedup_key for e in parse_payload(moved).events] == [
            e.dedup_key for e in parse_payload(payload).events
        ], name


def test_standby_prefers_entry_id_as_account() -> None:
    item = incoming(message={"mid": "aWdfX4", "text": "hi"})
    item["recipient"] = {"id": "99999"}
    payload = {"object": "instagram", "entry": [{"id": IG, "time": T, "standby": [item]}]}

    [event] = parse_payload(payload).events

    assert event.account_id == IG


def test_standby_entry_id_that_is_the_customer_falls_back_to_business_side() -> None:
    item = incoming(message={"mid": "aWdfX5", "text": "hi"})
    payload = {"object": "instagram", "entry": [{"id": CUSTOMER, "time": T, "standby": [item]}]}

    parsed = parse_payload(payload)

    assert parsed.events[0].account_id == IG
    assert any("customer's id" in p for p in parsed.problems)


# ---------------------------------------------------------------------------------------------
# Comments and mentions


def test_comments_are_typed_with_commenter_media_and_ad() -> None:
    parsed = parse_fixture("comments")
    top, reply = parsed.events

    assert isinstance(top, CommentEvent) and isinstance(reply, CommentEvent)
    assert top.source == "changes" and top.account_id == IG
    assert top.customer_id == CUSTOMER_2 and top.username == "jane.doe"
    assert (top.comment_id, top.text, top.parent_id) == ("17860000000000001", "price?", None)
    assert (top.media_id, top.media_product_type, top.ad_id) == ("17990000000000001", "FEED", None)
    assert top.dedup_key == "comment:17860000000000001"
    assert reply.parent_id == "17860000000000001" and reply.customer_id == CUSTOMER_3
    assert (reply.media_product_type, reply.ad_id) == ("AD", "120200000000000001")


def test_comment_without_timestamp_uses_entry_time_in_seconds_as_ms() -> None:
    event = parse_fixture("comments").events[0]

    assert load("comments")["entry"][0]["time"] == 1730000100
    assert event.timestamp_ms == 1730000100000


def test_live_comment_has_its_own_kind_and_comment_key() -> None:
    event = only("live_comments")

    assert isinstance(event, CommentEvent)
    assert event.kind == K.LIVE_COMMENT
    assert event.text == "hi from the live!"
    assert event.dedup_key == "comment:17860000000000003"


def test_mentions_in_caption_and_in_comment_have_no_customer() -> None:
    caption, comment = parse_fixture("mentions").events

    assert isinstance(caption, MentionEvent) and isinstance(comment, MentionEvent)
    assert caption.comment_id is None and caption.media_id == "17990000000000004"
    assert caption.dedup_key == "mention:17990000000000004:"
    assert comment.dedup_key == "mention:17990000000000005:17860000000000005"
    assert caption.customer_id is None and comment.customer_id is None


def test_ig_login_layout_with_field_value_under_entry_uses_id_as_comment_id() -> None:
    event = only("comments_ig_login_layout")

    assert isinstance(event, CommentEvent)
    assert event.source == "changes"
    assert event.comment_id == "17860000000000006"
    assert event.media_product_type == "REELS"
    assert event.account_id == IG and event.customer_id == CUSTOMER_2
    assert event.timestamp_ms == 1730000400000


def test_comment_without_any_id_is_unknown_with_reason() -> None:
    payload = load("live_comments")
    del payload["entry"][0]["changes"][0]["value"]["comment_id"]

    parsed = parse_payload(payload)

    [event] = parsed.events
    assert isinstance(event, UnknownEvent)
    assert event.reason == "live_comments change has neither comment_id nor id"
    assert parsed.problems == (f"entry[0].changes[0]: {event.reason}",)


# ---------------------------------------------------------------------------------------------
# Batches, timestamps


def test_batch_yields_every_item_of_every_entry_in_order() -> None:
    parsed = parse_fixture("batch")
    total = sum(
        len(e.get(s, []))
        for e in load("batch")["entry"]
        for s in ("messaging", "standby", "changes")
    )

    assert len(parsed.events) == total == 6
    assert [e.source for e in parsed.events] == [
        "messaging",
        "messaging",
        "messaging",
        "changes",
        "standby",
        "messaging",
    ]
    assert [e.customer_id for e in parsed.events] == [
        CUSTOMER,
        CUSTOMER_2,
        CUSTOMER_3,
        CUSTOMER_2,
        CUSTOMER,
        CUSTOMER,
    ]


def test_batch_mixes_seconds_and_ms_and_normalises_all_to_ms() -> None:
    times = [e.timestamp_ms for e in parse_fixture("batch").events]

    assert times == [
        1730000499123,  # ms as sent
        1730000500000,  # seconds
        1730000500456,  # ms as sent
        1730000502000,  # no timestamp: entry.time in seconds
        1730000503000,  # seconds
        1730000504000,  # seconds
    ]


def test_batch_pass_with_numeric_owner_and_null_previous_owner() -> None:
    event = parse_fixture("batch").events[-1]

    assert isinstance(event, HandoverEvent)
    assert event.new_owner_app_id == AGENT and event.previous_owner_app_id is None


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1730000000, 1730000000000),
        (1730000000123, 1730000000123),
        (1730000000.5, 1730000000500),
        ("1730000000", 1730000000000),
        ("1730000000123", 1730000000123),
        (0, 0),
    ],
)
def test_timestamps_in_seconds_or_ms_numbers_or_strings_become_ms(
    timestamp: Any, expected: int
) -> None:
    [event] = parse_payload(envelope(incoming(timestamp=timestamp, read={"mid": "m"}))).events

    assert event.timestamp_ms == expected


def test_missing_or_unusable_timestamp_falls_back_to_entry_time() -> None:
    item = incoming(read={"mid": "m"})
    del item["timestamp"]
    bad = incoming(timestamp="yesterday", read={"mid": "m"})

    [missing] = parse_payload(envelope(item, entry_time=1730000000)).events
    parsed_bad = parse_payload(envelope(bad, entry_time=1730000000))

    assert missing.timestamp_ms == 1730000000000
    assert parsed_bad.events[0].timestamp_ms == 1730000000000
    assert parsed_bad.problems == (
        "entry[0].messaging[0].timestamp: unusable timestamp 'yesterday'; using entry.time",
    )


def test_no_timestamp_anywhere_gives_zero_and_a_problem() -> None:
    item = incoming(read={"mid": "m"})
    del item["timestamp"]
    payload = {"object": "instagram", "entry": [{"id": IG, "messaging": [item]}]}

    parsed = parse_payload(payload)

    assert parsed.events[0].timestamp_ms == 0
    assert parsed.events[0].occurred_at == datetime(1970, 1, 1, tzinfo=UTC)
    assert parsed.problems == ("entry[0].messaging[0]: no timestamp and no entry.time; using 0",)


def test_redelivery_in_seconds_instead_of_ms_keeps_the_reaction_key() -> None:
    in_ms = incoming(timestamp=T, reaction={"mid": "m", "action": "react", "reaction": "like"})
    in_s = incoming(
        timestamp=T // 1000, reaction={"mid": "m", "action": "react", "reaction": "like"}
    )

    [a] = parse_payload(envelope(in_ms)).events
    [b] = parse_payload(envelope(in_s)).events

    assert a.dedup_key == b.dedup_key


# ---------------------------------------------------------------------------------------------
# Unknown items, problems, objects


def test_unknown_items_are_kept_with_reason_and_location() -> None:
    parsed = parse_fixture("unknown_kind")
    delivery, insight = parsed.events

    assert isinstance(delivery, UnknownEvent) and isinstance(insight, UnknownEvent)
    assert delivery.reason == (
        "no known event key (keys: sender, recipient, timestamp, future_event)"
    )
    assert insight.reason == "changes field 'future_field' is not handled"
    assert parsed.problems == (
        f"entry[0].messaging[0]: {delivery.reason}",
        f"entry[1].changes[0]: {insight.reason}",
    )
    assert delivery.raw == first_item(load("unknown_kind"))
    assert delivery.account_id == IG and delivery.customer_id == CUSTOMER
    assert delivery.dedup_key.startswith("unknown:") and len(delivery.dedup_key) == 8 + 64
    assert insight.timestamp_ms == 1730000600000


def test_problem_names_entry_and_item_position() -> None:
    payload = {
        "object": "instagram",
        "entry": [
            {"id": IG, "time": T, "messaging": [incoming(read={"mid": "a"})]},
            {"id": IG, "time": T, "messaging": [incoming(read={"mid": "b"})]},
            {"id": IG, "time": T, "messaging": [{"foo": 1, "bar": 2}]},
        ],
    }

    parsed = parse_payload(payload)

    assert [e.kind for e in parsed.events] == [K.READ, K.READ, K.UNKNOWN]
    assert parsed.problems == ("entry[2].messaging[0]: no known event key (keys: foo, bar)",)


def test_unknown_dedup_key_is_stable_and_depends_on_content() -> None:
    def key(item: dict[str, Any]) -> str:
        return parse_payload(envelope(item)).events[0].dedup_key

    item = incoming(optin={"ref": "x"})
    reordered = dict(reversed(list(item.items())))

    assert key(item) == key(copy.deepcopy(item)) == key(reordered)
    assert key(item) != key(incoming(optin={"ref": "y"}))


def test_unknown_in_messaging_and_changes_with_same_json_get_different_keys() -> None:
    item = {"field": "x", "value": {}}
    in_messaging = envelope(item)
    in_changes = {"object": "instagram", "entry": [{"id": IG, "time": T, "changes": [item]}]}

    [a] = parse_payload(in_messaging).events
    [b] = parse_payload(in_changes).events

    assert a.dedup_key != b.dedup_key


def test_other_object_is_a_problem_but_items_are_still_parsed() -> None:
    payload = load("message_text")
    payload["object"] = "whatsapp_business_account"

    parsed = parse_payload(payload)

    assert parsed.shape_ok
    assert [e.kind for e in parsed.events] == [K.MESSAGE]
    assert parsed.events[0].object == "whatsapp_business_account"
    assert parsed.problems == (
        "object: expected 'instagram' or 'page', got 'whatsapp_business_account'; "
        "items parsed anyway",
    )


def test_unhandled_changes_field_from_dashboard_test_is_unknown() -> None:
    change = {"field": "messages", "value": {"sender": {"id": CUSTOMER}, "message": {"mid": "m"}}}
    payload = {"object": "instagram", "entry": [{"id": IG, "time": T, "changes": [change]}]}

    [event] = parse_payload(payload).events

    assert isinstance(event, UnknownEvent)
    assert event.reason == "changes field 'messages' is not handled"


def test_several_event_keys_in_one_item_give_one_event_each_and_a_problem() -> None:
    item = incoming(read={"mid": "a"}, reaction={"mid": "a", "action": "react", "reaction": "wow"})

    parsed = parse_payload(envelope(item))

    assert sorted(e.kind for e in parsed.events) == [K.REACTION, K.READ]
    assert len(parsed.problems) == 1 and "several event keys" in parsed.problems[0]


def test_entry_without_items_is_a_problem() -> None:
    parsed = parse_payload({"object": "instagram", "entry": [{"id": IG, "time": T}]})

    assert parsed.shape_ok and parsed.events == ()
    assert parsed.problems == ("entry[0]: no messaging, standby or changes items (keys: id, time)",)


def test_events_are_hashable_and_equal_by_value() -> None:
    a, b = only("message_attachments"), only("message_attachments")

    assert a == b and hash(a) == hash(b)
    assert len({a, b}) == 1


# ---------------------------------------------------------------------------------------------
# Malformed JSON and wrong shapes


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"", "line 1, column 1"),
        (b'{"object": "instagram", "entry": [}', "line 1, column 35"),
        (b'{\n  "object": "instagram",\n  "entry": [\n    {"id": 1,}\n  ]\n}', "line 4"),
        (b'{"object": "instagram"', "line 1, column 23"),
        (b"{'object': 'instagram'}", "line 1, column 2"),
        (b'{"entry": [], "x": NaN}', "line 1, column 20"),
        (b'{"text": "NaN", "entry": Infinity}', "line 1, column 26"),
        (b'{"text": "caf\xe9"}', "line 1, column 14"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_json_raises_with_line_and_column(body: bytes, where: str) -> None:
    with pytest.raises(MalformedJSON) as info:
        parse_body(body)

    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("malformed JSON")
    assert where in str(info.value)


def test_malformed_json_exposes_line_and_column_attributes() -> None:
    with pytest.raises(MalformedJSON) as info:
        parse_body(b'{"a": 1,\n "b": }')

    assert (info.value.line, info.value.column) == (2, 7)


def test_utf8_bom_is_accepted() -> None:
    body = b"\xef\xbb\xbf" + (FIXTURES / "message_text.json").read_bytes()

    assert [e.kind for e in parse_body(body).events] == [K.MESSAGE]


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        ([], "top level: expected an object with an entry array, got array"),
        ("instagram", "top level: expected an object with an entry array, got string"),
        (None, "top level: expected an object with an entry array, got null"),
        (42, "top level: expected an object with an entry array, got number"),
        ({"object": "instagram"}, "top level: no entry array (keys: object)"),
        ({"object": "instagram", "entry": {"id": IG}}, "entry: expected an array, got object"),
        ({"object": "instagram", "entry": None}, "entry: expected an array, got null"),
    ],
)
def test_wrong_top_level_shape_is_not_ok_and_says_why(payload: Any, problem: str) -> None:
    parsed = parse_payload(payload)

    assert parsed.shape_ok is False
    assert parsed.events == ()
    assert parsed.problems == (problem,)


def test_wrong_top_level_shape_from_body_is_not_ok() -> None:
    parsed = parse_body(b'[{"object": "instagram"}]')

    assert not parsed.shape_ok and parsed.events == () and len(parsed.problems) == 1


GARBAGE: list[Any] = [
    {},
    {"entry": []},
    {"entry": [None, 1, "x", [], {}]},
    {"object": 5, "entry": [{"messaging": None}]},
    {"object": "instagram", "entry": [{"messaging": [None, 1, "x", [], {}]}]},
    {"object": "instagram", "entry": [{"messaging": {"message": {"mid": "m"}}}]},
    {"object": "instagram", "entry": [{"standby": "nope", "changes": 7}]},
    {"object": "instagram", "entry": [{"id": {"x": 1}, "time": [], "messaging": [{}]}]},
    {"object": "instagram", "entry": [{"messaging": [{"message": None}]}]},
    {"object": "instagram", "entry": [{"messaging": [{"message": []}]}]},
    {"object": "instagram", "entry": [{"messaging": [{"message": {"mid": None}}]}]},
    {"object": "instagram", "entry": [{"messaging": [{"message": {"mid": "m"}}]}]},
    {"object": "instagram", "entry": [{"id": IG, "messaging": [{"message": {"mid": True}}]}]},
    {"object": "instagram", "entry": [{"messaging": [{"sender": "x", "recipient": 5}]}]},
    {"object": "instagram", "entry": [{"messaging": [{"reaction": "love"}]}]},
    {"object": "instagram", "entry": [{"messaging": [{"app_roles": {"1": 5, "2": [1, "x"]}}]}]},
    {"object": "instagram", "entry": [{"messaging": [{"timestamp": 1e308, "read": {}}]}]},
    {"object": "instagram", "entry": [{"messaging": [{"timestamp": -5, "read": {"mid": 1}}]}]},
    {"object": "instagram", "entry": [{"time": "NaN", "messaging": [{"timestamp": "inf"}]}]},
    {"object": "instagram", "entry": [{"time": 10**400, "messaging": [{"timestamp": 10**30}]}]},
    {"object": "instagram", "entry": [{"changes": [{"field": None}, {"value": 1}, {}]}]},
    {"object": "instagram", "entry": [{"changes": [{"field": "comments", "value": []}]}]},
    {"object": "instagram", "entry": [{"id": 1, "changes": [{"field": "comments", "value": {}}]}]},
    {"object": "instagram", "entry": [{"id": 1, "field": "mentions", "value": {"media_id": {}}}]},
    {"object": "instagram", "entry": [{"id": 1, "field": 3}]},
    {"object": "instagram", "entry": [{"id": 1, "value": {"id": "c"}}]},
    {"entry": [{"messaging": [{"message": {"mid": "m", "attachments": "x"}}]}]},
    {
        "entry": [
            {"messaging": [{"message": {"mid": "m", "attachments": [1, None, {"payload": 5}]}}]}
        ]
    },
    {"entry": [{"messaging": [{"message": {"mid": "m", "quick_reply": "x", "reply_to": 1}}]}]},
    {"entry": [{"messaging": [{"message": {"mid": "m", "referral": [], "text": {"a": 1}}}]}]},
    {"entry": [{"messaging": [{"pass_thread_control": {"new_owner_app_id": [1]}}]}]},
    {"entry": [{"messaging": [{"take_thread_control": {"metadata": {"a": float("nan")}}}]}]},
    {"entry": [{"messaging": [{(1, 2): "tuple key", 3: "int key", "read": {"mid": "m"}}]}]},
    {"entry": [{"messaging": [{"optin": {1, 2, 3}, "weird": object()}]}]},
]


@pytest.mark.parametrize("payload", GARBAGE, ids=range(len(GARBAGE)))
def test_handwritten_garbage_never_raises(payload: Any) -> None:
    check_survives(payload)


def random_value(rng: random.Random, depth: int = 0) -> Any:
    leaves = [
        None,
        True,
        0,
        -1,
        1730000000,
        1730000000000,
        10**20,
        1.5,
        float("inf"),
        "",
        "x",
        "17841400000000001",
        "aWdf",
        "SHORTLINK",
        "react",
        "comments",
    ]
    if depth > 3 or rng.random() < 0.4:
        return rng.choice(leaves)
    keys = [
        "object",
        "entry",
        "id",
        "time",
        "messaging",
        "standby",
        "changes",
        "field",
        "value",
        "sender",
        "recipient",
        "timestamp",
        "message",
        "mid",
        "text",
        "is_echo",
        "is_deleted",
        "attachments",
        "payload",
        "reaction",
        "action",
        "postback",
        "read",
        "referral",
        "app_roles",
        "pass_thread_control",
        "new_owner_app_id",
        "from",
        "media",
        "comment_id",
        "media_id",
    ]
    if rng.random() < 0.5:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def mutate(rng: random.Random, value: Any) -> Any:
    """Replace random parts of a real payload with random values."""
    if isinstance(value, dict):
        return {
            k: (random_value(rng) if rng.random() < 0.15 else mutate(rng, v))
            for k, v in value.items()
            if rng.random() > 0.05
        }
    if isinstance(value, list):
        return [random_value(rng) if rng.random() < 0.15 else mutate(rng, v) for v in value]
    return value


def check_survives(payload: Any) -> None:
    parsed = parse_payload(payload)

    assert isinstance(parsed, ParsedBody)
    assert all(isinstance(p, str) and p for p in parsed.problems)
    if not parsed.shape_ok:
        assert parsed.events == () and parsed.problems
    for event in parsed.events:
        json.dumps(event.to_json(), allow_nan=False)
        assert event.occurred_at.tzinfo is UTC
        assert event.dedup_key
        if isinstance(event, UnknownEvent):
            assert event.reason


@pytest.mark.parametrize("seed", range(40))
def test_random_structures_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    check_survives(random_value(rng))
    check_survives({"object": "instagram", "entry": [random_value(rng) for _ in range(4)]})


@pytest.mark.parametrize("seed", range(40))
def test_randomly_mutated_fixtures_never_raise(seed: int) -> None:
    rng = random.Random(seed)
    check_survives(mutate(rng, load(ALL_FIXTURES[seed % len(ALL_FIXTURES)])))


def test_random_bytes_either_parse_or_raise_malformed_json() -> None:
    rng = random.Random(7)
    real = (FIXTURES / "batch.json").read_bytes()
    for _ in range(60):
        body = bytearray(real)
        for _ in range(rng.randint(1, 5)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        try:
            parsed = parse_body(bytes(body))
        except MalformedJSON:
            continue
        assert isinstance(parsed, ParsedBody)


def test_cyclic_python_structure_does_not_hang_or_raise() -> None:
    item: dict[str, Any] = {"optin": {}}
    item["optin"]["self"] = item

    check_survives({"object": "instagram", "entry": [{"id": IG, "messaging": [item]}]})
