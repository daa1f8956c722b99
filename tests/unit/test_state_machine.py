"""The conversation state machine, scenario by scenario (pure: no database, no clock)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from state_machines import (
    INSTAGRAM_INBOX_APP_ID,
    Accept,
    ActionError,
    AppAction,
    AppRolesChanged,
    AppSpec,
    BotFailure,
    CancelTimer,
    ConversationView,
    CustomerActivity,
    CustomerMessage,
    Decision,
    Deliver,
    Echo,
    Escalate,
    ExtendThread,
    MarkSeen,
    MetaHandover,
    OwnerReconciled,
    PassThread,
    Policy,
    PolicyError,
    PrivateReply,
    PrivateReplyEffect,
    React,
    ReleaseThread,
    Reply,
    RequestThread,
    SenderAction,
    SendMessage,
    SetTimer,
    State,
    TakeThread,
    ThreadControl,
    TimerFired,
    Trigger,
    action_from_json,
    build_machine,
    decide,
    effect_from_json,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FAQ = AppSpec("faq_bot", "1001", "primary", "bot")
SUPPORT = AppSpec("support", "2001", "secondary", "human", standby=True)
SALES = AppSpec("sales", "2002", "secondary", "human", standby=True)
POLICY = Policy(
    apps=(FAQ, SUPPORT, SALES),
    disclosure_text={"en": "You are chatting with a bot.", "de": "Sie schreiben mit einem Bot."},
    no_agent_text={"en": "No agent is free right now.", "de": "Gerade ist niemand frei."},
)
GERMAN_REQUEST = "Ich möchte mit einem Menschen sprechen"


class Conversation:
    """Feeds triggers through `decide` like the worker does, keeping the latest view."""

    def __init__(self, view: ConversationView | None = None, policy: Policy = POLICY) -> None:
        self.view = view or ConversationView(locale="de")
        self.policy = policy
        self.log: list[Decision] = []

    def feed(self, trigger: Trigger, now: datetime | None = None) -> Decision:
        decision = decide(self.view, trigger, now or trigger.at, self.policy)
        self.view = decision.view
        self.log.append(decision)
        return decision

    def says(self, text: str, at: datetime, **kw: Any) -> Decision:
        return self.feed(CustomerMessage(at, f"m{len(self.log)}", text, event={"text": text}, **kw))

    def act(self, app: str, action: Any, at: datetime) -> Decision:
        return self.feed(AppAction(at, app, action))


def sends(decision: Decision) -> list[tuple[str, str, str | None]]:
    return [
        (e.app, e.purpose, e.message.get("text"))
        for e in decision.effects
        if isinstance(e, SendMessage)
    ]


def delivers(decision: Decision) -> list[tuple[str, str, bool]]:
    return [
        (e.app, str(e.event.get("type", "customer")), e.standby)
        for e in decision.effects
        if isinstance(e, Deliver)
    ]


def only_told_refused(decision: Decision, app: str) -> bool:
    """A refused action has one effect: the app that asked gets `action_refused`."""
    assert decision.refusal is not None
    (told,) = decision.effects
    return (
        isinstance(told, Deliver)
        and told.app == app
        and told.event["type"] == "action_refused"
        and told.event["code"] == decision.refusal.code
    )


def controls(decision: Decision) -> list[ThreadControl]:
    return [e for e in decision.effects if isinstance(e, ThreadControl)]


def timer(decision: Decision, kind: str) -> SetTimer:
    return next(e for e in decision.effects if isinstance(e, SetTimer) and e.kind == kind)


def in_human(at: datetime = T0) -> Conversation:
    """A conversation a customer started at `at`, escalated to support, accepted."""
    c = Conversation()
    c.says("Hallo", at)
    c.act("faq_bot", Reply({"text": "Hallo!"}), at)
    c.says(GERMAN_REQUEST, at)
    c.act("support", Accept(), at)
    assert c.view.state is State.HUMAN
    return c


# --- the end-to-end flow ----------------------------------------------------------------------


def test_end_to_end_bot_escalation_human_and_back() -> None:
    c = Conversation()

    first = c.says("Hallo", T0)
    assert delivers(first) == [("faq_bot", "customer", False), ("support", "customer", True),
                               ("sales", "customer", True)]  # fmt: skip
    reply = c.act("faq_bot", Reply({"text": "Wie kann ich helfen?"}), T0 + timedelta(seconds=1))
    assert sends(reply) == [
        ("faq_bot", "disclosure", "Sie schreiben mit einem Bot."),
        ("faq_bot", "reply", "Wie kann ich helfen?"),
    ]

    asked = c.says(GERMAN_REQUEST, T0 + timedelta(minutes=1))
    assert asked.transition == "escalate" and c.view.state is State.PENDING_HUMAN
    assert controls(asked) == [ThreadControl("faq_bot", "pass", "2001", "customer_request")]
    request = next(e for e in asked.effects if isinstance(e, Deliver) and e.app == "support")
    assert request.event["type"] == "handover_requested"
    assert request.event["event"] == {"text": GERMAN_REQUEST}  # the human app sees the message
    assert not any(e.app == "faq_bot" and not e.standby for e in asked.effects
                   if isinstance(e, Deliver) and e.event.get("type") != "control_lost")  # fmt: skip
    assert timer(asked, "pending_timeout").due_at == T0 + timedelta(minutes=11)

    accepted = c.act("support", Accept(), T0 + timedelta(minutes=2))
    assert accepted.transition == "accept" and c.view.state is State.HUMAN
    assert CancelTimer("pending_timeout") in accepted.effects
    assert timer(accepted, "human_idle").due_at == T0 + timedelta(minutes=2, hours=4)

    human = c.act("support", Reply({"text": "Hier ist Ana."}), T0 + timedelta(minutes=3))
    assert sends(human) == [("support", "reply", "Hier ist Ana.")]

    later = c.says("Danke Ana", T0 + timedelta(minutes=4))
    assert delivers(later) == [("support", "customer", False), ("sales", "customer", True)]

    released = c.act("support", ReleaseThread("resolved"), T0 + timedelta(minutes=5))
    assert released.transition == "release_to_bot" and c.view.state is State.BOT
    assert controls(released) == [ThreadControl("support", "release", None, "resolved")]
    assert sends(released) == [("faq_bot", "disclosure", "Sie schreiben mit einem Bot.")]
    assert ("faq_bot", "handover_ended", False) in delivers(released)
    assert c.view.owner_app is None and not c.view.disclosure_due

    again = c.act("faq_bot", Reply({"text": "Noch etwas?"}), T0 + timedelta(minutes=6))
    assert sends(again) == [("faq_bot", "reply", "Noch etwas?")]  # no second disclosure


def test_bot_is_silent_while_human_owns_thread() -> None:
    c = in_human()
    refused = c.act("faq_bot", Reply({"text": "I can help!"}), T0 + timedelta(minutes=5))
    assert refused.refusal is not None and refused.refusal.code == "not_owner"
    assert refused.refusal.message == "faq_bot may not speak while support owns the thread"
    assert refused.refusal.rule == "only the app in control speaks"
    assert only_told_refused(refused, "faq_bot") and refused.view == c.log[-2].view


def test_bot_is_silent_while_handover_is_pending() -> None:
    c = Conversation()
    c.says(GERMAN_REQUEST, T0)
    refused = c.act("faq_bot", Reply({"text": "Still me"}), T0)
    assert refused.refusal is not None and refused.refusal.code == "not_owner"
    assert "pending" in refused.refusal.message and only_told_refused(refused, "faq_bot")


def test_customer_messages_while_human_reach_only_the_human_app_and_standby_copies() -> None:
    c = in_human()
    decision = c.says("Noch eine Frage", T0 + timedelta(minutes=10))
    assert delivers(decision) == [("support", "customer", False), ("sales", "customer", True)]


def test_release_sends_disclosure_exactly_once() -> None:
    c = in_human()
    released = c.act("support", ReleaseThread(None), T0 + timedelta(minutes=5))
    assert [p for _, p, _ in sends(released)] == ["disclosure"]
    reply = c.act("faq_bot", Reply({"text": "Hi"}), T0 + timedelta(minutes=6))
    notice = c.act("faq_bot", Reply({"text": "More"}), T0 + timedelta(minutes=7))
    assert [p for _, p, _ in sends(reply) + sends(notice)] == ["reply", "reply"]


def test_release_after_window_closed_keeps_disclosure_for_next_bot_message() -> None:
    c = in_human()
    late = T0 + timedelta(hours=30)
    released = c.act("support", ReleaseThread(None), late)
    assert sends(released) == [] and c.view.disclosure_due
    assert any("disclosure stays due" in n for n in released.notes)
    c.says("Hallo?", late + timedelta(minutes=1))
    reply = c.act("faq_bot", Reply({"text": "Ja?"}), late + timedelta(minutes=2))
    assert [p for _, p, _ in sends(reply)] == ["disclosure", "reply"]


def test_pass_back_to_primary_sets_owner_and_tells_the_bot() -> None:
    c = in_human()
    passed = c.act("support", PassThread(None, "done"), T0 + timedelta(minutes=5))
    assert passed.transition == "release_to_bot" and c.view.owner_app == "faq_bot"
    assert controls(passed) == [ThreadControl("support", "pass", "1001", "done")]
    ended = next(e for e in passed.effects if isinstance(e, Deliver) and e.app == "faq_bot")
    assert ended.event == {"type": "handover_ended", "from_app": "support", "metadata": "done",
                           "reason": "passed_back"}  # fmt: skip


# --- escalation ---------------------------------------------------------------------------------


def test_german_request_for_a_human_escalates_with_metadata() -> None:
    c = Conversation()
    decision = c.says(GERMAN_REQUEST, T0)
    assert decision.trigger_name == "customer_message_escalates"
    assert controls(decision)[0].metadata == "customer_request"
    assert c.view.human_app == "support" and c.view.pending_since == T0


@pytest.mark.parametrize("text", ["Can I talk to a HUMAN?", "einen Mitarbeiter bitte",
                                  "Mitarbeiterin!", "real person please"])  # fmt: skip
def test_escalation_keywords_match_words_and_inflections(text: str) -> None:
    assert Conversation().says(text, T0).transition == "escalate"


@pytest.mark.parametrize("text", ["my personal data", "humanity is great", "Agentur"])
def test_escalation_keywords_do_not_match_inside_other_words(text: str) -> None:
    assert Conversation().says(text, T0).transition is None


def test_escalation_quick_reply_payload_escalates() -> None:
    c = Conversation()
    decision = c.says("Agent", T0, quick_reply_payload="TALK_TO_HUMAN")
    assert decision.transition == "escalate"
    decision = Conversation().says("Yes", T0, quick_reply_payload="TALK_TO_HUMAN")
    assert decision.transition == "escalate"


def test_escalation_postback_escalates() -> None:
    c = Conversation()
    postback = CustomerActivity(T0, "postback", True, {"p": 1}, payload="TALK_TO_HUMAN")
    assert c.feed(postback).transition == "escalate"


def test_bot_escalate_action_targets_named_human_app() -> None:
    c = Conversation()
    c.says("hi", T0)
    decision = c.act("faq_bot", Escalate("billing", target_app="sales"), T0)
    assert controls(decision) == [ThreadControl("faq_bot", "pass", "2002", "billing")]
    assert c.view.human_app == "sales"


def test_escalate_without_any_human_app_is_refused() -> None:
    policy = Policy(apps=(FAQ,))
    c = Conversation(policy=policy)
    c.says("hi", T0)
    refused = c.act("faq_bot", Escalate(), T0)
    assert refused.refusal is not None and refused.refusal.code == "not_allowed"
    keyword = c.says("human please", T0)
    assert keyword.transition is None and any("no human app" in n for n in keyword.notes)


def test_three_consecutive_bot_failures_escalate() -> None:
    c = Conversation()
    for i in range(2):
        c.says(f"??? {i}", T0 + timedelta(minutes=2 * i))
        c.act("faq_bot", BotFailure("no intent"), T0 + timedelta(minutes=2 * i + 1))
    assert c.view.bot_failures == 2 and c.view.state is State.BOT
    c.says("???", T0 + timedelta(minutes=5))
    third = c.act("faq_bot", BotFailure("no intent"), T0 + timedelta(minutes=6))
    assert third.transition == "escalate" and controls(third)[0].metadata == "bot_failure"
    assert c.view.bot_failures == 0


def test_understood_message_ends_the_failure_streak() -> None:
    c = Conversation()
    c.says("???", T0)
    c.act("faq_bot", BotFailure(None), T0 + timedelta(seconds=1))
    c.says("???", T0 + timedelta(minutes=1))
    c.act("faq_bot", BotFailure(None), T0 + timedelta(minutes=1, seconds=1))
    c.says("opening hours?", T0 + timedelta(minutes=2))  # understood: no failure reported
    c.says("thanks", T0 + timedelta(minutes=3))
    assert c.view.bot_failures == 0
    assert c.act("faq_bot", BotFailure(None), T0 + timedelta(minutes=4)).transition is None


# --- accept -------------------------------------------------------------------------------------


def test_reply_from_targeted_human_app_while_pending_accepts_then_sends() -> None:
    c = Conversation()
    c.says(GERMAN_REQUEST, T0)
    decision = c.act("support", Reply({"text": "Ana hier"}), T0 + timedelta(minutes=1))
    assert decision.transition == "accept" and c.view.state is State.HUMAN
    assert sends(decision) == [("support", "reply", "Ana hier")]
    assert CancelTimer("pending_timeout") in decision.effects


def test_only_the_targeted_human_app_accepts() -> None:
    c = Conversation()
    c.says(GERMAN_REQUEST, T0)
    refused = c.act("sales", Accept(), T0)
    assert refused.refusal is not None and refused.refusal.code == "not_owner"
    assert c.view.state is State.PENDING_HUMAN


def test_meta_pass_webhook_confirming_our_escalation_changes_nothing() -> None:
    c = Conversation()
    c.says(GERMAN_REQUEST, T0)
    confirm = c.feed(MetaHandover(T0, "pass", "1001", 2001, None, "customer_request"))
    assert confirm.trigger_name == "owner_confirmed"
    assert confirm.effects == () and confirm.transition is None


# --- timers -------------------------------------------------------------------------------------


def test_pending_timeout_passes_back_with_disclosure_and_notice() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    c.act("faq_bot", Reply({"text": "Hallo!"}), T0)
    asked = c.says(GERMAN_REQUEST, T0 + timedelta(minutes=1))
    fired = TimerFired(
        T0 + timedelta(minutes=11), "pending_timeout", timer(asked, "pending_timeout").generation
    )
    decision = c.feed(fired)
    assert decision.transition == "pending_timeout" and c.view.state is State.BOT
    assert controls(decision) == [ThreadControl("support", "pass", "1001", "pending_timeout")]
    assert sends(decision) == [
        ("faq_bot", "disclosure", "Sie schreiben mit einem Bot."),
        ("faq_bot", "notice", "Gerade ist niemand frei."),
    ]
    assert ("faq_bot", "handover_ended", False) in delivers(decision)
    assert ("support", "control_lost", False) in delivers(decision)
    ended = next(e for e in decision.effects if isinstance(e, Deliver) and e.app == "faq_bot")
    assert ended.event["metadata"] == "pending_timeout"


def test_stale_pending_timeout_is_ignored() -> None:
    c = Conversation()
    asked = c.says(GERMAN_REQUEST, T0)
    stale_generation = timer(asked, "pending_timeout").generation
    c.act("support", Accept(), T0 + timedelta(minutes=1))
    decision = c.feed(TimerFired(T0 + timedelta(minutes=10), "pending_timeout", stale_generation))
    assert decision.trigger_name == "timer:stale"
    assert decision.effects == () and decision.transition is None
    assert c.view.state is State.HUMAN


def test_pending_timeout_with_window_closed_sends_nothing_to_the_customer() -> None:
    view = ConversationView(
        state=State.PENDING_HUMAN, owner_app="support", human_app="support",
        last_customer_message_at=T0 - timedelta(hours=30), pending_since=T0, timer_generation=3,
    )  # fmt: skip
    decision = decide(view, TimerFired(T0, "pending_timeout", 3), T0, POLICY)
    assert sends(decision) == [] and decision.view.disclosure_due


def test_human_idle_releases_back_to_the_bot() -> None:
    c = in_human()
    idle = TimerFired(T0 + timedelta(hours=4), "human_idle", c.view.timer_generation)
    decision = c.feed(idle)
    assert decision.transition == "human_idle" and c.view.owner_app is None
    assert controls(decision) == [ThreadControl("support", "release", None, "human_idle")]


def test_human_reply_restarts_the_idle_timer() -> None:
    c = in_human()
    reply = c.act("support", Reply({"text": "ok"}), T0 + timedelta(hours=1))
    assert timer(reply, "human_idle").due_at == T0 + timedelta(hours=5)


def test_control_expiry_returns_to_idle_bot_without_graph_call() -> None:
    c = in_human()
    assert c.view.control_expires_at == T0 + timedelta(hours=24)
    expiry = TimerFired(T0 + timedelta(hours=24), "control_expiry", c.view.timer_generation)
    decision = c.feed(expiry)
    assert decision.transition == "control_expiry" and c.view.state is State.BOT
    assert controls(decision) == [] and sends(decision) == []
    assert c.view.disclosure_due and c.view.owner_app is None


def test_customer_message_pushes_control_expiry_with_a_new_generation() -> None:
    c = in_human()
    generation = c.view.timer_generation
    decision = c.says("noch da?", T0 + timedelta(hours=3))
    assert timer(decision, "control_expiry").due_at == T0 + timedelta(hours=27)
    assert timer(decision, "control_expiry").generation == generation + 1
    assert timer(decision, "human_idle").generation == generation + 1  # all armed timers re-set


def test_extend_pushes_control_expiry_and_holds_the_idle_timer() -> None:
    c = in_human()
    decision = c.act("support", ExtendThread(3 * 24 * 3600), T0 + timedelta(hours=1))
    assert controls(decision) == [ThreadControl("support", "extend", None, None, 259200)]
    assert timer(decision, "control_expiry").due_at == T0 + timedelta(days=3, hours=1)
    assert timer(decision, "human_idle").due_at == T0 + timedelta(days=3, hours=1)


def test_bot_may_not_extend_control() -> None:
    c = Conversation()
    c.says("hi", T0)
    refused = c.act("faq_bot", ExtendThread(3600), T0)
    assert refused.refusal is not None and refused.refusal.code == "not_allowed"


# --- message window -----------------------------------------------------------------------------


def test_bot_reply_25_hours_after_customer_is_refused_window_closed() -> None:
    c = Conversation()
    c.says("hi", T0)
    before = c.view
    refused = c.act("faq_bot", Reply({"text": "late"}), T0 + timedelta(hours=25))
    assert refused.refusal is not None and refused.refusal.code == "window_closed"
    assert only_told_refused(refused, "faq_bot") and refused.view == before


def test_human_reply_after_3_days_carries_human_agent_tag() -> None:
    c = in_human()
    c.act("support", ExtendThread(7 * 24 * 3600), T0 + timedelta(hours=1))
    reply = c.act("support", Reply({"text": "Sorry for the wait"}), T0 + timedelta(days=3))
    message = next(e for e in reply.effects if isinstance(e, SendMessage))
    assert (message.messaging_type, message.tag) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_human_reply_after_8_days_is_refused() -> None:
    c = in_human()
    refused = c.act("support", Reply({"text": "Hello?"}), T0 + timedelta(days=8))
    assert refused.refusal is not None and refused.refusal.code == "human_agent_window_closed"
    assert only_told_refused(refused, "support")


def test_out_of_order_customer_message_keeps_the_latest_window_anchor() -> None:
    c = Conversation()
    c.says("second", T0 + timedelta(minutes=5))
    c.says("first (delivered late)", T0)
    assert c.view.last_customer_message_at == T0 + timedelta(minutes=5)


def test_window_opening_activity_moves_the_anchor_but_a_read_does_not() -> None:
    c = Conversation()
    c.says("hi", T0)
    c.feed(CustomerActivity(T0 + timedelta(hours=1), "read", False, {}))
    assert c.view.last_customer_message_at == T0
    c.feed(CustomerActivity(T0 + timedelta(hours=2), "reaction", True, {}))
    assert c.view.last_customer_message_at == T0 + timedelta(hours=2)


# --- disclosure ---------------------------------------------------------------------------------


def test_disclosure_repeats_after_lapse() -> None:
    c = Conversation()
    c.says("hi", T0)
    c.act("faq_bot", Reply({"text": "a"}), T0)
    later = T0 + timedelta(hours=25)
    c.says("back again", later)
    reply = c.act("faq_bot", Reply({"text": "b"}), later)
    assert [p for _, p, _ in sends(reply)] == ["disclosure", "reply"]


def test_reactions_are_never_disclosed() -> None:
    c = Conversation()
    c.says("hi", T0)
    decision = c.act("faq_bot", React("m0", "love"), T0)
    assert decision.effects == (SenderAction("faq_bot", "react", "m0", "love"),)
    assert c.view.disclosed_at is None and c.view.last_automated_at is None


def test_human_messages_are_never_disclosed() -> None:
    c = Conversation()
    c.says(GERMAN_REQUEST, T0)
    decision = c.act("support", Reply({"text": "Ana"}), T0)
    assert [p for _, p, _ in sends(decision)] == ["reply"]


def test_foreign_echo_in_bot_state_marks_disclosure_due() -> None:
    c = Conversation()
    c.says("hi", T0)
    c.act("faq_bot", Reply({"text": "a"}), T0)
    echo = c.feed(Echo(T0 + timedelta(minutes=1), INSTAGRAM_INBOX_APP_ID, "m9"))
    assert echo.transition is None and echo.effects == () and c.view.disclosure_due
    assert any("waiting for Meta's take webhook" in n for n in echo.notes)
    reply = c.act("faq_bot", Reply({"text": "b"}), T0 + timedelta(minutes=2))
    assert [p for _, p, _ in sends(reply)] == ["disclosure", "reply"]


def test_own_echo_changes_nothing() -> None:
    c = Conversation()
    c.says("hi", T0)
    decision = c.feed(Echo(T0, "1001", "m1"))
    assert decision.effects == () and decision.view == c.log[-2].view


# --- foreign inboxes, Meta webhooks, reconciliation ---------------------------------------------


def test_instagram_inbox_take_makes_the_bot_silent() -> None:
    c = Conversation()
    c.says("hi", T0)
    take = MetaHandover(T0, "take", "1001", int(INSTAGRAM_INBOX_APP_ID), None, None)
    decision = c.feed(take)
    assert decision.transition == "meta_take" and c.view.state is State.HUMAN
    assert c.view.owner_app == f"foreign:{INSTAGRAM_INBOX_APP_ID}" and c.view.human_app is None
    refused = c.act("faq_bot", Reply({"text": "me too"}), T0)
    assert refused.refusal is not None and refused.refusal.code == "not_owner"
    assert "instagram_inbox" in refused.refusal.message
    message = c.says("hello inbox", T0 + timedelta(minutes=1))
    assert delivers(message) == [("support", "customer", True), ("sales", "customer", True)]


def test_take_back_from_instagram_inbox_discloses() -> None:
    c = Conversation()
    c.says("hi", T0)
    c.feed(MetaHandover(T0, "take", "1001", INSTAGRAM_INBOX_APP_ID, None, None))
    decision = c.act("faq_bot", TakeThread("bot_back"), T0 + timedelta(minutes=1))
    assert decision.transition == "take_back" and c.view.owner_app == "faq_bot"
    assert [p for _, p, _ in sends(decision)] == ["disclosure"]


def test_bot_may_pass_to_the_instagram_inbox() -> None:
    c = Conversation()
    c.says("hi", T0)
    decision = c.act("faq_bot", PassThread("instagram_inbox", "escalate"), T0)
    assert controls(decision) == [
        ThreadControl("faq_bot", "pass", INSTAGRAM_INBOX_APP_ID, "escalate")
    ]
    assert c.view.state is State.HUMAN and c.view.owner_app == f"foreign:{INSTAGRAM_INBOX_APP_ID}"


def test_meta_pass_back_to_bot_discloses_and_ends_handover() -> None:
    c = in_human()
    decision = c.feed(MetaHandover(T0 + timedelta(minutes=5), "pass", "2001", "1001", None, "bye"))
    assert decision.transition == "meta_pass" and c.view.state is State.BOT
    assert [p for _, p, _ in sends(decision)] == ["disclosure"]
    assert ("faq_bot", "handover_ended", False) in delivers(decision)


def test_owner_reconciled_idle_returns_to_bot() -> None:
    c = in_human()
    decision = c.feed(OwnerReconciled(T0 + timedelta(minutes=5), None))
    assert decision.transition == "reconcile" and c.view.state is State.BOT
    assert c.view.owner_app is None and controls(decision) == []


def test_owner_reconciled_foreign_owner_makes_bot_silent() -> None:
    c = Conversation()
    c.says("hi", T0)
    c.feed(OwnerReconciled(T0, INSTAGRAM_INBOX_APP_ID))
    assert c.view.state is State.HUMAN and c.view.human_app is None


def test_app_roles_change_is_only_noted() -> None:
    c = Conversation()
    c.says("hi", T0)
    decision = c.feed(AppRolesChanged(T0, {"1001": ("primary_receiver",)}))
    assert decision.effects == () and decision.notes


# --- take and request ---------------------------------------------------------------------------


def test_app_without_take_permission_is_refused() -> None:
    c = Conversation()
    c.says("hi", T0)
    refused = c.act("sales", TakeThread(None), T0)
    assert refused.refusal is not None and refused.refusal.code == "not_allowed"


def test_primary_takes_back_from_human_with_disclosure() -> None:
    c = in_human()
    decision = c.act("faq_bot", TakeThread("bot_back"), T0 + timedelta(minutes=5))
    assert decision.transition == "take_back" and c.view.owner_app == "faq_bot"
    assert controls(decision) == [ThreadControl("faq_bot", "take", None, "bot_back")]
    assert [p for _, p, _ in sends(decision)] == ["disclosure"]
    assert ("support", "control_lost", False) in delivers(decision)


def test_request_asks_the_owner_by_default() -> None:
    c = in_human()
    decision = c.act("faq_bot", RequestThread("customer_said_bot"), T0)
    assert decision.transition is None and c.view.state is State.HUMAN
    assert decision.effects == (
        Deliver("support", {"type": "thread_control_request", "requested_by": "faq_bot",
                            "metadata": "customer_said_bot"}),
    )  # fmt: skip


def test_request_by_the_owner_is_refused() -> None:
    c = in_human()
    refused = c.act("support", RequestThread(None), T0)
    assert refused.refusal is not None and refused.refusal.code == "not_allowed"


def test_request_with_grant_policy_passes_to_the_requester() -> None:
    policy = Policy(apps=POLICY.apps, request_policy="grant")
    c = Conversation(policy=policy)
    c.says(GERMAN_REQUEST, T0)
    c.act("support", Accept(), T0)
    decision = c.act("faq_bot", RequestThread("back_to_bot"), T0 + timedelta(minutes=1))
    assert decision.transition == "release_to_bot" and c.view.state is State.BOT
    assert controls(decision) == [ThreadControl("support", "pass", "1001", "back_to_bot")]


# --- other actions ------------------------------------------------------------------------------


def test_private_reply_refused_when_already_used_or_expired() -> None:
    c = Conversation()
    c.says("hi", T0)
    used = c.act("faq_bot", PrivateReply("c1", {"text": "x"}, T0, True), T0)
    assert used.refusal is not None and used.refusal.code == "private_reply_used"
    old = T0 - timedelta(days=7, seconds=1)
    expired = c.act("faq_bot", PrivateReply("c1", {"text": "x"}, old, False), T0)
    assert expired.refusal is not None and expired.refusal.code == "private_reply_expired"
    edge = c.act("faq_bot", PrivateReply("c1", {"text": "x"}, T0 - timedelta(days=7), False), T0)
    assert edge.refusal is None


def test_bot_private_reply_carries_the_disclosure_in_its_single_message() -> None:
    c = Conversation(ConversationView(locale="en"))
    c.feed(CustomerActivity(T0, "comment", True, {"comment_id": "c1"}))
    decision = c.act("faq_bot", PrivateReply("c1", {"text": "Price: 10 EUR"}, T0, False), T0)
    assert decision.effects == (
        PrivateReplyEffect(
            "faq_bot",
            "c1",
            {"text": "You are chatting with a bot.\n\nPrice: 10 EUR"},
            automated=True,
            discloses=True,  # if it is never delivered, the disclosure is due again
        ),
    )
    assert c.view.disclosed_at == T0


def test_mark_seen_only_by_the_app_in_control() -> None:
    c = Conversation()
    c.says("hi", T0)
    assert c.act("faq_bot", MarkSeen(), T0).effects == (SenderAction("faq_bot", "mark_seen"),)
    refused = c.act("support", MarkSeen(), T0)
    assert refused.refusal is not None and refused.refusal.code == "not_owner"


def test_unknown_app_is_refused_as_invalid() -> None:
    refused = decide(ConversationView(), AppAction(T0, "ghost", MarkSeen()), T0, POLICY)
    assert refused.refusal is not None and refused.refusal.code == "invalid"
    assert "ghost" in refused.refusal.message


def test_pass_to_itself_is_invalid() -> None:
    c = Conversation()
    c.says("hi", T0)
    refused = c.act("faq_bot", PassThread("faq_bot"), T0)
    assert refused.refusal is not None and refused.refusal.code == "invalid"


def test_transfer_between_human_apps_waits_for_the_new_app() -> None:
    c = in_human()
    decision = c.act("support", PassThread("sales", "billing"), T0 + timedelta(minutes=5))
    assert decision.transition == "transfer" and c.view.state is State.PENDING_HUMAN
    assert c.view.human_app == "sales"
    assert ("sales", "handover_requested", False) in delivers(decision)


# --- purity, plumbing, serialisation ------------------------------------------------------------


def test_decide_rejects_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(ConversationView(), CustomerMessage(T0, "m", "hi"), datetime(2026, 1, 1), POLICY)


def test_decide_leaves_no_model_attached_to_the_shared_machine() -> None:
    machine = build_machine()
    assert build_machine() is machine
    in_human()
    assert machine.models == []


def test_decide_is_deterministic() -> None:
    view = ConversationView(last_customer_message_at=T0)
    trigger = AppAction(T0, "faq_bot", Reply({"text": "x"}))
    assert decide(view, trigger, T0, POLICY) == decide(view, trigger, T0, POLICY)


def test_conversation_view_json_round_trip() -> None:
    view = ConversationView(
        state=State.HUMAN, owner_app="foreign:1217981644879628", human_app=None, locale="de",
        last_customer_message_at=T0, last_automated_at=T0 - timedelta(minutes=1),
        disclosed_at=T0 - timedelta(hours=1), disclosure_due=True, bot_failures=2,
        handover_metadata="billing", pending_since=None,
        control_expires_at=T0 + timedelta(days=7), timer_generation=42,
        human_idle_due_at=T0 + timedelta(hours=4),
        last_bot_failure_at=datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1))),
    )  # fmt: skip
    data = view.to_json()
    assert data["state"] == "human" and data["last_customer_message_at"] == T0.isoformat()
    assert ConversationView.from_json(json.loads(json.dumps(data))) == view
    assert ConversationView.from_json(json.dumps(data)) == view
    assert ConversationView.from_json({}) == ConversationView()


def test_conversation_view_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone"):
        ConversationView.from_json({"disclosed_at": "2026-03-02T09:00:00"})


def test_effects_json_round_trip() -> None:
    c = Conversation()
    c.says("hi", T0)
    c.act("faq_bot", Reply({"text": "a"}), T0)
    decision = c.says(GERMAN_REQUEST, T0)
    for effect in decision.effects:
        assert effect_from_json(json.loads(json.dumps(effect.to_json()))) == effect
    assert json.dumps(decision.to_json())


def test_policy_rejects_inconsistent_apps() -> None:
    with pytest.raises(PolicyError, match="exactly one primary"):
        Policy(apps=(SUPPORT,))
    with pytest.raises(PolicyError, match="duplicate"):
        Policy(apps=(FAQ, FAQ))
    with pytest.raises(PolicyError, match="default_human_app"):
        Policy(apps=(FAQ, SUPPORT), default_human_app="faq_bot")


def test_policy_helpers() -> None:
    assert POLICY.primary is FAQ and POLICY.app("sales") is SALES
    assert POLICY.app_by_id(2001) is SUPPORT and POLICY.app_by_id("404") is None
    assert POLICY.is_human_app_id(INSTAGRAM_INBOX_APP_ID) and POLICY.is_human_app_id("2001")
    assert not POLICY.is_human_app_id("1001")
    assert POLICY.escalation_target is SUPPORT
    with pytest.raises(KeyError):
        POLICY.app("ghost")


# --- action_from_json ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"type": "reply", "message": {"text": "hi", "quick_replies": [
            {"content_type": "text", "title": "Yes", "payload": "YES"}]}, "reply_to_mid": "m1"},
        {"type": "reply", "message": {"attachment": {"type": "image", "payload": {"url": "u"}}}},
        {"type": "escalate", "metadata": "billing", "target_app": None},
        {"type": "accept"},
        {"type": "pass", "target_app": "faq_bot", "metadata": None},
        {"type": "take", "metadata": "x"},
        {"type": "release", "metadata": None},
        {"type": "request", "metadata": None},
        {"type": "extend", "duration_s": 86400},
        {"type": "react", "mid": "m1", "reaction": "love"},
        {"type": "unreact", "mid": "m1"},
        {"type": "private_reply", "comment_id": "c1", "message": {"text": "hi"},
         "comment_at": "2026-03-02T09:00:00+00:00", "already_replied": False},
        {"type": "mark_seen"},
        {"type": "bot_failure", "reason": None},
    ],
    ids=lambda d: d["type"],
)  # fmt: skip
def test_action_json_round_trip(data: dict[str, Any]) -> None:
    action = action_from_json(data)
    assert action_from_json(action.to_json()) == action


def test_action_from_json_accepts_escalate_with_only_metadata() -> None:
    assert action_from_json({"type": "escalate", "metadata": "billing"}) == Escalate("billing")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([1, 2], "action"),
        ({}, "type"),
        ({"type": "dance"}, "type"),
        ({"type": "accept", "please": True}, "please"),
        ({"type": "reply"}, "message"),
        ({"type": "reply", "message": "hi"}, "message"),
        ({"type": "reply", "message": {}}, "message"),
        ({"type": "reply", "message": {"text": ""}}, "message.text"),
        ({"type": "reply", "message": {"text": "a", "attachment": {"type": "image"}}}, "message"),
        ({"type": "reply", "message": {"text": "a", "color": "red"}}, "message.color"),
        ({"type": "reply", "message": {"attachment": {}}}, "message.attachment.type"),
        ({"type": "reply", "message": {"text": "a", "quick_replies": [{}] * 14}},
         "message.quick_replies"),
        ({"type": "reply", "message": {"text": "a", "quick_replies": [{"title": "x"}]}},
         "message.quick_replies[0].payload"),
        ({"type": "escalate", "metadata": "x" * 1001}, "metadata"),
        ({"type": "escalate", "metadata": 7}, "metadata"),
        ({"type": "extend"}, "duration_s"),
        ({"type": "extend", "duration_s": 0}, "duration_s"),
        ({"type": "extend", "duration_s": 604801}, "duration_s"),
        ({"type": "extend", "duration_s": True}, "duration_s"),
        ({"type": "react", "mid": "m1"}, "reaction"),
        ({"type": "unreact"}, "mid"),
        ({"type": "private_reply", "message": {"text": "x"}}, "comment_id"),
        ({"type": "private_reply", "comment_id": "c", "message": {"text": "x"},
          "comment_at": "yesterday"}, "comment_at"),
        ({"type": "private_reply", "comment_id": "c", "message": {"text": "x"},
          "already_replied": "no"}, "already_replied"),
    ],
)  # fmt: skip
def test_action_from_json_names_the_bad_field(data: Any, field: str) -> None:
    with pytest.raises(ActionError) as info:
        action_from_json(data)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_action_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown action type 'dance'"):
        action_from_json({"type": "dance"})


def test_bot_announces_the_handover_before_passing_when_configured() -> None:
    from dataclasses import replace

    policy = replace(POLICY, escalation_text={"de": "Einen Moment, ich verbinde Sie."})
    c = Conversation(policy=policy)
    decision = c.says(GERMAN_REQUEST, T0)
    kinds = [type(e).__name__ for e in decision.effects]
    # disclosure first (first automated message), then the notice, then the pass
    assert sends(decision)[-1] == ("faq_bot", "notice", "Einen Moment, ich verbinde Sie.")
    assert kinds.index("SendMessage") < kinds.index("ThreadControl")
    assert [s[1] for s in sends(decision)] == ["disclosure", "notice"]


def test_no_handover_announcement_without_configured_text() -> None:
    decision = Conversation().says(GERMAN_REQUEST, T0)
    assert sends(decision) == []
