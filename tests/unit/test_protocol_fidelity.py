"""Protocol fidelity (issue 9), decided in the pure core: ownership evidence from standby
copies, late handover webhooks, control expiry, refusals and app roles, and the two clocks.
Each test failed before the change it covers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state_machines import (
    CLOCK_RULES,
    INSTAGRAM_INBOX_APP_ID,
    AppAction,
    AppRolesChanged,
    AppSpec,
    CheckOwner,
    ConversationView,
    CustomerActivity,
    CustomerMessage,
    Decision,
    Deliver,
    Echo,
    ExtendThread,
    MetaHandover,
    OwnerReconciled,
    Policy,
    Reply,
    SendMessage,
    SetTimer,
    State,
    TakeThread,
    check_app_roles,
    decide,
    effect_from_json,
)
from tests.unit.test_state_machine import (
    FAQ,
    GERMAN_REQUEST,
    POLICY,
    SALES,
    T0,
    Conversation,
    delivers,
    in_human,
)

INBOX = INSTAGRAM_INBOX_APP_ID
FOREIGN = f"foreign:{INBOX}"
SUPPORT_TAKES = AppSpec("support", "2001", "secondary", "human", standby=True, can_take=True)
TAKE_POLICY = Policy(apps=(FAQ, SUPPORT_TAKES, SALES), disclosure_text=POLICY.disclosure_text)


def standby_copy(at_minutes: int, text: str = "Versand?", **kw: object) -> CustomerMessage:
    return CustomerMessage(
        T0 + timedelta(minutes=at_minutes), f"s{at_minutes}", text, event={"text": text},
        source="standby", **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def checks(decision: Decision) -> list[CheckOwner]:
    return [e for e in decision.effects if isinstance(e, CheckOwner)]


def handover(
    kind: str, new_owner: str | None, at: timedelta, prev: str | None = None
) -> MetaHandover:
    return MetaHandover(T0 + at, kind, prev, new_owner, None, "meta")  # type: ignore[arg-type]


# --- 1. standby is ownership evidence -------------------------------------------------------


def test_a_standby_copy_to_the_bot_in_control_is_never_answered_and_meta_is_asked() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    decision = c.feed(standby_copy(5, received_by="faq_bot"))
    assert decision.trigger_name == "customer_standby"
    # Nobody of ours gets it as owner: standby copies only, the bot included if it wants them.
    assert delivers(decision) == [("support", "customer", True), ("sales", "customer", True)]
    assert checks(decision) == [CheckOwner("faq_bot", "standby_only")]
    assert not [e for e in decision.effects if isinstance(e, SendMessage)]
    assert c.view.state is State.BOT and c.view.last_customer_message_at == T0 + timedelta(
        minutes=5
    )
    followed = c.feed(OwnerReconciled(T0 + timedelta(minutes=6), INBOX))
    assert followed.transition == "reconcile" and c.view.owner_app == FOREIGN
    assert ("faq_bot", "control_lost", False) in delivers(followed)


def test_a_new_conversation_reaching_us_only_as_standby_is_not_automated() -> None:
    decision = decide(ConversationView(), standby_copy(0, received_by=None), T0, POLICY)
    assert decision.trigger_name == "customer_standby"
    assert all(e.standby for e in decision.effects if isinstance(e, Deliver))
    assert checks(decision) == [CheckOwner("faq_bot", "standby_only")]


def test_a_standby_copy_asking_for_a_human_does_not_escalate() -> None:
    c = Conversation()
    decision = c.feed(standby_copy(0, GERMAN_REQUEST, received_by="faq_bot"))
    assert decision.transition is None and c.view.state is State.BOT
    assert checks(decision) and not [
        e for e in decision.effects if not isinstance(e, Deliver | CheckOwner)
    ]


def test_a_standby_postback_to_the_bot_is_evidence_too() -> None:
    activity = CustomerActivity(
        T0,
        "postback",
        True,
        {"p": 1},
        payload="TALK_TO_HUMAN",
        source="standby",
        received_by="faq_bot",
    )
    decision = decide(ConversationView(last_customer_message_at=T0), activity, T0, POLICY)
    assert decision.trigger_name == "customer_standby" and decision.transition is None


def test_the_bot_s_standby_copy_counts_even_when_another_app_s_copy_was_stored() -> None:
    """Several apps: intake stored support's standby copy; the bot's own copy (a duplicate
    intake dropped) was a standby one too: the bot is not the owner, so it is not given the
    message and Meta is asked."""
    c = Conversation()
    c.says("Hallo", T0)
    copy = standby_copy(5, received_by="support", standby_by=("faq_bot", "support"))
    decision = c.feed(copy)
    assert decision.trigger_name == "customer_standby"
    assert ("faq_bot", "customer", False) not in delivers(decision)
    assert not [e for e in decision.effects if isinstance(e, SendMessage)]
    assert checks(decision) == [CheckOwner("faq_bot", "standby_only")]  # the default app asks


def test_standby_copies_to_every_app_of_ours_are_evidence() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    every = standby_copy(5, received_by="sales", standby_by=("faq_bot", "sales", "support"))
    assert c.feed(every).trigger_name == "customer_standby"


def test_another_app_s_standby_copy_alone_proves_nothing_about_the_bot() -> None:
    """The bot's copy may be the messaging one (not stored, or not arrived yet): routed."""
    c = Conversation()
    c.says("Hallo", T0)
    decision = c.feed(standby_copy(5, received_by="support", standby_by=("support",)))
    assert decision.trigger_name == "customer_message"
    assert ("faq_bot", "customer", False) in delivers(decision)


