"""split_text keeps to 1000 UTF-8 bytes without breaking characters; validate_message rules."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from orchestrator.graph import ContentError, has_media, split_text, validate_message

GERMAN = (
    "Größere Änderungen an Ihrer Bestellung übernehmen wir gern; schreiben Sie uns bitte, "
    "welche Artikel Sie tauschen möchten. Für Rücksendungen außerhalb der Frist gelten "
    "besondere Bedingungen. "
)
FAMILY = "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 👩‍👩‍👧‍👦, 25 bytes
THUMBS_DARK = "\U0001f44d\U0001f3ff"  # 👍🏿
GERMAN_FLAG = "\U0001f1e9\U0001f1ea"  # 🇩🇪
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
HEART = "\u2764\ufe0f"  # ❤️
DECOMPOSED_U = "u\u0308"  # ü as u + combining diaeresis


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def assert_no_broken_cluster(pieces: list[str]) -> None:
    for piece in pieces:
        first = ord(piece[0])
        assert unicodedata.category(piece[0]) not in ("Mn", "Me", "Mc"), piece[:5]
        assert first != 0x200D and not 0x1F3FB <= first <= 0x1F3FF
        assert not 0xFE00 <= first <= 0xFE0F and not 0xE0020 <= first <= 0xE007F
        assert ord(piece[-1]) != 0x200D


def test_short_text_is_returned_unchanged() -> None:
    assert split_text("Hallo, wie geht's?") == ["Hallo, wie geht's?"]


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_blank_text_gives_no_messages(text: str) -> None:
    assert split_text(text) == []


def test_text_of_exactly_1000_bytes_is_one_message() -> None:
    text = "ä" * 500
    assert utf8(text) == 1000
    assert split_text(text) == [text]


def test_german_text_splits_under_1000_bytes_at_word_boundaries() -> None:
    text = GERMAN * 30
    pieces = split_text(text)
    assert len(pieces) > 1
    assert all(utf8(p) <= 1000 for p in pieces)
    assert " ".join(pieces).split() == text.split()  # no word cut, nothing lost
    assert all(p == p.strip() for p in pieces)


def test_umlauts_at_the_byte_limit_are_never_cut() -> None:
    text = "ä" * 1001  # 2002 bytes, no whitespace at all
    pieces = split_text(text)
    assert pieces == ["ä" * 500, "ä" * 500, "ä"]


@pytest.mark.parametrize(
    "cluster", [FAMILY, THUMBS_DARK, GERMAN_FLAG, SCOTLAND, HEART, DECOMPOSED_U]
)
def test_emoji_and_combining_sequences_are_never_split(cluster: str) -> None:
    text = cluster * (2000 // utf8(cluster) + 3)
    pieces = split_text(text)
    assert len(pieces) > 1
    for piece in pieces:
        assert utf8(piece) <= 1000
        assert piece == cluster * (len(piece) // len(cluster))
    assert "".join(pieces) == text


def test_odd_offset_flags_stay_paired() -> None:
    text = "x" + GERMAN_FLAG * 200  # 1 + 1600 bytes
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert pieces[1] == GERMAN_FLAG * (len(pieces[1]) // 2)


def test_mixed_emoji_text_never_exceeds_limit_or_breaks_a_character() -> None:
    words = [f"Danke{FAMILY}", f"schön{THUMBS_DARK}", f"Grüße{GERMAN_FLAG}", f"Liebe{HEART}", "Öl"]
    text = " ".join(words * 80)
    pieces = split_text(text)
    assert all(utf8(p) <= 1000 for p in pieces)
    assert_no_broken_cluster(pieces)
    assert " ".join(pieces).split() == text.split()


def test_line_breaks_are_preferred_over_spaces() -> None:
    paragraph = "Wort " * 150  # 750 bytes
    text = paragraph.strip() + "\n" + paragraph.strip()
    pieces = split_text(text)
    assert pieces == [paragraph.strip(), paragraph.strip()]


def test_a_lone_cluster_over_the_limit_is_cut_between_code_points() -> None:
    text = "e" + "\u0301" * 600  # one grapheme of 1201 bytes
    pieces = split_text(text)
    assert "".join(pieces) == text
    assert all(utf8(p) <= 1000 for p in pieces)


@pytest.mark.parametrize("limit", [4, 7, 10, 33])
def test_small_limits_are_respected_for_multibyte_text(limit: int) -> None:
    text = f"Grüße {FAMILY[:1]} aus Köln {THUMBS_DARK[:1]} und München " * 5
    pieces = split_text(text, limit=limit)
    assert all(utf8(p) <= limit for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")


def test_limit_below_one_character_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 4 bytes"):
        split_text("hello", limit=3)


# --- validate_message -------------------------------------------------------------------------


def generic(elements: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "generic", "elements": elements},
        }
    }


def element(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "title": "Sneaker",
        "buttons": [{"type": "postback", "title": "Buy", "payload": "B"}],
    }
    base.update(overrides)
    return base


VALID_MESSAGES: list[dict[str, Any]] = [
    {"text": "Hallo!"},
    {"text": "ä" * 500},
    {
        "text": "Pick one",
        "quick_replies": [{"content_type": "text", "title": "x" * 20, "payload": "P"}] * 13,
    },
    generic([element()] * 10),
    generic([element(buttons=[{"type": "web_url", "url": "https://x", "title": "Go"}] * 3)]),
    {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": "y" * 640,
                "buttons": [{"type": "postback", "title": "OK", "payload": "OK"}],
            },
        }
    },
    {
        "attachments": [
            {"type": "image", "payload": {"url": f"https://x/{i}.png"}} for i in range(10)
        ]
    },
    {"attachment": {"type": "like_heart"}},
    {"attachment": {"type": "MEDIA_SHARE", "payload": {"id": "179000"}}},
]


@pytest.mark.parametrize("message", VALID_MESSAGES)
def test_messages_within_the_rules_pass(message: dict[str, Any]) -> None:
    validate_message(message)


INVALID_MESSAGES: list[tuple[Any, str, str]] = [
    ({"text": "ä" * 501}, "text_bytes", "1002 bytes"),
    ({"text": ""}, "text_empty", "empty"),
    ({"text": 42}, "shape", "must be a string"),
    ({}, "empty", "no text, attachment or attachments"),
    ("hello", "shape", "message must be an object"),
    (
        {
            "text": "Pick",
            "quick_replies": [{"content_type": "text", "title": "a", "payload": "p"}] * 14,
        },
        "quick_replies_count",
        "at most 13",
    ),
    (
        {
            "text": "Pick",
            "quick_replies": [{"content_type": "text", "title": "x" * 21, "payload": "p"}],
        },
        "quick_reply_title",
        "21 characters; at most 20",
    ),
    (
        {"attachment": {"type": "image", "payload": {"url": "u"}}, "quick_replies": []},
        "quick_replies_text_only",
        "text message only",
    ),
    (generic([element()] * 11), "generic_elements_count", "11 elements"),
    (generic([]), "generic_elements_count", "0 elements"),
    (generic([element(title="t" * 81)]), "generic_title_length", "81 characters; at most 80"),
    (generic([element(subtitle="s" * 81)]), "generic_subtitle_length", "subtitle is 81"),
    (
        generic([element(buttons=[{"type": "postback", "title": "b", "payload": "p"}] * 4)]),
        "generic_buttons_count",
        "4 buttons; at most 3",
    ),
    (
        generic([element(buttons=[{"type": "phone_number", "title": "Call", "payload": "+49"}])]),
        "generic_button_type",
        "only postback and web_url",
    ),
    (
        {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": "y" * 641,
                    "buttons": [{"type": "postback"}],
                },
            }
        },
        "button_text_length",
        "641 characters; at most 640",
    ),
    (
        {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "button", "text": "y", "buttons": []},
            }
        },
        "button_count",
        "1 to 3",
    ),
    (
        {"attachments": [{"type": "image", "payload": {"url": "u"}}] * 11},
        "attachments_count",
        "at most 10 images",
    ),
    (
        {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "product", "elements": [{"id": "1"}] * 11},
            }
        },
        "product_count",
        "at most 10",
    ),
]


@pytest.mark.parametrize(("message", "rule", "reason"), INVALID_MESSAGES)
def test_broken_rules_raise_content_error_naming_the_rule(
    message: Any, rule: str, reason: str
) -> None:
    with pytest.raises(ContentError) as info:
        validate_message(message)
    assert info.value.rule_name == rule
    assert reason in str(info.value)
    assert info.value.action == "give_up"


def test_has_media_spots_audio_and_video_only() -> None:
    assert has_media({"attachment": {"type": "audio", "payload": {"url": "u"}}})
    assert has_media({"attachments": [{"type": "image"}, {"type": "video"}]})
    assert not has_media({"attachment": {"type": "image", "payload": {"url": "u"}}})
    assert not has_media({"text": "video"})
