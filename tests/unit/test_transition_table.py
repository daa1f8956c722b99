"""TRANSITION_TABLE is complete, and `decide` follows it pair by pair.

For every (state, trigger name) the test builds the row's normal input (the app that would
normally send it, a view where it applies), runs `decide`, and checks the outcome and the
next state against the table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from state_machines import (
    INSTAGRAM_INBOX_APP_ID,
    ROW_LABELS,
    TRANSITION_TABLE,
    TRIGGER_NAMES,
    Accept,
    AppAction,
    AppRolesChanged,
    AppSpec,
    BotFailure,
    ConversationView,
    CustomerActivity,
    CustomerMessage,
    Deliver,
    DisclosureUndelivered,
    Echo,
    Escalate,
    ExtendThread,
    MarkSeen,
    MetaHandover,
    OwnerReconciled,
    PassThread,
    Policy,
    PrivateReply,
    React,
    ReleaseThread,
    Reply,
    RequestThread,
    State,
    TakeThread,
    TimerFired,
    TransitionRow,
    Trigger,
    build_machine,
    classify,
    decide,
)
from state_machines.diagram import markdown_table, mermaid

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
B, P, H = State.BOT, State.PENDING_HUMAN, State.HUMAN
POLICY = Policy(
    apps=(
        AppSpec("faq_bot", "1001", "primary", "bot"),
        AppSpec("survey_bot", "1002", "secondary", "bot"),
        AppSpec("support", "2001", "secondary", "human", standby=True, can_take=True),
        AppSpec("sales", "2002", "secondary", "human", can_take=True),
    ),
)
VIEWS = {
    B: ConversationView(
        state=B,
        last_customer_message_at=NOW - timedelta(minutes=1),
        disclosed_at=NOW - timedelta(hours=1),
        last_automated_at=NOW - timedelta(minutes=30),
    ),
    P: ConversationView(
        state=P,
        owner_app="support",
        human_app="support",
        pending_since=NOW - timedelta(minutes=10),
        last_customer_message_at=NOW - timedelta(minutes=12),
        disclosed_at=NOW - timedelta(hours=1),
        control_expires_at=NOW + timedelta(hours=23),
        timer_generation=5,
    ),
    H: ConversationView(
        state=H,
        owner_app="support",
        human_app="support",
        last_customer_message_at=NOW - timedelta(hours=2),
        disclosed_at=NOW - timedelta(hours=3),
        human_idle_due_at=NOW,
        control_expires_at=NOW + timedelta(hours=22),
        timer_generation=5,
    ),
}
# The app in control in each state's view: it is the one that normally acts.
CONTROLLER = {B: "faq_bot", P: "support", H: "support"}
# "Some other app of ours" in each state.
OTHER_BOT = {B: "1002", P: "1001", H: "1001"}
OTHER_HUMAN = {B: "2001", P: "2002", H: "2002"}

Case = tuple[ConversationView, Trigger]


def _act(app: str, action: object) -> AppAction:
    return AppAction(at=NOW, app=app, action=action)  # type: ignore[arg-type]


def _meta(kind: str, new_owner: str) -> MetaHandover:
    return MetaHandover(NOW, kind, "9", new_owner, None, "meta", {"x": 1})  # type: ignore[arg-type]


def _by_controller(action: object) -> Callable[[State], Case]:
    return lambda s: (VIEWS[s], _act(CONTROLLER[s], action))


def _owned_by_survey_bot(s: State) -> ConversationView:
    return VIEWS[s].replace(owner_app="survey_bot") if s is B else VIEWS[s]


def _timer(kind: str) -> Callable[[State], Case]:
    return lambda s: (VIEWS[s], TimerFired(NOW, kind, VIEWS[s].timer_generation))  # type: ignore[arg-type]


CASES: dict[str, Callable[[State], Case]] = {
    "customer_message": lambda s: (VIEWS[s], CustomerMessage(NOW, "m1", "hello", event={"m": 1})),
    "customer_message_escalates": lambda s: (
        VIEWS[s],
        CustomerMessage(NOW, "m1", "Can I talk to a human?", event={"m": 1}),
    ),
    "customer_activity": lambda s: (VIEWS[s], CustomerActivity(NOW, "reaction", True, {"r": 1})),
    # Our primary got the message as owner while an Inbox is believed to hold the thread.
    "customer_as_owner": lambda s: (
        VIEWS[s].replace(owner_app=f"foreign:{INSTAGRAM_INBOX_APP_ID}", human_app=None),
        CustomerMessage(NOW, "m1", "hello", event={"m": 1}, received_by="faq_bot"),
    ),
    "customer_activity_escalates": lambda s: (
        VIEWS[s],
        CustomerActivity(NOW, "postback", True, {"p": 1}, payload="TALK_TO_HUMAN"),
    ),
    "customer_standby": lambda s: (
        VIEWS[s],
        CustomerMessage(NOW, "m1", "hello", event={"m": 1}, source="standby", received_by=None),
    ),
    "echo": lambda s: (VIEWS[s], Echo(NOW, "1001", "m2")),
    "echo_human": lambda s: (VIEWS[s], Echo(NOW, INSTAGRAM_INBOX_APP_ID, "m3")),
    "action:reply": _by_controller(Reply({"text": "hi"})),
    "action:escalate": lambda s: (VIEWS[s], _act("faq_bot", Escalate("billing"))),
    "action:accept": lambda s: (VIEWS[s], _act("support", Accept())),
    "action:pass": lambda s: (
        VIEWS[s],
        _act(CONTROLLER[s], PassThread("survey_bot" if s is B else None, "done")),
    ),
    "action:pass_to_human": lambda s: (
        VIEWS[s],
        _act(CONTROLLER[s], PassThread("support" if s is B else "sales", "more")),
    ),
    "action:pass_to_inbox": _by_controller(PassThread("instagram_inbox", "inbox")),
    "action:take": lambda s: (_owned_by_survey_bot(s), _act("faq_bot", TakeThread("mine"))),
    "action:take_by_human": lambda s: (
        VIEWS[s],
        _act("support" if s is B else "sales", TakeThread("mine")),
    ),
    "action:release": lambda s: (
        _owned_by_survey_bot(s),
        _act("survey_bot" if s is B else "support", ReleaseThread("done")),
    ),
    "action:request": lambda s: (
        VIEWS[s],
        _act("support" if s is B else "faq_bot", RequestThread("please")),
    ),
    "action:extend": _by_controller(ExtendThread(3600)),
    "action:react": _by_controller(React("m1", "love")),
    "action:private_reply": _by_controller(
        PrivateReply("c1", {"text": "thanks"}, NOW - timedelta(hours=1), False)
    ),
    "action:mark_seen": _by_controller(MarkSeen()),
    "action:bot_failure": lambda s: (VIEWS[s], _act("faq_bot", BotFailure("?"))),
    "action:bot_failure_escalates": lambda s: (
        VIEWS[s].replace(bot_failures=POLICY.bot_failure_threshold - 1),
        _act("faq_bot", BotFailure("?")),
    ),
    "action:invalid": lambda s: (VIEWS[s], _act("nobody", MarkSeen())),
    "meta:pass_to_bot": lambda s: (VIEWS[s], _meta("pass", OTHER_BOT[s])),
    "meta:pass_to_human": lambda s: (VIEWS[s], _meta("pass", OTHER_HUMAN[s])),
    "meta:pass_to_foreign": lambda s: (VIEWS[s], _meta("pass", INSTAGRAM_INBOX_APP_ID)),
    "meta:take_by_bot": lambda s: (VIEWS[s], _meta("take", OTHER_BOT[s])),
    "meta:take_by_human": lambda s: (VIEWS[s], _meta("take", OTHER_HUMAN[s])),
    "meta:take_by_foreign": lambda s: (VIEWS[s], _meta("take", INSTAGRAM_INBOX_APP_ID)),
    "meta:superseded": lambda s: (
        VIEWS[s].replace(meta_handover_at=NOW + timedelta(seconds=1)),
        _meta("take", INSTAGRAM_INBOX_APP_ID),
    ),
    "meta:unordered": lambda s: (
        VIEWS[s].replace(control_decided_at=NOW + timedelta(seconds=1)),
        _meta("take", INSTAGRAM_INBOX_APP_ID),
    ),
    "meta:request": lambda s: (
        VIEWS[s],
        MetaHandover(NOW, "request", None, None, OTHER_HUMAN[B] if s is B else "1001", "x"),
    ),
    "meta:app_roles": lambda s: (VIEWS[s], AppRolesChanged(NOW, {"1001": ("primary_receiver",)})),
    "disclosure_undelivered": lambda s: (VIEWS[s], DisclosureUndelivered(NOW, 1, "code 100")),
    "owner_confirmed": lambda s: (VIEWS[s], _meta("take", "1001" if s is B else "2001")),
    "owner_reconciled:idle": lambda s: (_owned_by_survey_bot(s), OwnerReconciled(NOW, None)),
    "owner_reconciled:bot": lambda s: (VIEWS[s], OwnerReconciled(NOW, OTHER_BOT[s])),
    "owner_reconciled:human": lambda s: (VIEWS[s], OwnerReconciled(NOW, OTHER_HUMAN[s])),
    "owner_reconciled:foreign": lambda s: (
        VIEWS[s],
        OwnerReconciled(NOW, INSTAGRAM_INBOX_APP_ID),
    ),
    "timer:pending_timeout": _timer("pending_timeout"),
    "timer:human_idle": _timer("human_idle"),
    "timer:control_expiry": _timer("control_expiry"),
    "timer:stale": lambda s: (
        VIEWS[s],
        TimerFired(NOW, "pending_timeout", VIEWS[s].timer_generation - 1),
    ),
}


def test_table_has_exactly_one_row_per_state_and_trigger() -> None:
    pairs = [(row.state, row.trigger) for row in TRANSITION_TABLE]
    assert len(pairs) == len(set(pairs)) == len(State) * len(TRIGGER_NAMES)
    assert set(pairs) == {(s, t) for s in State for t in TRIGGER_NAMES}


def test_every_trigger_name_has_a_test_case() -> None:
    assert set(CASES) == set(TRIGGER_NAMES)


def test_table_names_the_triggers_of_the_brief() -> None:
    for name in ("customer_message", "customer_message_escalates", "customer_activity", "echo",
                 "action:reply", "action:escalate", "action:accept", "action:pass",
                 "action:take", "action:release", "action:request", "action:extend",
                 "action:react", "action:private_reply", "action:mark_seen",
                 "action:bot_failure", "meta:request", "meta:app_roles",
                 "timer:pending_timeout", "timer:human_idle", "timer:control_expiry"):  # fmt: skip
        assert name in TRIGGER_NAMES


def test_machine_defines_every_row_as_a_named_event() -> None:
    machine = build_machine()
    assert set(machine.events) == set(TRIGGER_NAMES)
    for row in TRANSITION_TABLE:
        transitions = machine.get_transitions(row.trigger, source=row.state.value)
        assert len(transitions) == 1
        dest = transitions[0].dest
        assert dest == (row.dest.value if row.outcome == "transition" else None)


@pytest.mark.parametrize("row", TRANSITION_TABLE, ids=lambda r: f"{r.state.value}|{r.trigger}")
def test_decide_follows_the_table(row: TransitionRow) -> None:
    view, trigger = CASES[row.trigger](row.state)
    assert view.state is row.state
    assert classify(view, trigger, POLICY) == row.trigger
    decision = decide(view, trigger, NOW, POLICY)
    label = ROW_LABELS[(row.state, row.trigger)]
    assert decision.trigger_name == row.trigger
    if row.outcome == "refusal":
        assert decision.refusal is not None and decision.refusal.code == label
        assert decision.view == view and decision.transition is None
        # The only effect: the app that acted (when it is ours) is told why.
        told = [Deliver(trigger.app, decision.refusal.to_event(trigger.action.to_json(), None))]
        ours = isinstance(trigger, AppAction) and POLICY.find_app(trigger.app) is not None
        assert list(decision.effects) == (told if ours else [])
        return
    assert decision.refusal is None, decision.refusal
    assert decision.view.state is row.dest
    if row.outcome == "transition":
        assert decision.transition == label
    elif row.outcome == "internal":
        assert decision.transition is None
        assert decision.effects or decision.view != view
    else:
        assert (decision.transition, decision.effects, decision.view) == (None, (), view)
        assert decision.notes


def test_mermaid_shows_every_transition_and_no_refusal() -> None:
    text = mermaid()
    assert text.startswith("stateDiagram-v2\n")
    arrows = [line.strip() for line in text.splitlines() if "-->" in line and "[*]" not in line]
    transitions = [r for r in TRANSITION_TABLE if r.outcome == "transition"]
    assert len(arrows) == len(transitions)
    assert "bot --> pending_human : action\u2236escalate" in arrows
    assert "pending_human --> bot : timer\u2236pending_timeout" in arrows
    assert "invalid" not in text and "stale" not in text and "app_roles" not in text
    for arrow in arrows:  # Mermaid ends a state label at ":" or ";"
        assert ":" not in arrow.split(" : ", 1)[1] and ";" not in arrow


def test_markdown_table_lists_every_row_including_refusals_and_no_ops() -> None:
    text = markdown_table()
    body = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    assert len(body) == len(TRANSITION_TABLE)
    assert "| bot | `action:accept` | refusal | bot | `not_allowed` |" in text
    assert "| pending_human | `timer:stale` | no-op |" in text