def test_a_messaging_copy_while_an_inbox_is_believed_to_hold_the_thread_is_checked() -> None:
    """Bug 4a: the Instagram Inbox released the thread (no webhook); the customer's next
    message reaches our primary as owner (default app of an idle thread). Nothing automated
    on the stale belief; Meta is asked, and its answer brings the bot back with a fresh
    disclosure."""
    c = Conversation()
    c.says("Hallo", T0)
    c.act("faq_bot", Reply({"text": "Willkommen"}), T0)
    c.feed(handover("take", INBOX, timedelta(minutes=1), prev="1001"))
    assert c.view.owner_app == FOREIGN and c.view.state is State.HUMAN
    message = CustomerMessage(
        T0 + timedelta(minutes=5), "m9", "Hallo?", event={"text": "Hallo?"},
        received_by="faq_bot",
    )  # fmt: skip
    decision = c.feed(message)
    assert decision.trigger_name == "customer_as_owner" and c.view.state is State.HUMAN
    assert ("faq_bot", "customer", False) not in delivers(decision)
    assert not [e for e in decision.effects if isinstance(e, SendMessage)]
    # Meta is asked by intake as the copy arrives (migration 0009), not by this decision.
    back = c.feed(OwnerReconciled(T0 + timedelta(minutes=6), None))
    assert back.transition == "reconcile" and c.view.state is State.BOT
    assert [e.purpose for e in back.effects if isinstance(e, SendMessage)] == ["disclosure"]
    assert ("faq_bot", "handover_ended", False) in delivers(back)


def test_a_standby_copy_while_an_inbox_holds_the_thread_changes_nothing() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    c.feed(handover("take", INBOX, timedelta(minutes=1), prev="1001"))
    decision = c.feed(standby_copy(5, received_by="faq_bot"))
    assert decision.trigger_name == "customer_message" and not checks(decision)


