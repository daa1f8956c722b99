"""The automation-disclosure policy (docs/platform.md 9, invariant 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from state_machines import AppSpec, ConversationView, Policy, disclosure_needed, disclosure_text
from state_machines.disclosure import FALLBACK_DISCLOSURE

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
APPS = (AppSpec("faq_bot", "1001", "primary", "bot"),)
POLICY = Policy(
    apps=APPS,
    disclosure_text={"en": "You are talking to a bot.", "de": "Sie sprechen mit einem Bot."},
    default_locale="en",
    disclosure_lapse=timedelta(hours=12),
)


def test_disclosure_needed_before_the_first_automated_message() -> None:
    assert disclosure_needed(ConversationView(), NOW, POLICY)


def test_disclosure_needed_when_control_came_back_from_a_human() -> None:
    view = ConversationView(disclosed_at=NOW, last_automated_at=NOW, disclosure_due=True)
    assert disclosure_needed(view, NOW, POLICY)


def test_no_second_disclosure_while_the_bot_keeps_talking() -> None:
    view = ConversationView(disclosed_at=NOW - timedelta(hours=1), last_automated_at=NOW)
    assert not disclosure_needed(view, NOW + timedelta(hours=11), POLICY)


def test_disclosure_needed_after_the_configured_lapse_exactly() -> None:
    view = ConversationView(disclosed_at=NOW, last_automated_at=NOW)
    assert not disclosure_needed(view, NOW + timedelta(hours=12) - timedelta(seconds=1), POLICY)
    assert disclosure_needed(view, NOW + timedelta(hours=12), POLICY)


def test_lapse_counts_from_the_latest_of_bot_message_and_disclosure() -> None:
    view = ConversationView(
        disclosed_at=NOW - timedelta(days=3), last_automated_at=NOW - timedelta(hours=1)
    )
    assert not disclosure_needed(view, NOW, POLICY)


def test_disclosure_text_follows_the_conversation_locale() -> None:
    assert disclosure_text(ConversationView(locale="de"), POLICY) == "Sie sprechen mit einem Bot."
    assert disclosure_text(ConversationView(locale="en"), POLICY) == "You are talking to a bot."


def test_disclosure_text_falls_back_to_base_language_then_default_locale() -> None:
    assert (
        disclosure_text(ConversationView(locale="de-AT"), POLICY) == "Sie sprechen mit einem Bot."
    )
    assert disclosure_text(ConversationView(locale="fr"), POLICY) == "You are talking to a bot."


def test_disclosure_is_never_skipped_for_want_of_a_text() -> None:
    policy = Policy(apps=APPS, disclosure_text={})
    assert disclosure_text(ConversationView(locale="fr"), policy) == FALLBACK_DISCLOSURE
