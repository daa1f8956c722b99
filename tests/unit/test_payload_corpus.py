"""The payload corpus: one fixture per payload kind Meta documents for Instagram and for
Messenger (object "page"), and one per odd shape seen in real deliveries (issue 14). Each
asserts the parsed kind and the fields the engine and the sub-apps rely on.

The Instagram kinds with a plain shape live at the top of tests/fixtures/webhooks (see
test_parsing.py); `instagram/` holds the odd shapes and the kinds added since, `messenger/`
the Page's. The shapes and their sources are in docs/payloads.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ingress.events import Event, EventKind, event_from_json
from orchestrator.ingress.parser import parse_body, parse_payload

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"

IG = "17841400000000001"
IGSID = "1234567890123456"
SELF_IGSID = "1234567890999999"
PAGE = "100000000000001"
PSID = "2000000000000001"
BOT = "1111111111"
INBOX = "1217981644879628"
PAGE_INBOX = "263902037430900"
T = 1730000100000
K = EventKind

# fixture → (kinds in order, fields of the first event, problems that must be reported)
CORPUS: dict[str, tuple[list[EventKind], dict[str, Any], list[str]]] = {
    # -- Instagram: odd shapes (issue 14) --------------------------------------------------
    "instagram/message_edit_no_text": (
        [K.MESSAGE_EDIT],
        {"customer_id": IGSID, "text": None, "text_known": False, "num_edit": 0},
        [],
    ),
    "instagram/self_postback": (
        [K.POSTBACK],
        {"account_id": IG, "customer_id": SELF_IGSID, "is_self": True, "payload": "MENU"},
        [],
    ),
    "instagram/self_message": (
        [K.MESSAGE],
        {"account_id": IG, "customer_id": SELF_IGSID, "is_self": True, "is_echo": False},
        [],
    ),
    "instagram/self_echo": (
        [K.MESSAGE_ECHO],
        {"account_id": IG, "customer_id": SELF_IGSID, "is_self": True, "app_id": BOT},
        [],
    ),
    "instagram/read_no_sender": (
        [K.READ],
        {"account_id": IG, "customer_id": None, "watermark": None},
        ["no sender.id: the customer is unknown"],
    ),
    "instagram/comments_username_only": (
        [K.COMMENT],
        {
            "account_id": IG,
            "customer_id": None,
            "username": "jane.doe",
            "comment_id": "17860000000000099",
            "media_id": "17990000000000009",
        },
        ["comment 17860000000000099 has username 'jane.doe' only (no from.id)"],
    ),
    "instagram/message_ig_story": ([K.MESSAGE], {"customer_id": IGSID}, []),
    "instagram/message_ig_post_share": ([K.MESSAGE], {"customer_id": IGSID}, []),
    # -- Instagram: standby copies and story insights ---------------------------------------
    "instagram/standby_postback": (
        [K.POSTBACK],
        {"source": "standby", "payload": None, "title": "Talk to an agent"},
        [],
    ),
    "instagram/standby_read": ([K.READ], {"source": "standby", "customer_id": IGSID}, []),
    "instagram/standby_echo": (
        [K.MESSAGE_ECHO],
        {"source": "standby", "account_id": IG, "customer_id": IGSID, "app_id": INBOX},
        [],
    ),
    "instagram/story_insights": (
        [K.STORY_INSIGHTS],
        {
            "account_id": IG,
            "customer_id": None,
            "media_id": "17887498072083520",
            "metrics": {
                "impressions": 444,
                "reach": 44,
                "taps_forward": 4,
                "taps_back": 3,
                "exits": 3,
                "replies": 0,
            },
        },
        [],
    ),
    # -- Messenger (object "page") -----------------------------------------------------------
    "messenger/message": (
        [K.MESSAGE],
        {
            "object": "page",
            "account_id": PAGE,
            "customer_id": PSID,
            "text": "Is the blue one in stock?",
            "quick_reply_payload": "STOCK_BLUE",
        },
        [],
    ),
    "messenger/message_echo": (
        [K.MESSAGE_ECHO],
        {"account_id": PAGE, "customer_id": PSID, "app_id": PAGE_INBOX, "is_self": False},
        [],
    ),
    "messenger/message_fallback_url": ([K.MESSAGE], {"customer_id": PSID}, []),
    "messenger/message_edit": (
        [K.MESSAGE_EDIT],
        {"text": "Is the blue one still in stock?", "text_known": True, "num_edit": 1},
        [],
    ),
    "messenger/reaction": ([K.REACTION], {"action": "react", "reaction": "love"}, []),
    "messenger/delivery": (
        [K.DELIVERY],
        {"account_id": PAGE, "customer_id": PSID, "watermark": T + 12},
        [],
    ),
    "messenger/read": ([K.READ], {"customer_id": PSID, "mid": None, "watermark": T + 12}, []),
    "messenger/postback": (
        [K.POSTBACK],
        {"customer_id": PSID, "payload": "GET_STARTED", "title": "Get Started"},
        [],
    ),
    "messenger/referral": ([K.REFERRAL], {"customer_id": PSID}, []),
    "messenger/optin_checkbox": (
        [K.OPTIN],
        {"account_id": PAGE, "customer_id": None, "ref": "checkout", "user_ref": "ref-7f3a9c"},
        [],
    ),
    "messenger/optin_notification_messages": (
        [K.OPTIN],
        {
            "customer_id": PSID,
            "optin_type": "notification_messages",
            "payload": "WEEKLY_DEALS",
            "token": "tok-91c2",
            "token_expires_ms": 1761536100000,
            "title": "Weekly deals",
        },
        [],
    ),
    "messenger/policy_enforcement": (
        [K.POLICY_ENFORCEMENT],
        {"account_id": PAGE, "customer_id": None, "action": "block"},
        [],
    ),
    "messenger/account_linking": (
        [K.ACCOUNT_LINKING],
        {"customer_id": PSID, "status": "linked"},
        [],
    ),
    "messenger/pass_thread_control": (
        [K.PASS_THREAD_CONTROL],
        {"new_owner_app_id": PAGE_INBOX, "previous_owner_app_id": BOT},
        [],
    ),
    "messenger/take_thread_control": (
        [K.TAKE_THREAD_CONTROL],
        {"new_owner_app_id": BOT, "previous_owner_app_id": PAGE_INBOX},
        [],
    ),
    "messenger/request_thread_control": (
        [K.REQUEST_THREAD_CONTROL],
        {"requested_owner_app_id": BOT},
        [],
    ),
    "messenger/app_roles": (
        [K.APP_ROLES],
        {
            "account_id": PAGE,
            "roles": {BOT: ("primary_receiver",), PAGE_INBOX: ("secondary_receiver",)},
        },
        [],
    ),
    "messenger/standby_message": (
        [K.MESSAGE],
        {"source": "standby", "account_id": PAGE, "customer_id": PSID, "text": "hello?"},
        [],
    ),
}


def parse(name: str) -> tuple[tuple[Event, ...], tuple[str, ...]]:
    parsed = parse_body((FIXTURES / f"{name}.json").read_bytes())
    assert parsed.shape_ok
    return parsed.events, parsed.problems


def test_every_corpus_file_has_an_entry() -> None:
    files = sorted(
        f"{p.parent.name}/{p.stem}"
        for folder in ("instagram", "messenger")
        for p in (FIXTURES / folder).glob("*.json")
    )
    assert files == sorted(CORPUS)


def test_the_corpus_covers_every_event_kind_but_unknown() -> None:
    top = [parse_body(p.read_bytes()).events for p in FIXTURES.glob("*.json")]
    kinds = {e.kind for events in top for e in events}
    kinds |= {k for kinds_, _, _ in CORPUS.values() for k in kinds_}
    assert kinds == set(EventKind)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_fixture_parses_to_its_kind_fields_and_problems(name: str) -> None:
    kinds, expected, problems = CORPUS[name]

    events, found = parse(name)

    assert [e.kind for e in events] == kinds
    actual = {key: getattr(events[0], key) for key in expected}
    assert actual == expected
    assert len(found) == len(problems)
    for needle, problem in zip(problems, found, strict=True):
        assert needle in problem


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_fixture_events_round_trip_and_keep_raw(name: str) -> None:
    events, _ = parse(name)
    body = json.loads((FIXTURES / f"{name}.json").read_bytes())
    entry = body["entry"][0]
    items = entry.get("messaging") or entry.get("standby") or entry.get("changes")
    if items is None:
        items = [{"field": entry["field"], "value": entry["value"]}]

    assert [e.raw for e in events] == items
    for event in events:
        assert event_from_json(json.loads(json.dumps(event.to_json()))) == event


# ---------------------------------------------------------------------------------------------
# 1. An edit without text


def test_edit_without_text_is_marked_unknown_never_empty() -> None:
    [event] = parse("instagram/message_edit_no_text")[0]

    data = event.to_json()

    assert data["text"] is None and data["text_known"] is False


def test_edit_with_empty_text_is_a_known_empty_text() -> None:
    body = json.loads((FIXTURES / "instagram/message_edit_no_text.json").read_bytes())
    body["entry"][0]["messaging"][0]["message_edit"]["text"] = ""

    [event] = parse_payload(body).events

    assert event.text == "" and event.text_known is True  # type: ignore[attr-defined]


def test_edit_text_known_must_match_text() -> None:
    [event] = parse("messenger/message_edit")[0]
    data = event.to_json() | {"text_known": False}

    with pytest.raises(ValueError, match="text_known=False"):
        event_from_json(data)


# ---------------------------------------------------------------------------------------------
# 2. Self messaging


def self_item(**extra: Any) -> dict[str, Any]:
    return {
        "sender": {"id": IG},
        "recipient": {"id": SELF_IGSID},
        "timestamp": T,
        "postback": {"mid": "m-self", "title": "Menu", "payload": "MENU"},
        **extra,
    }


def one(
    item: dict[str, Any], *, key: str = "messaging", entry_id: str | None = IG, **kw: Any
) -> Event:
    entry: dict[str, Any] = {"time": T, key: [item]}
    if entry_id is not None:
        entry["id"] = entry_id
    [event] = parse_payload({"object": "instagram", "entry": [entry]}, **kw).events
    return event


def test_sender_that_is_the_entry_account_makes_the_business_side_without_the_flag() -> None:
    event = one(self_item())

    assert (event.account_id, event.customer_id, event.is_self) == (IG, SELF_IGSID, True)


def test_is_self_flag_inside_the_event_object_is_read_too() -> None:
    item = self_item()
    item["postback"]["is_self"] = True

    event = one(item, key="standby")

    assert (event.account_id, event.customer_id, event.is_self) == (IG, SELF_IGSID, True)


def test_known_account_ids_decide_when_the_entry_id_is_missing() -> None:
    without = one(self_item(), entry_id=None)
    known = one(self_item(), entry_id=None, account_ids=[IG])

    assert (without.account_id, without.is_self) == (SELF_IGSID, False)  # the old reading
    assert (known.account_id, known.customer_id, known.is_self) == (IG, SELF_IGSID, True)


def test_a_customer_message_is_never_self() -> None:
    item = {"sender": {"id": IGSID}, "recipient": {"id": IG}, "timestamp": T}
    event = one({**item, "message": {"mid": "m1", "text": "hi"}}, account_ids=[IG])

    assert (event.account_id, event.customer_id, event.is_self) == (IG, IGSID, False)


def test_standby_entry_id_equal_to_the_customer_is_not_read_as_self() -> None:
    item = {"sender": {"id": IGSID}, "recipient": {"id": IG}, "timestamp": T}
    event = one({**item, "message": {"mid": "m1", "text": "hi"}}, key="standby", entry_id=IGSID)

    assert (event.account_id, event.customer_id, event.is_self) == (IG, IGSID, False)


# ---------------------------------------------------------------------------------------------
# 3. Reads without sender, comments with a username only


def test_read_without_sender_keeps_its_mid_and_a_stable_key() -> None:
    [event] = parse("instagram/read_no_sender")[0]

    assert event.mid is not None  # type: ignore[attr-defined]
    assert event.dedup_key == f"read::{event.mid}"  # type: ignore[attr-defined]


def test_read_without_sender_or_mid_or_watermark_is_unknown() -> None:
    event = one({"recipient": {"id": IG}, "timestamp": T, "read": {}})

    assert event.kind == K.UNKNOWN


def test_comment_without_any_author_is_kept_and_reported() -> None:
    value = {"id": "c1", "text": "hi", "media": {"id": "m1"}}
    body = {
        "object": "instagram",
        "entry": [{"id": IG, "time": T, "changes": [{"field": "comments", "value": value}]}],
    }

    parsed = parse_payload(body)

    assert [e.kind for e in parsed.events] == [K.COMMENT]
    assert parsed.events[0].customer_id is None
    assert parsed.problems == (
        "entry[0].changes[0].value.from: comment c1 has no author (no from.id): "
        "kept without a conversation",
    )


# ---------------------------------------------------------------------------------------------
# 4. Attachment URLs in other places


def test_ig_story_url_comes_from_story_media_url() -> None:
    [event] = parse("instagram/message_ig_story")[0]
    [attachment] = event.attachments  # type: ignore[attr-defined]

    assert attachment.type == "ig_story"
    assert attachment.url == attachment.payload["story_media_url"]
    assert event.to_json()["attachments"][0]["url"].startswith("https://lookaside.fbsbx.com/")


def test_messenger_fallback_url_spelt_upper_case_is_surfaced() -> None:
    [event] = parse("messenger/message_fallback_url")[0]
    [attachment] = event.attachments  # type: ignore[attr-defined]

    assert (attachment.type, attachment.url, attachment.title) == (
        "fallback",
        "https://www.example.com/spring-sale",
        "Our spring sale",
    )


def test_ig_post_share_gives_both_attachments_with_url_and_title() -> None:
    [event] = parse("instagram/message_ig_post_share")[0]

    assert [(a.type, a.title) for a in event.attachments] == [  # type: ignore[attr-defined]
        ("share", "New collection"),
        ("ig_post", "New collection"),
    ]
    assert all(a.url for a in event.attachments)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# Messenger-only kinds: odd spellings and bad values


def test_policy_enforcement_with_the_older_hyphenated_key() -> None:
    item = {"recipient": {"id": PAGE}, "timestamp": T, "policy-enforcement": {"action": "unblock"}}

    event = one(item, entry_id=PAGE)

    assert event.kind == K.POLICY_ENFORCEMENT
    assert (event.action, event.reason) == ("unblock", None)  # type: ignore[attr-defined]


def test_delivery_without_mids_or_watermark_is_unknown() -> None:
    item = {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "delivery": {"mids": "x"}}
    body = {"object": "page", "entry": [{"id": PAGE, "time": T, "messaging": [item]}]}

    parsed = parse_payload(body)

    assert [e.kind for e in parsed.events] == [K.UNKNOWN]
    assert "delivery.mids: expected an array, got string" in parsed.problems[0]


def test_redelivered_messenger_events_keep_their_keys() -> None:
    for name in CORPUS:
        first, _ = parse(name)
        again, _ = parse(name)
        assert [e.dedup_key for e in first] == [e.dedup_key for e in again]
    keys = [e.dedup_key for name in CORPUS for e in parse(name)[0]]
    assert len(keys) == len(set(keys))