def test_a_standby_copy_while_our_own_control_move_is_in_flight_is_not_evidence() -> None:
    """Our pass to support has not reached Meta yet (the bot still owns the thread), so
    support's standby copy is expected: it still gets the message as the targeted app. Once
    the move is done, the same copy is evidence."""
    c = Conversation()
    c.says("Hallo", T0)
    c.says(GERMAN_REQUEST, T0)
    assert c.view.state is State.PENDING_HUMAN
    early = standby_copy(1, received_by="support", standby_by=("support",), control_pending=True)
    decision = decide(c.view, early, early.at, POLICY)
    assert decision.trigger_name == "customer_message" and not checks(decision)
    assert ("support", "customer", False) in delivers(decision)
    every = standby_copy(
        2, received_by="support", standby_by=("faq_bot", "sales", "support"),
        control_pending=True,
    )  # fmt: skip
    assert decide(c.view, every, every.at, POLICY).trigger_name == "customer_standby"
    late = standby_copy(3, received_by="support")
    assert decide(c.view, late, late.at, POLICY).trigger_name == "customer_standby"


def test_a_standby_copy_while_our_human_app_holds_the_thread_is_checked() -> None:
    c = in_human()
    decision = c.feed(standby_copy(30, received_by="support"))
    assert decision.trigger_name == "customer_standby"
    assert ("support", "customer", False) not in delivers(decision)
    assert checks(decision) == [CheckOwner("faq_bot", "standby_only")]  # the default app asks


def test_another_apps_standby_copy_proves_nothing_about_the_controller() -> None:
    # Support always gets standby copies while the bot owns the thread.
    decision = decide(ConversationView(), standby_copy(0, received_by="support"), T0, POLICY)
    assert decision.trigger_name == "customer_message"
    assert ("faq_bot", "customer", False) in delivers(decision) and not checks(decision)


def test_standby_while_a_foreign_inbox_holds_the_thread_is_what_we_expect() -> None:
    view = ConversationView(state=State.HUMAN, owner_app=FOREIGN, last_customer_message_at=T0)
    decision = decide(view, standby_copy(1, received_by="faq_bot"), T0, POLICY)
    assert decision.trigger_name == "customer_message" and not checks(decision)


def test_check_owner_round_trips_through_json() -> None:
    effect = CheckOwner("faq_bot", "standby_only")
    assert effect.to_json() == {"type": "thread_owner", "app": "faq_bot", "reason": "standby_only"}
    assert effect_from_json(effect.to_json()) == effect


# --- 2. late handover webhooks never roll the state back -------------------------------------


def test_a_late_inbox_take_older_than_the_newest_applied_handover_is_not_applied() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    c.feed(handover("take", INBOX, timedelta(minutes=1), "1001"))
    back = c.feed(handover("take", "1001", timedelta(minutes=2), INBOX))
    assert back.transition == "meta_take" and c.view.state is State.BOT
    assert c.view.meta_handover_at == T0 + timedelta(minutes=2)
    late = c.feed(handover("take", INBOX, timedelta(minutes=1, seconds=30), "1001"))
    assert late.trigger_name == "meta:superseded" and late.transition is None
    assert late.effects == () and c.view.state is State.BOT and c.view.owner_app == "faq_bot"
    assert any("older than the newest handover applied" in n for n in late.notes)


def test_a_stale_pass_to_the_bot_does_not_let_it_talk_over_a_human() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    c.feed(handover("take", INBOX, timedelta(minutes=2), "1001"))
    stale = c.feed(handover("pass", "1001", timedelta(minutes=1), INBOX))
    assert stale.trigger_name == "meta:superseded"
    assert c.view.state is State.HUMAN and c.view.owner_app == FOREIGN


def test_an_inbox_take_stamped_before_our_own_take_back_is_checked_not_applied() -> None:
    c = Conversation(policy=TAKE_POLICY)
    c.says("Hallo", T0)
    c.feed(handover("take", INBOX, timedelta(minutes=1), "1001"))
    c.feed(handover("pass", "1001", timedelta(minutes=2), INBOX))  # back to the bot …
    taken = c.act("support", TakeThread("mine"), T0 + timedelta(minutes=5))  # … then ours
    assert taken.transition == "human_take" and c.view.control_decided_at == T0 + timedelta(
        minutes=5
    )
    # An Inbox take stamped between Meta's pass and our take: which came last? Meta knows.
    unordered = c.feed(handover("take", INBOX, timedelta(minutes=4), "1001"))
    assert unordered.trigger_name == "meta:unordered" and unordered.transition is None
    assert checks(unordered) == [CheckOwner("faq_bot", "handover_before_our_decision")]
    assert c.view.state is State.HUMAN and c.view.owner_app == "support"
    newer = c.feed(handover("take", INBOX, timedelta(minutes=6), "2001"))
    assert newer.transition == "meta_take" and c.view.owner_app == FOREIGN


