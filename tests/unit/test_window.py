"""The messaging-window policy (docs/platform.md 4.5, invariant 6): exact boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from state_machines import AppSpec, ConversationView, Policy, check_send, window_deadlines

LAST = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = Policy(apps=(AppSpec("faq_bot", "1001", "primary", "bot"),))
TINY = timedelta(microseconds=1)


def _view(last: datetime | None = LAST) -> ConversationView:
    return ConversationView(last_customer_message_at=last)


@pytest.mark.parametrize("kind", ["bot", "human"])
def test_nothing_may_be_sent_before_the_customer_writes(kind: str) -> None:
    verdict = check_send(_view(None), LAST, author_kind=kind, policy=POLICY)  # type: ignore[arg-type]
    assert not verdict.allowed
    assert verdict.refusal is not None and verdict.refusal.code == "window_closed"


def test_bot_may_answer_at_exactly_24_hours() -> None:
    verdict = check_send(_view(), LAST + timedelta(hours=24), author_kind="bot", policy=POLICY)
    assert verdict.allowed
    assert (verdict.messaging_type, verdict.tag) == ("RESPONSE", None)


def test_bot_is_refused_just_after_24_hours() -> None:
    now = LAST + timedelta(hours=24) + TINY
    verdict = check_send(_view(), now, author_kind="bot", policy=POLICY)
    assert not verdict.allowed and verdict.messaging_type is None
    assert verdict.refusal is not None
    assert verdict.refusal.code == "window_closed"
    assert "24 h" in verdict.refusal.rule


def test_human_within_24_hours_sends_plain_response_without_tag() -> None:
    verdict = check_send(_view(), LAST + timedelta(hours=24), author_kind="human", policy=POLICY)
    assert (verdict.allowed, verdict.messaging_type, verdict.tag) == (True, "RESPONSE", None)


def test_human_after_24_hours_uses_human_agent_tag() -> None:
    now = LAST + timedelta(hours=24) + TINY
    verdict = check_send(_view(), now, author_kind="human", policy=POLICY)
    assert (verdict.allowed, verdict.messaging_type, verdict.tag) == (
        True,
        "MESSAGE_TAG",
        "HUMAN_AGENT",
    )


def test_human_may_answer_at_exactly_7_days_with_tag() -> None:
    verdict = check_send(_view(), LAST + timedelta(days=7), author_kind="human", policy=POLICY)
    assert (verdict.allowed, verdict.tag) == (True, "HUMAN_AGENT")


def test_human_is_refused_just_after_7_days() -> None:
    now = LAST + timedelta(days=7) + TINY
    verdict = check_send(_view(), now, author_kind="human", policy=POLICY)
    assert not verdict.allowed
    assert verdict.refusal is not None
    assert verdict.refusal.code == "human_agent_window_closed"
    assert "7 days" in verdict.refusal.rule


def test_refusal_message_says_how_long_ago_the_customer_wrote() -> None:
    verdict = check_send(_view(), LAST + timedelta(hours=25), author_kind="bot", policy=POLICY)
    assert verdict.refusal is not None and "25 h" in verdict.refusal.message


def test_window_deadlines_are_24_hours_and_7_days_after_the_last_message() -> None:
    assert window_deadlines(_view()) == (LAST + timedelta(hours=24), LAST + timedelta(days=7))
    assert window_deadlines(_view(None)) == (None, None)
