"""The automation-disclosure policy (docs/platform.md 9, invariant 5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from state_machines import (
    AppSpec,
    ConversationView,
    DisclosureUndelivered,
    Policy,
    Reply,
    SendMessage,
    State,
    decide,
    disclosure_needed,
    disclosure_text,
)
from state_machines.disclosure import FALLBACK_DISCLOSURE
from tests.unit.test_state_machine import POLICY as FAQ_POLICY
from tests.unit.test_state_machine import T0, Conversation, in_human

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


# --- issue 9.4: only a delivered disclosure counts ------------------------------------------


def test_an_undelivered_disclosure_is_due_again_and_leads_the_next_automated_reply() -> None:
    """The outbox gave up on the disclosure (its automated messages were held): deciding it
    was not disclosing, so the bot's next reply carries a fresh disclosure first, once."""

    c = Conversation(policy=FAQ_POLICY)
    first = c.says("Hallo", NOW)
    c.act("faq_bot", Reply({"text": "Willkommen"}), NOW)
    assert c.view.disclosed_at is not None and not c.view.disclosure_due
    # A customer message is routed to the bot; its reply is automated.
    assert first.view.state is State.BOT

    rearmed = decide(c.view, DisclosureUndelivered(NOW, held=1, reason="code 100"), NOW, FAQ_POLICY)
    assert rearmed.view.disclosure_due and rearmed.effects == ()
    assert rearmed.warnings and "not delivered" in rearmed.warnings[0]
    c.view = rearmed.view

    reply = c.act("faq_bot", Reply({"text": "Noch da?"}), NOW + timedelta(minutes=1))
    sent = [e for e in reply.effects if isinstance(e, SendMessage)]
    assert [(e.purpose, e.automated) for e in sent] == [("disclosure", True), ("reply", True)]
    again = c.act("faq_bot", Reply({"text": "Und?"}), NOW + timedelta(minutes=2))
    assert [e.purpose for e in again.effects if isinstance(e, SendMessage)] == ["reply"]


def test_human_sends_are_not_marked_automated() -> None:
    """Only automation depends on the disclosure: the database holds `automated` rows only."""

    c = in_human()
    d = c.act("support", Reply({"text": "Hallo, hier Anna"}), T0 + timedelta(minutes=1))
    sent = [e for e in d.effects if isinstance(e, SendMessage)]
    assert sent and not any(e.automated for e in sent)