def test_the_newest_handover_and_our_decision_times_survive_storage() -> None:
    c = in_human()
    c.feed(handover("take", INBOX, timedelta(minutes=9), "2001"))
    assert c.view.control_decided_at is not None and c.view.meta_handover_at is not None
    assert ConversationView.from_json(c.view.to_json()) == c.view


# --- 3. control actions count as activity ----------------------------------------------------


def test_an_agent_taking_25_hours_after_the_customer_keeps_control_for_a_day() -> None:
    c = Conversation(policy=TAKE_POLICY)
    c.says("Meine Bestellung ist beschädigt", T0)
    taken_at = T0 + timedelta(hours=25)
    taken = c.act("support", TakeThread("follow-up"), taken_at)
    assert c.view.state is State.HUMAN and c.view.control_expires_at == taken_at + timedelta(
        hours=24
    )
    due = next(e for e in taken.effects if isinstance(e, SetTimer) and e.kind == "control_expiry")
    assert due.due_at == taken_at + timedelta(hours=24)
    reply = c.act(
        "support", Reply({"text": "Wir schicken Ersatz."}), taken_at + timedelta(minutes=1)
    )
    sent = next(e for e in reply.effects if isinstance(e, SendMessage))
    assert (sent.messaging_type, sent.tag) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_an_extended_agent_can_answer_until_7_days_after_the_customer() -> None:
    c = Conversation(policy=TAKE_POLICY)
    c.says("Hallo", T0)
    c.act("support", TakeThread("follow-up"), T0 + timedelta(hours=25))
    c.act("support", ExtendThread(7 * 24 * 3600), T0 + timedelta(hours=25, minutes=1))
    late = T0 + timedelta(days=6, hours=23)
    assert c.view.control_expires_at is not None and c.view.control_expires_at > late
    reply = c.act("support", Reply({"text": "Noch da?"}), late)
    assert reply.refusal is None and c.view.state is State.HUMAN


def test_a_pass_to_our_human_app_from_meta_counts_from_metas_time() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    passed = T0 + timedelta(hours=30)
    c.feed(MetaHandover(passed, "pass", "1001", "2001", None, "from another tool"))
    assert c.view.state is State.PENDING_HUMAN
    assert c.view.control_expires_at == passed + timedelta(hours=24)


def test_a_reconciliation_takes_metas_expiration_when_given() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    expires = T0 + timedelta(days=3)
    c.feed(OwnerReconciled(T0 + timedelta(hours=30), INBOX, expires_at=expires))
    assert c.view.owner_app == FOREIGN and c.view.control_expires_at == expires


# --- 10. refusals are told, roles are compared ------------------------------------------------


def test_a_refused_action_is_told_to_the_app_that_asked() -> None:
    c = in_human()
    before = c.view
    refused = c.feed(
        AppAction(T0 + timedelta(minutes=5), "faq_bot", Reply({"text": "Hi"}), "req-1")
    )
    assert refused.refusal is not None and c.view == before
    assert refused.effects == (
        Deliver(
            "faq_bot",
            {
                "type": "action_refused",
                "code": "not_owner",
                "message": "faq_bot may not speak while support owns the thread",
                "rule": "only the app in control speaks",
                "action": {"type": "reply", "message": {"text": "Hi"}, "reply_to_mid": None},
                "request_id": "req-1",
            },
        ),
    )


def test_an_action_by_an_unknown_app_tells_nobody() -> None:
    refused = decide(ConversationView(), AppAction(T0, "ghost", Reply({"text": "x"})), T0, POLICY)
    assert refused.refusal is not None and refused.effects == ()


def test_app_roles_that_disagree_with_the_config_are_warnings() -> None:
    roles = {"2001": ("primary_receiver",), "1001": ("secondary_receiver",)}
    warnings = check_app_roles(roles, POLICY)
    assert len(warnings) == 2
    assert any("faq_bot" in w and "primary in our config" in w for w in warnings)
    assert any("support" in w and "made it the primary receiver" in w for w in warnings)
    decision = decide(ConversationView(), AppRolesChanged(T0, roles), T0, POLICY)
    assert decision.warnings == warnings and decision.effects == ()
    assert decision.view == ConversationView()


def test_app_roles_naming_a_stranger_as_primary_warn_and_agreement_is_silent() -> None:
    assert (
        check_app_roles({"1001": ("primary_receiver",), "2001": ("secondary_receiver",)}, POLICY)
        == ()
    )
    (warning,) = check_app_roles({"999": ("primary_receiver",)}, POLICY)
    assert "999" in warning and "faq_bot" in warning
    (none,) = check_app_roles({"2002": ()}, POLICY)
    assert "no receiver role" in none


# --- 11. two clocks ---------------------------------------------------------------------------


def test_a_human_echo_is_not_ordered_against_our_clock() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    # Our bot replied at 09:10 by our clock, without knowing that a human had written in
    # the Instagram app at 09:05 by Meta's: the next automated message must disclose.
    c.act("faq_bot", Reply({"text": "Hallo!"}), T0 + timedelta(minutes=10))
    echo = c.feed(Echo(T0 + timedelta(minutes=5), INBOX, "h1"), now=T0 + timedelta(minutes=11))
    assert c.view.disclosure_due, echo.notes
    reply = c.act("faq_bot", Reply({"text": "Noch Fragen?"}), T0 + timedelta(minutes=12))
    assert [e.purpose for e in reply.effects if isinstance(e, SendMessage)] == [
        "disclosure",
        "reply",
    ]


def test_a_human_echo_older_than_metas_newest_handover_is_old_news() -> None:
    c = Conversation()
    c.says("Hallo", T0)
    c.feed(handover("take", INBOX, timedelta(minutes=2), "1001"))
    c.feed(handover("pass", "1001", timedelta(minutes=3), INBOX))
    c.act("faq_bot", Reply({"text": "Wieder da."}), T0 + timedelta(minutes=4))
    assert not c.view.disclosure_due
    c.feed(Echo(T0 + timedelta(minutes=2, seconds=30), INBOX, "h1"))
    assert not c.view.disclosure_due


@pytest.mark.parametrize("pair", [p for p, _ in CLOCK_RULES])
def test_every_clock_rule_is_in_the_readme(pair: str) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Rules that hold by construction", 1)[1].split("\n## ", 1)[0]
    assert pair in section


# --- property: any arrival order of handover webhooks ends with Meta's newest word -------------

OWNER_KEYS = {"1001": "faq_bot", "2001": "support", "2002": "sales", INBOX: FOREIGN}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["pass", "take"]), st.sampled_from(sorted(OWNER_KEYS))),
        min_size=1,
        max_size=6,
    ).flatmap(lambda hs: st.tuples(st.just(hs), st.permutations(range(len(hs))))),
)
def test_handover_webhooks_in_any_arrival_order_end_with_the_newest(
    drawn: tuple[list[tuple[str, str]], list[int]],
) -> None:
    handovers, arrival = drawn
    c = Conversation()
    c.says("Hallo", T0)
    for i in arrival:  # handover i happened at T0 + i + 1 minutes (Meta's clock)
        kind, owner = handovers[i]
        c.feed(handover(kind, owner, timedelta(minutes=i + 1)), now=T0 + timedelta(hours=1))
    newest = OWNER_KEYS[handovers[-1][1]]
    assert (c.view.owner_app or "faq_bot") == newest
