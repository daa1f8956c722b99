"""The conversation state machine and `decide`, pure.

`decide(view, trigger, now, policy)` classifies the trigger into one TRANSITION_TABLE trigger
name, attaches a throw-away model to the one shared `transitions.Machine` (initial =
view.state), fires that name, detaches, and returns the new snapshot with the effects the
callbacks collected. No I/O, no clock, no logging, no randomness.

How to read TRANSITION_TABLE: one row per (state, trigger name), each either a transition
(control moves; `dest` may equal the state, e.g. a transfer between human apps), `internal`
(effects or bookkeeping, control unchanged), `no-op` (a note only) or `refusal`. Rows
describe the normal sender; these guards apply on top of every `action:*` row:

- the app must be in control (bot state: the primary, or the bot app that owns the thread;
  pending_human: the targeted human app; human: the human app holding it) unless the row
  says otherwise — else `not_owner`, no effects;
- messages obey the window (window.py) — else `window_closed` / `human_agent_window_closed`;
- malformed actions (unknown app or target, bad values) are classified `action:invalid`.

A refused decision never has effects and never changes the view. Timers are a function of
the view (`timer_schedule`): whenever the schedule changes the generation is bumped and every
armed timer is (re)set, so a firing with an old generation is recognised as stale.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

from transitions import EventData, Machine

from state_machines.actions import (
    Accept,
    ActionError,
    BotFailure,
    Escalate,
    ExtendThread,
    MarkSeen,
    PassThread,
    PrivateReply,
    React,
    ReleaseThread,
    Reply,
    RequestThread,
    TakeThread,
    Unreact,
    validate_message,
)
from state_machines.disclosure import disclosure_needed, disclosure_text
from state_machines.effects import (
    CancelTimer,
    Decision,
    Deliver,
    Effect,
    PrivateReplyEffect,
    Refusal,
    RefusalCode,
    SenderAction,
    SendMessage,
    SetTimer,
    ThreadControl,
)
from state_machines.model import (
    FOREIGN_PREFIX,
    TIMER_KINDS,
    AppSpec,
    ConversationView,
    Policy,
    State,
    TimerKind,
    require_aware,
)
from state_machines.triggers import (
    AppAction,
    AppRolesChanged,
    CustomerActivity,
    CustomerMessage,
    Echo,
    MetaHandover,
    OwnerReconciled,
    TimerFired,
    Trigger,
)
from state_machines.window import check_send

Outcome = Literal["transition", "internal", "no-op", "refusal"]

# Meta idles a thread after 24 h without a customer message unless extended (PLATFORM 1.3).
CONTROL_IDLE = timedelta(hours=24)
PRIVATE_REPLY_WINDOW = timedelta(days=7)  # PLATFORM 4.2
META_CUSTOMER_REQUEST = "customer_request"
META_BOT_FAILURE = "bot_failure"

RULE_SPEAK = "only the app in control speaks"
RULE_CONTROL = "only the app in control passes, releases, extends or escalates"
RULE_ACCEPT = "only the human app a conversation was passed to accepts it"
RULE_TAKE = "only the primary app and apps allowed to take control take it"
RULE_REQUEST = "only an app that is not in control requests it"
RULE_EXTEND = "only a human app holding the thread extends control; automation has 24 h"
RULE_RELEASE = "only an owned thread can be released"
RULE_ESCALATION = "escalation needs a human app to escalate to"
RULE_VALID = "actions must name known apps and valid values"
RULE_PRIVATE_ONCE = "one private reply per comment"
RULE_PRIVATE_WINDOW = "private replies only within 7 days of the comment"
RULE_DISCLOSURE = "automated messages are preceded by the disclosure"

B, P, H = State.BOT, State.PENDING_HUMAN, State.HUMAN


class TransitionRow(NamedTuple):
    state: State
    trigger: str
    outcome: Outcome
    dest: State
    description: str


# --- classification -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Owner:
    """Who holds (or should hold) the thread: nobody, one of our apps, or a foreign app."""

    kind: Literal["idle", "bot", "human", "foreign"]
    app: AppSpec | None = None
    foreign_id: str | None = None

    @property
    def key(self) -> str | None:
        """The `owner_app` value for this owner."""
        if self.app is not None:
            return self.app.name
        return FOREIGN_PREFIX + self.foreign_id if self.foreign_id else None

    @property
    def app_id(self) -> str | None:
        return self.app.app_id if self.app is not None else self.foreign_id


@dataclass(slots=True)
class _Classified:
    name: str
    notes: list[str] = field(default_factory=list)
    actor: AppSpec | None = None  # the app performing the action
    target: _Owner | None = None  # pass/escalation target, new owner, or requester
    metadata: str | None = None
    refusal: Refusal | None = None  # for action:invalid
    # The owner passes because request_policy=grant answered someone's request: the owner
    # did not decide it, so it is told it lost control like any other app.
    granted: bool = False


def _owner_of(app_id: Any, policy: Policy) -> _Owner:
    if app_id is None or str(app_id) == "":
        return _Owner("idle")
    app = policy.app_by_id(app_id)  # ids may come as numbers (PLATFORM 2.8): normalised
    if app is not None:
        return _Owner("bot" if app.is_bot else "human", app)
    return _Owner("foreign", foreign_id=str(app_id))


def _target_named(name: str | None, policy: Policy) -> _Owner | None:
    if name is None:
        return _Owner("bot" if policy.primary.is_bot else "human", policy.primary)
    app = policy.find_app(name)
    if app is not None:
        return _Owner("bot" if app.is_bot else "human", app)
    foreign = policy.foreign_id(name)
    return _Owner("foreign", foreign_id=foreign) if foreign else None


def _confirms(view: ConversationView, owner: _Owner, policy: Policy) -> bool:
    """Does Meta's owner only confirm what we already believe?"""
    if view.state is B:
        if owner.kind == "idle":
            return view.owner_app is None
        if owner.kind == "bot" and owner.app is not None:
            current = view.owner_app or policy.primary.name
            return owner.app.name == current
        return False
    if view.state is P:
        return owner.kind == "human" and owner.key == view.human_app
    return owner.key is not None and owner.key == view.owner_app


def _invalid(message: str) -> _Classified:
    return _Classified("action:invalid", refusal=Refusal("invalid", message, RULE_VALID))


def classify(view: ConversationView, trigger: Trigger, policy: Policy) -> str:
    """The TRANSITION_TABLE trigger name `decide` uses for this input."""
    return _classify(view, trigger, policy).name


def _classify(view: ConversationView, trig: Trigger, policy: Policy) -> _Classified:
    if isinstance(trig, CustomerMessage):
        asks = policy.mentions_escalation(trig.text) or policy.is_escalation_payload(
            trig.quick_reply_payload
        )
        return _customer("customer_message", asks, policy)
    if isinstance(trig, CustomerActivity):
        asks = trig.kind == "postback" and policy.is_escalation_payload(trig.payload)
        return _customer("customer_activity", asks, policy)
    if isinstance(trig, Echo):
        app = policy.app_by_id(trig.app_id)
        return _Classified("echo" if app is not None and app.is_bot else "echo_human")
    if isinstance(trig, AppAction):
        return _classify_action(view, trig, policy)
    if isinstance(trig, MetaHandover):
        if trig.kind == "request":
            requester = _owner_of(trig.requested_owner_app_id, policy)
            return _request(view, "meta:request", requester, trig.metadata, policy)
        owner = _owner_of(trig.new_owner_app_id, policy)
        if _confirms(view, owner, policy):
            return _Classified("owner_confirmed", target=owner)
        kind = {"idle": "bot", "bot": "bot", "human": "human", "foreign": "foreign"}[owner.kind]
        name = f"meta:pass_to_{kind}" if trig.kind == "pass" else f"meta:take_by_{kind}"
        return _Classified(name, target=owner, metadata=trig.metadata)
    if isinstance(trig, OwnerReconciled):
        owner = _owner_of(trig.owner_app_id, policy)
        if _confirms(view, owner, policy):
            return _Classified("owner_confirmed", target=owner)
        return _Classified(f"owner_reconciled:{owner.kind}", target=owner, metadata="reconciled")
    if isinstance(trig, AppRolesChanged):
        return _Classified("meta:app_roles")
    if isinstance(trig, TimerFired):
        if trig.generation != view.timer_generation:
            return _Classified(
                "timer:stale",
                [
                    f"{trig.kind} timer of generation {trig.generation} is stale "
                    f"(current {view.timer_generation})"
                ],
            )
        if trig.kind == "human_idle" and view.state is H and view.human_app is None:
            # Never armed while a foreign inbox holds the thread: we cannot release for it.
            return _Classified("timer:stale", ["human_idle does not apply to a foreign holder"])
        return _Classified(f"timer:{trig.kind}")
    raise TypeError(f"not a trigger: {type(trig).__name__}")


def _customer(base: str, asks_for_human: bool, policy: Policy) -> _Classified:
    if not asks_for_human:
        return _Classified(base)
    target = policy.escalation_target
    if target is None:
        return _Classified(base, ["the customer asked for a human, but no human app is configured"])
    return _Classified(f"{base}_escalates", target=_Owner("human", target))


def _classify_action(view: ConversationView, trig: AppAction, policy: Policy) -> _Classified:
    actor = policy.find_app(trig.app)
    if actor is None:
        return _invalid(f"unknown app {trig.app!r}")
    action = trig.action
    out: _Classified
    if isinstance(action, Reply):
        try:
            validate_message(action.message)
        except ActionError as exc:
            return _invalid(str(exc))
        out = _Classified("action:reply")
    elif isinstance(action, Escalate):
        if action.target_app is None:
            default = policy.escalation_target
            owner = _Owner("human", default) if default is not None else None
            out = _Classified("action:escalate", target=owner)
        else:
            target = _target_named(action.target_app, policy)
            if target is None or target.kind in ("bot", "idle"):
                return _invalid(f"escalation target {action.target_app!r} is not a human app")
            name = "action:pass_to_inbox" if target.kind == "foreign" else "action:escalate"
            out = _Classified(name, target=target)
        out.metadata = action.metadata
    elif isinstance(action, Accept):
        out = _Classified("action:accept")
    elif isinstance(action, PassThread):
        target = _target_named(action.target_app, policy)
        if target is None:
            return _invalid(f"unknown pass target {action.target_app!r}")
        if target.app is not None and target.app.name == actor.name:
            return _invalid(f"{actor.name} cannot pass the thread to itself")
        suffix = {"bot": "", "human": "_to_human", "foreign": "_to_inbox", "idle": ""}
        out = _Classified(f"action:pass{suffix[target.kind]}", target=target)
        out.metadata = action.metadata
    elif isinstance(action, TakeThread):
        name = "action:take" if actor.is_bot else "action:take_by_human"
        out = _Classified(name, metadata=action.metadata)
    elif isinstance(action, ReleaseThread):
        out = _Classified("action:release", metadata=action.metadata)
    elif isinstance(action, RequestThread):
        requester = _Owner("bot" if actor.is_bot else "human", actor)
        out = _request(view, "action:request", requester, action.metadata, policy)
        if out.actor is None:
            out.actor = actor
        return out
    elif isinstance(action, ExtendThread):
        if not 1 <= action.duration_s <= 7 * 24 * 3600:
            return _invalid(f"extend duration {action.duration_s} s is outside 1 s … 7 days")
        out = _Classified("action:extend")
    elif isinstance(action, React | Unreact):
        if not action.mid:
            return _invalid("a reaction needs the mid of the message reacted to")
        out = _Classified("action:react")
    elif isinstance(action, PrivateReply):
        try:
            validate_message(action.message)
        except ActionError as exc:
            return _invalid(str(exc))
        if not action.comment_id:
            return _invalid("a private reply needs a comment_id")
        out = _Classified("action:private_reply")
    elif isinstance(action, MarkSeen):
        out = _Classified("action:mark_seen")
    elif isinstance(action, BotFailure):
        human = policy.escalation_target
        if view.bot_failures + 1 >= policy.bot_failure_threshold and human is not None:
            out = _Classified("action:bot_failure_escalates", target=_Owner("human", human))
            out.metadata = META_BOT_FAILURE
        else:
            out = _Classified("action:bot_failure")
    else:  # pragma: no cover - the Action union is closed
        return _invalid(f"unsupported action {type(action).__name__}")
    out.actor = actor
    return out


def _request(
    view: ConversationView, name: str, requester: _Owner, metadata: str | None, policy: Policy
) -> _Classified:
    """A request for the thread. With request_policy "grant" the owner passes at once, so the
    request is handled exactly as the owner's pass to the requester (the action:pass* rows)."""
    owner = _controller(view, policy)
    granted = (
        policy.request_policy == "grant"
        and owner is not None
        and requester.kind != "idle"
        and requester.key != owner.name
    )
    if not granted:
        return _Classified(name, target=requester, metadata=metadata)
    suffix = {"bot": "", "human": "_to_human", "foreign": "_to_inbox", "idle": ""}[requester.kind]
    note = f"request by {policy.owner_label(requester.key)} granted (request_policy=grant)"
    return _Classified(f"action:pass{suffix}", [note], owner, requester, metadata, granted=True)


# --- the model the machine drives -----------------------------------------------------------


class _Run:
    """One decision in progress; attached to the machine for a single event."""

    state: str  # maintained by the machine
    trigger: Callable[..., bool]  # bound by Machine.add_model

    def __init__(
        self,
        view: ConversationView,
        trig: Trigger,
        now: datetime,
        policy: Policy,
        cls: _Classified,
    ) -> None:
        self.before = view
        self.view = view
        self.input = trig
        self.now = now
        self.policy = policy
        self.cls = cls
        self.effects: list[Effect] = []
        self.notes: list[str] = list(cls.notes)
        self.refusal: Refusal | None = None

    @property
    def actor(self) -> AppSpec:
        assert self.cls.actor is not None, "action rows always have an actor"
        return self.cls.actor

    @property
    def target(self) -> _Owner:
        assert self.cls.target is not None, "this row always has a target"
        return self.cls.target

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def update(self, **changes: Any) -> None:
        if changes:
            self.view = self.view.replace(**changes)

    def refuse(self, code: RefusalCode, message: str, rule: str) -> None:
        self.refusal = Refusal(code, message, rule)


def _action(run: _Run) -> Any:
    assert isinstance(run.input, AppAction)
    return run.input.action


# --- shared pieces ----------------------------------------------------------------------------


def _controller(view: ConversationView, policy: Policy) -> AppSpec | None:
    """Our app that may act for the thread now; None when a foreign inbox holds it."""
    if view.state is B:
        owner = policy.find_app(view.owner_app)
        return owner if owner is not None and owner.is_bot else policy.primary
    return policy.find_app(view.human_app)


def _holder(view: ConversationView, policy: Policy) -> str:
    if view.state is B:
        ctrl = _controller(view, policy)
        return f"{ctrl.name if ctrl else 'the primary app'} is in control"
    if view.state is P:
        return f"a handover to {view.human_app} is pending"
    return f"{policy.owner_label(view.owner_app)} owns the thread"


def _require_control(run: _Run, verb: str, rule: str) -> bool:
    ctrl = _controller(run.view, run.policy)
    if ctrl is not None and ctrl.name == run.actor.name:
        return True
    run.refuse(
        "not_owner", f"{run.actor.name} may not {verb} while {_holder(run.view, run.policy)}", rule
    )
    return False


def _later(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _control_deadline(view: ConversationView, now: datetime) -> datetime | None:
    return _later(view.control_expires_at, (view.last_customer_message_at or now) + CONTROL_IDLE)


def _route(run: _Run, event: Mapping[str, Any], *, skip: tuple[str, ...] = ()) -> None:
    """The app in control gets the event; every other app with standby=True a standby copy
    (standby never triggers automation)."""
    ctrl = _controller(run.view, run.policy)
    if ctrl is not None and ctrl.name not in skip:
        run.emit(Deliver(ctrl.name, event, standby=False))
    copies = [
        a.name
        for a in run.policy.apps
        if a.standby and a.name not in skip and (ctrl is None or a.name != ctrl.name)
    ]
    for name in copies:
        run.emit(Deliver(name, event, standby=True))
    holder = ctrl.name if ctrl else f"nobody of ours ({_holder(run.view, run.policy)})"
    run.note(f"routed to {holder}" + (f"; standby copies: {', '.join(copies)}" if copies else ""))


def _contact(run: _Run, at: datetime, *, opens_window: bool, ends_streak: bool) -> None:
    v = run.view
    changes: dict[str, Any] = {}
    if ends_streak:
        if v.state is B and v.bot_failures and v.failure_at_message != v.customer_messages:
            # The previous message drew no BotFailure, so the failures were not consecutive.
            changes.update(bot_failures=0, last_bot_failure_at=None)
            run.note("bot-failure streak ended: the previous message was understood")
        changes["customer_messages"] = v.customer_messages + 1
    if opens_window:
        # Order rule: the window anchor only moves forward (Meta may deliver out of order).
        anchor = _later(v.last_customer_message_at, at)
        changes["last_customer_message_at"] = anchor
        if v.state is not B and anchor is not None:
            changes["control_expires_at"] = _later(v.control_expires_at, anchor + CONTROL_IDLE)
    run.update(**changes)


def _touch_human(run: _Run, until: datetime | None = None) -> None:
    due = _later(run.view.human_idle_due_at, run.now + run.policy.human_idle_timeout, until)
    run.update(human_idle_due_at=due)


def _disclose_now(run: _Run, bot: AppSpec) -> None:
    verdict = check_send(run.view, run.now, author_kind="bot", policy=run.policy)
    if not verdict.allowed:
        run.note("disclosure stays due (window closed); it will precede the next automated message")
        return
    text = disclosure_text(run.view, run.policy)
    run.emit(SendMessage(bot.name, {"text": text}, "RESPONSE", None, "disclosure"))
    run.update(disclosed_at=run.now, disclosure_due=False)


def _automated_send(
    run: _Run,
    app: AppSpec,
    message: Mapping[str, Any],
    purpose: Literal["reply", "notice"],
    reply_to_mid: str | None = None,
) -> Refusal | None:
    """An automated message: window first, then the disclosure if needed, then the message."""
    verdict = check_send(run.view, run.now, author_kind="bot", policy=run.policy)
    if not verdict.allowed:
        return verdict.refusal
    if disclosure_needed(run.view, run.now, run.policy):
        _disclose_now(run, app)
    run.emit(SendMessage(app.name, message, "RESPONSE", None, purpose, reply_to_mid))
    run.update(last_automated_at=run.now)
    return None


def _send_reply(run: _Run, app: AppSpec) -> None:
    action = _action(run)
    assert isinstance(action, Reply)
    if app.is_bot:
        refusal = _automated_send(run, app, action.message, "reply", action.reply_to_mid)
        if refusal is not None:
            run.refusal = refusal
        return
    verdict = check_send(run.view, run.now, author_kind="human", policy=run.policy)
    if not verdict.allowed or verdict.messaging_type is None:
        run.refusal = verdict.refusal
        return
    run.emit(
        SendMessage(
            app.name,
            action.message,
            verdict.messaging_type,
            verdict.tag,
            "reply",
            action.reply_to_mid,
        )
    )
    _touch_human(run)


def _informed(run: _Run, app: AppSpec | None, event: dict[str, Any], actor: AppSpec | None) -> None:
    """Tell an app of ours what happened, unless it caused it itself."""
    caused = actor is not None and app is not None and app.name == actor.name
    if app is not None and (not caused or run.cls.granted):
        run.emit(Deliver(app.name, event))


def _from_label(run: _Run) -> str:
    trig = run.input
    if isinstance(trig, MetaHandover) and trig.previous_owner_app_id:
        prev = _owner_of(trig.previous_owner_app_id, run.policy)
        return run.policy.owner_label(prev.key)
    ctrl = _controller(run.view, run.policy)
    return ctrl.name if ctrl else run.policy.owner_label(run.view.owner_app)


def _clear_stretch(metadata: str | None) -> dict[str, Any]:
    return {
        "pending_since": None,
        "human_idle_due_at": None,
        "bot_failures": 0,
        "last_bot_failure_at": None,
        "handover_metadata": metadata,
    }


def _to_pending(
    run: _Run,
    target: AppSpec,
    *,
    control: ThreadControl | None,
    metadata: str | None,
    reason: str,
    actor: AppSpec | None,
    event: Mapping[str, Any] | None = None,
) -> None:
    """→ pending_human with `target`: it is asked to accept; the pending timer starts."""
    prev = _controller(run.view, run.policy)
    from_label = actor.name if actor else _from_label(run)
    if control is not None:
        if prev is not None and prev.is_bot and control.action == "pass":
            text = run.policy.localized(run.policy.escalation_text, run.view.locale)
            refusal = _automated_send(run, prev, {"text": text}, "notice") if text else None
            if refusal is not None:
                run.note(f"escalation notice not sent: {refusal.message}")
        run.emit(control)
    request: dict[str, Any] = {
        "type": "handover_requested",
        "from_app": from_label,
        "metadata": metadata,
        "reason": reason,
    }
    if event is not None:
        request["event"] = dict(event)
    run.emit(Deliver(target.name, request))
    if prev is not None and prev.name != target.name:
        lost = {
            "type": "control_lost",
            "reason": reason,
            "to_app": target.name,
            "metadata": metadata,
        }
        _informed(run, prev, lost, actor)
    run.update(
        owner_app=target.name,
        human_app=target.name,
        **{**_clear_stretch(metadata), "pending_since": run.now},
        control_expires_at=_control_deadline(run.view, run.now),
    )
    run.note(f"{target.name} is asked to take over ({reason})")


def _to_human(
    run: _Run,
    app: AppSpec,
    *,
    control: ThreadControl | None,
    metadata: str | None,
    reason: str,
    actor: AppSpec | None,
) -> None:
    """→ human with our `app` holding the thread (a deliberate take)."""
    prev = _controller(run.view, run.policy)
    if control is not None:
        run.emit(control)
    if prev is not None and prev.name != app.name:
        lost = {"type": "control_lost", "reason": reason, "to_app": app.name, "metadata": metadata}
        _informed(run, prev, lost, actor)
    run.update(
        owner_app=app.name,
        human_app=app.name,
        **_clear_stretch(metadata),
        control_expires_at=_control_deadline(run.view, run.now),
    )
    _touch_human(run)
    run.note(f"{app.name} holds the thread ({reason})")


def _to_foreign(
    run: _Run,
    foreign_id: str,
    *,
    control: ThreadControl | None,
    metadata: str | None,
    reason: str,
    actor: AppSpec | None,
) -> None:
    """→ human with a foreign inbox holding the thread: our apps get standby copies only."""
    prev = _controller(run.view, run.policy)
    owner = FOREIGN_PREFIX + foreign_id
    label = run.policy.owner_label(owner)
    if control is not None:
        run.emit(control)
    lost = {"type": "control_lost", "reason": reason, "to_app": label, "metadata": metadata}
    _informed(run, prev, lost, actor)
    run.update(
        owner_app=owner,
        human_app=None,
        **_clear_stretch(metadata),
        control_expires_at=_control_deadline(run.view, run.now),
    )
    run.note(f"{label} owns the thread: our apps get standby copies only, automation is silent")


def _to_bot(
    run: _Run,
    new_owner: AppSpec | None,
    *,
    control: ThreadControl | None,
    metadata: str | None,
    reason: str,
    actor: AppSpec | None,
    disclose_now: bool,
    notice: bool = False,
) -> None:
    """Human side (pending_human / human) → bot. The disclosure becomes due; while the window
    is open it is sent right away (exactly once) so the customer knows automation is back."""
    prev = _controller(run.view, run.policy)
    from_label = run.view.human_app or run.policy.owner_label(run.view.owner_app)
    if control is not None:
        run.emit(control)
    run.update(
        owner_app=new_owner.name if new_owner else None,
        human_app=None,
        control_expires_at=None,
        disclosure_due=True,
        **_clear_stretch(metadata),
    )
    bot = new_owner or run.policy.primary
    if bot.is_bot:
        if disclose_now:
            _disclose_now(run, bot)
        if notice:
            _notice(run, bot)
    ended = {
        "type": "handover_ended",
        "from_app": from_label,
        "metadata": metadata,
        "reason": reason,
    }
    _informed(run, bot, ended, actor)
    if prev is not None and prev.name != bot.name:
        lost = {"type": "control_lost", "reason": reason, "to_app": bot.name, "metadata": metadata}
        _informed(run, prev, lost, actor)
    run.note(f"back to {bot.name} ({reason})")


def _notice(run: _Run, bot: AppSpec) -> None:
    text = run.policy.localized(run.policy.no_agent_text, run.view.locale)
    if not text:
        run.note("no 'no agent available' text configured: no notice sent")
        return
    refusal = _automated_send(run, bot, {"text": text}, "notice")
    if refusal is not None:
        run.note(f"no-agent notice not sent: {refusal.message}")


def _bot_to_bot(
    run: _Run,
    new_owner: AppSpec | None,
    *,
    control: ThreadControl | None,
    metadata: str | None,
    reason: str,
    actor: AppSpec | None,
) -> None:
    """Control moves between our bot apps (None = idle: the primary speaks)."""
    prev = _controller(run.view, run.policy)
    from_label = actor.name if actor else _from_label(run)
    if control is not None:
        run.emit(control)
    run.update(owner_app=new_owner.name if new_owner else None, handover_metadata=metadata)
    now_ctrl = new_owner or run.policy.primary
    if prev is not None and prev.name != now_ctrl.name:
        received = {
            "type": "control_received",
            "from_app": from_label,
            "metadata": metadata,
            "reason": reason,
        }
        _informed(run, now_ctrl, received, actor)
        lost = {
            "type": "control_lost",
            "reason": reason,
            "to_app": now_ctrl.name,
            "metadata": metadata,
        }
        _informed(run, prev, lost, actor)
    run.note(f"{run.policy.owner_label(run.view.owner_app)} owns the thread ({reason})")


def _meta_reason(run: _Run) -> str:
    trig = run.input
    return f"meta_{trig.kind}" if isinstance(trig, MetaHandover) else "reconciled"


# --- handlers: customer side -----------------------------------------------------------------


def _h_customer(run: _Run) -> None:
    trig = run.input
    assert isinstance(trig, CustomerMessage | CustomerActivity)
    opens = trig.opens_window if isinstance(trig, CustomerActivity) else True
    _contact(run, trig.at, opens_window=opens, ends_streak=isinstance(trig, CustomerMessage))
    _route(run, trig.event)


def _h_customer_escalates(run: _Run) -> None:
    trig = run.input
    assert isinstance(trig, CustomerMessage | CustomerActivity)
    opens = trig.opens_window if isinstance(trig, CustomerActivity) else True
    _contact(run, trig.at, opens_window=opens, ends_streak=False)
    bot = _controller(run.view, run.policy)
    target = run.target.app
    assert bot is not None and target is not None
    control = ThreadControl(bot.name, "pass", target.app_id, META_CUSTOMER_REQUEST)
    # The human app sees the customer's message inside handover_requested; the bot does not
    # get it as a normal message (only as a standby copy if it asked for those).
    _to_pending(
        run,
        target,
        control=control,
        metadata=META_CUSTOMER_REQUEST,
        reason="customer_request",
        actor=None,
        event=trig.event,
    )
    for app in run.policy.apps:
        if app.standby and app.name != target.name:
            run.emit(Deliver(app.name, trig.event, standby=True))


def _h_echo(run: _Run) -> None:
    run.note("echo of our own automated message")


def _h_echo_human_in_bot(run: _Run) -> None:
    trig = run.input
    assert isinstance(trig, Echo)
    app = run.policy.app_by_id(trig.app_id)
    if app is not None:
        who = app.name
    elif trig.app_id:
        who = run.policy.owner_label(FOREIGN_PREFIX + str(trig.app_id))
    else:
        who = "someone in the Instagram app"
    latest = _later(run.view.disclosed_at, run.view.last_automated_at)
    if run.view.disclosure_due or (latest is not None and trig.at <= latest):
        run.note(f"{who} spoke earlier; nothing new to disclose")
        return
    # A human spoke while automation holds the thread: the next automated message is a
    # human-to-automation move, so it is disclosed (PLATFORM 9).
    run.update(disclosure_due=True)
    run.note(f"{who} spoke while the bot is in control; waiting for Meta's take webhook")


def _h_echo_human_elsewhere(run: _Run) -> None:
    run.note("a human-side message echoed while humans hold the conversation")


# --- handlers: actions ----------------------------------------------------------------------


def _h_reply_bot(run: _Run) -> None:
    if _require_control(run, "speak", RULE_SPEAK):
        _send_reply(run, run.actor)


def _h_reply_pending(run: _Run) -> None:
    if _require_control(run, "speak", RULE_SPEAK):
        _accept(run, run.actor)
        run.note("a reply from the targeted human app accepts the conversation")
        _send_reply(run, run.actor)


def _h_reply_human(run: _Run) -> None:
    if _require_control(run, "speak", RULE_SPEAK):
        _send_reply(run, run.actor)


def _h_escalate(run: _Run) -> None:
    if not _require_control(run, "escalate", RULE_CONTROL):
        return
    if run.cls.target is None or run.cls.target.app is None:
        run.refuse("not_allowed", "no human app is configured to escalate to", RULE_ESCALATION)
        return
    target, meta = run.cls.target.app, run.cls.metadata
    control = ThreadControl(run.actor.name, "pass", target.app_id, meta)
    _to_pending(run, target, control=control, metadata=meta, reason="bot", actor=run.actor)


def _h_escalate_refused(run: _Run) -> None:
    holder = _holder(run.view, run.policy)
    run.refuse("not_owner", f"{run.actor.name} may not escalate while {holder}", RULE_CONTROL)


def _accept(run: _Run, app: AppSpec) -> None:
    run.update(
        owner_app=app.name,
        human_app=app.name,
        pending_since=None,
        control_expires_at=_control_deadline(run.view, run.now),
    )
    _touch_human(run)


def _h_accept_bot(run: _Run) -> None:
    holder = _holder(run.view, run.policy)
    run.refuse(
        "not_allowed", f"nothing is pending ({holder}); the bot escalates first", RULE_ACCEPT
    )


def _h_accept_pending(run: _Run) -> None:
    if _require_control(run, "accept", RULE_ACCEPT):
        _accept(run, run.actor)
        run.note(f"{run.actor.name} accepted the conversation")


def _h_accept_human(run: _Run) -> None:
    if _require_control(run, "accept", RULE_ACCEPT):
        run.note(f"{run.actor.name} already holds the conversation")


def _h_pass_bot(run: _Run) -> None:
    if _require_control(run, "pass the thread", RULE_CONTROL):
        target, meta = run.target.app, run.cls.metadata
        assert target is not None
        control = ThreadControl(run.actor.name, "pass", target.app_id, meta)
        _bot_to_bot(run, target, control=control, metadata=meta, reason="pass", actor=run.actor)


def _h_pass_back(run: _Run) -> None:
    if _require_control(run, "pass the thread", RULE_CONTROL):
        target, meta = run.target.app, run.cls.metadata
        assert target is not None
        control = ThreadControl(run.actor.name, "pass", target.app_id, meta)
        _to_bot(
            run,
            target,
            control=control,
            metadata=meta,
            reason="passed_back",
            actor=run.actor,
            disclose_now=True,
        )


def _h_pass_to_human(run: _Run) -> None:
    if _require_control(run, "pass the thread", RULE_CONTROL):
        target, meta = run.target.app, run.cls.metadata
        assert target is not None
        reason = "pass" if run.view.state is B else "transfer"
        control = ThreadControl(run.actor.name, "pass", target.app_id, meta)
        _to_pending(run, target, control=control, metadata=meta, reason=reason, actor=run.actor)


def _h_pass_to_inbox(run: _Run) -> None:
    if _require_control(run, "pass the thread", RULE_CONTROL):
        foreign_id, meta = run.target.foreign_id, run.cls.metadata
        assert foreign_id is not None
        control = ThreadControl(run.actor.name, "pass", foreign_id, meta)
        _to_foreign(run, foreign_id, control=control, metadata=meta, reason="pass", actor=run.actor)


def _may_take(run: _Run) -> bool:
    if run.actor.may_take:
        return True
    run.refuse("not_allowed", f"{run.actor.name} is not allowed to take control", RULE_TAKE)
    return False


def _h_take_bot(run: _Run) -> None:
    if not _may_take(run):
        return
    if run.view.owner_app == run.actor.name:
        run.refuse("invalid", f"{run.actor.name} already owns the thread", RULE_VALID)
        return
    meta = run.cls.metadata
    control = ThreadControl(run.actor.name, "take", None, meta)
    _bot_to_bot(run, run.actor, control=control, metadata=meta, reason="taken", actor=run.actor)


def _h_take_back(run: _Run) -> None:
    if _may_take(run):
        meta = run.cls.metadata
        control = ThreadControl(run.actor.name, "take", None, meta)
        _to_bot(
            run,
            run.actor,
            control=control,
            metadata=meta,
            reason="taken",
            actor=run.actor,
            disclose_now=True,
        )


def _h_take_human(run: _Run) -> None:
    if not _may_take(run):
        return
    if run.view.human_app == run.actor.name:
        hint = "; accept it instead" if run.view.state is P else ""
        run.refuse("invalid", f"{run.actor.name} already holds the thread{hint}", RULE_VALID)
        return
    meta = run.cls.metadata
    control = ThreadControl(run.actor.name, "take", None, meta)
    _to_human(run, run.actor, control=control, metadata=meta, reason="taken", actor=run.actor)


def _h_release_bot(run: _Run) -> None:
    if not _require_control(run, "release the thread", RULE_CONTROL):
        return
    if run.view.owner_app is None:
        run.refuse("not_allowed", "the thread is idle: there is nothing to release", RULE_RELEASE)
        return
    meta = run.cls.metadata
    control = ThreadControl(run.actor.name, "release", None, meta)
    _bot_to_bot(run, None, control=control, metadata=meta, reason="released", actor=run.actor)


def _h_release_human(run: _Run) -> None:
    if _require_control(run, "release the thread", RULE_CONTROL):
        meta = run.cls.metadata
        control = ThreadControl(run.actor.name, "release", None, meta)
        _to_bot(
            run,
            None,
            control=control,
            metadata=meta,
            reason="released",
            actor=run.actor,
            disclose_now=True,
        )


def _h_request(run: _Run) -> None:
    owner = _controller(run.view, run.policy)
    meta = run.cls.metadata
    if owner is None:
        # A foreign inbox holds it: only Meta can forward the request (PLATFORM 5).
        run.emit(ThreadControl(run.actor.name, "request", None, meta))
        run.note(f"asked Meta for the thread: {_holder(run.view, run.policy)}")
        return
    if owner.name == run.actor.name:
        run.refuse("not_allowed", f"{run.actor.name} is already in control", RULE_REQUEST)
        return
    run.emit(
        Deliver(
            owner.name,
            {"type": "thread_control_request", "requested_by": run.actor.name, "metadata": meta},
        )
    )
    run.note(f"{owner.name} is asked to pass the thread to {run.actor.name}")


def _h_meta_request(run: _Run) -> None:
    owner = _controller(run.view, run.policy)
    requester = run.target
    label = run.policy.owner_label(requester.key)
    if owner is None:
        run.note(f"request by {label}: {_holder(run.view, run.policy)}, not ours to answer")
    elif requester.key == owner.name or requester.kind == "idle":
        run.note(f"request by {label} ignored: nothing to hand over")
    else:
        run.emit(
            Deliver(
                owner.name,
                {
                    "type": "thread_control_request",
                    "requested_by": label,
                    "requested_owner_app_id": requester.app_id,
                    "metadata": run.cls.metadata,
                },
            )
        )
        run.note(f"{owner.name} is asked to pass the thread to {label}")


def _h_extend_bot(run: _Run) -> None:
    run.refuse(
        "not_allowed",
        f"{run.actor.name} may not extend control: {_holder(run.view, run.policy)}",
        RULE_EXTEND,
    )


def _h_extend(run: _Run) -> None:
    if not _require_control(run, "extend control", RULE_CONTROL):
        return
    action = _action(run)
    assert isinstance(action, ExtendThread)
    until = run.now + timedelta(seconds=action.duration_s)
    run.emit(ThreadControl(run.actor.name, "extend", None, None, action.duration_s))
    run.update(control_expires_at=_later(run.view.control_expires_at, until))
    # An extension is the human app asking to hold the thread: the idle timer waits as long.
    _touch_human(run, until=until)


def _h_react(run: _Run) -> None:
    if not _require_control(run, "react", RULE_SPEAK):
        return
    verdict = check_send(run.view, run.now, author_kind=run.actor.kind, policy=run.policy)
    if not verdict.allowed:
        run.refusal = verdict.refusal
        return
    action = _action(run)
    if isinstance(action, React):
        run.emit(SenderAction(run.actor.name, "react", action.mid, action.reaction))
    else:
        run.emit(SenderAction(run.actor.name, "unreact", action.mid, None))
    # Reactions are never disclosed and do not count as automation speaking.
    if not run.actor.is_bot:
        _touch_human(run)


def _h_mark_seen(run: _Run) -> None:
    if not _require_control(run, "mark messages seen", RULE_SPEAK):
        return
    verdict = check_send(run.view, run.now, author_kind=run.actor.kind, policy=run.policy)
    if not verdict.allowed:
        run.refusal = verdict.refusal
        return
    run.emit(SenderAction(run.actor.name, "mark_seen", None, None))
    if not run.actor.is_bot:
        _touch_human(run)


def _private_reply(run: _Run) -> None:
    action = _action(run)
    assert isinstance(action, PrivateReply)
    if action.already_replied:
        run.refuse(
            "private_reply_used",
            f"comment {action.comment_id} was already answered privately",
            RULE_PRIVATE_ONCE,
        )
        return
    if action.comment_at is None:
        run.note("comment time unknown: Meta enforces the 7-day limit")
    elif run.now - action.comment_at > PRIVATE_REPLY_WINDOW:
        run.refuse(
            "private_reply_expired",
            f"comment {action.comment_id} is older than 7 days",
            RULE_PRIVATE_WINDOW,
        )
        return
    message = dict(action.message)
    if run.actor.is_bot:
        if disclosure_needed(run.view, run.now, run.policy):
            # One private reply per comment: the disclosure cannot be a message of its own.
            text = message.get("text")
            if not isinstance(text, str):
                run.refuse(
                    "invalid",
                    "a bot's private reply must be text so the disclosure can lead it",
                    RULE_DISCLOSURE,
                )
                return
            message["text"] = f"{disclosure_text(run.view, run.policy)}\n\n{text}"
            run.update(disclosed_at=run.now, disclosure_due=False)
            run.note("disclosure leads the private reply")
        run.update(last_automated_at=run.now)
    else:
        _touch_human(run)
    run.emit(PrivateReplyEffect(run.actor.name, action.comment_id, message))


def _h_private_reply(run: _Run) -> None:
    if _require_control(run, "send a private reply", RULE_SPEAK):
        _private_reply(run)


def _h_private_reply_pending(run: _Run) -> None:
    if _require_control(run, "send a private reply", RULE_SPEAK):
        _accept(run, run.actor)
        run.note("a private reply from the targeted human app accepts the conversation")
        _private_reply(run)


def _h_bot_failure(run: _Run) -> None:
    if _require_control(run, "report a bot failure", RULE_CONTROL):
        count = run.view.bot_failures + 1
        run.update(
            bot_failures=count,
            last_bot_failure_at=run.now,
            failure_at_message=run.view.customer_messages,
        )
        run.note(f"bot failure {count} of {run.policy.bot_failure_threshold}")


def _h_bot_failure_escalates(run: _Run) -> None:
    if not _require_control(run, "report a bot failure", RULE_CONTROL):
        return
    target = run.target.app
    assert target is not None
    control = ThreadControl(run.actor.name, "pass", target.app_id, META_BOT_FAILURE)
    _to_pending(
        run,
        target,
        control=control,
        metadata=META_BOT_FAILURE,
        reason="bot_failure",
        actor=run.actor,
    )


def _h_bot_not_in_control(run: _Run) -> None:
    run.note(f"ignored: the bot is not in control ({_holder(run.view, run.policy)})")


def _h_invalid(run: _Run) -> None:
    assert run.cls.refusal is not None
    run.refusal = run.cls.refusal


# --- handlers: Meta, reconciliation, timers ----------------------------------------------------


def _h_meta_bot_in_bot(run: _Run) -> None:
    _bot_to_bot(
        run,
        run.target.app,
        control=None,
        metadata=run.cls.metadata,
        reason=_meta_reason(run),
        actor=None,
    )


def _h_meta_back_to_bot(run: _Run) -> None:
    _to_bot(
        run,
        run.target.app,
        control=None,
        metadata=run.cls.metadata,
        reason=_meta_reason(run),
        actor=None,
        disclose_now=True,
    )


def _h_meta_to_pending(run: _Run) -> None:
    target = run.target.app
    assert target is not None
    _to_pending(
        run, target, control=None, metadata=run.cls.metadata, reason=_meta_reason(run), actor=None
    )


def _h_meta_human_take(run: _Run) -> None:
    app = run.target.app
    assert app is not None
    _to_human(
        run, app, control=None, metadata=run.cls.metadata, reason=_meta_reason(run), actor=None
    )


def _h_meta_to_foreign(run: _Run) -> None:
    foreign_id = run.target.foreign_id
    assert foreign_id is not None
    _to_foreign(
        run,
        foreign_id,
        control=None,
        metadata=run.cls.metadata,
        reason=_meta_reason(run),
        actor=None,
    )


def _h_owner_confirmed(run: _Run) -> None:
    run.note(f"Meta confirms: {_holder(run.view, run.policy)}")


def _h_app_roles(run: _Run) -> None:
    trig = run.input
    assert isinstance(trig, AppRolesChanged)
    roles = ", ".join(f"{k}: {'/'.join(v)}" for k, v in trig.roles.items()) or "none"
    run.note(f"app roles changed ({roles}); routing is unaffected until Meta moves the thread")


def _h_pending_timeout(run: _Run) -> None:
    human, primary = run.policy.find_app(run.view.human_app), run.policy.primary
    meta = "pending_timeout"
    control = (
        ThreadControl(human.name, "pass", primary.app_id, meta)
        if human is not None
        else ThreadControl(primary.name, "take", None, meta)
    )
    _to_bot(
        run,
        primary,
        control=control,
        metadata=meta,
        reason=meta,
        actor=None,
        disclose_now=True,
        notice=True,
    )


def _h_human_idle(run: _Run) -> None:
    human = run.policy.find_app(run.view.human_app)
    # The app may have left the config since: then the primary takes the thread back.
    control = (
        ThreadControl(human.name, "release", None, "human_idle")
        if human is not None
        else ThreadControl(run.policy.primary.name, "take", None, "human_idle")
    )
    _to_bot(
        run,
        None,
        control=control,
        metadata="human_idle",
        reason="human_idle",
        actor=None,
        disclose_now=True,
    )


def _h_control_expiry(run: _Run) -> None:
    # Meta already idled the thread: no thread-control call. Nobody is waiting (24 h without
    # a customer message), so the disclosure waits for the next automated message.
    _to_bot(
        run,
        None,
        control=None,
        metadata="control_expiry",
        reason="control_expiry",
        actor=None,
        disclose_now=False,
    )


def _h_timer_elsewhere(run: _Run) -> None:
    trig = run.input
    assert isinstance(trig, TimerFired)
    run.note(f"{trig.kind} timer does not apply in state {run.view.state}: ignored")


def _h_noted(run: _Run) -> None:
    """The classification already explained why nothing happens."""


def _h_note(text: str) -> Callable[[_Run], None]:
    def handler(run: _Run) -> None:
        run.note(text)

    return handler


# --- the table --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Spec:
    row: TransitionRow
    label: str | None  # transition name (Decision.transition) or refusal code
    handler: Callable[[_Run], None]


def _move(s: State, trig: str, dest: State, label: str, h: Callable[[_Run], None], d: str) -> _Spec:
    return _Spec(TransitionRow(s, trig, "transition", dest, d), label, h)


def _internal(s: State, trig: str, h: Callable[[_Run], None], d: str) -> _Spec:
    return _Spec(TransitionRow(s, trig, "internal", s, d), None, h)


def _noop(s: State, trig: str, d: str, h: Callable[[_Run], None] | None = None) -> _Spec:
    return _Spec(TransitionRow(s, trig, "no-op", s, d), None, h or _h_note(d))


def _refuse(s: State, trig: str, code: str, h: Callable[[_Run], None], d: str) -> _Spec:
    return _Spec(TransitionRow(s, trig, "refusal", s, d), code, h)


_ROUTE = "Routed to the app in control; standby copies to apps with standby=true."

# fmt: off
_SPECS: tuple[_Spec, ...] = (
    # customer side
    _internal(B, "customer_message", _h_customer, "Routed to the primary (or the bot app that "
              "owns the thread); standby copies to others; window anchor moves; a message the bot "
              "understood ends a bot-failure streak."),
    _internal(P, "customer_message", _h_customer, "Routed to the targeted human app (standby "
              "copies to others); window anchor and control expiry move."),
    _internal(H, "customer_message", _h_customer, "Routed to the human app holding the thread "
              "(a foreign inbox: standby copies only); window anchor and control expiry move."),
    _move(B, "customer_message_escalates", P, "escalate", _h_customer_escalates, "Keyword or "
          "escalation quick reply: the bot passes to the human app (metadata customer_request), "
          "which gets handover_requested with the message; pending timer starts."),
    _internal(P, "customer_message_escalates", _h_customer, "Already escalated: " + _ROUTE),
    _internal(H, "customer_message_escalates", _h_customer, "A human holds it: " + _ROUTE),
    _internal(B, "customer_activity", _h_customer, _ROUTE + " Postback, reaction, referral and "
              "comment reopen the window; read, edit and delete do not."),
    _internal(P, "customer_activity", _h_customer, _ROUTE),
    _internal(H, "customer_activity", _h_customer, _ROUTE),
    _move(B, "customer_activity_escalates", P, "escalate", _h_customer_escalates, "A postback "
          "with an escalation payload: escalates like customer_message_escalates."),
    _internal(P, "customer_activity_escalates", _h_customer, "Already escalated: " + _ROUTE),
    _internal(H, "customer_activity_escalates", _h_customer, "A human holds it: " + _ROUTE),
    _noop(B, "echo", "Echo of our bot's own message.", _h_echo),
    _noop(P, "echo", "Echo of our bot's own message.", _h_echo),
    _noop(H, "echo", "Echo of our bot's own message.", _h_echo),
    _internal(B, "echo_human", _h_echo_human_in_bot, "A human (our human app, a foreign inbox or "
              "the Instagram app) spoke: the next automated message is disclosed; state follows "
              "Meta's take webhook, not the echo."),
    _noop(P, "echo_human", "Human-side echo while humans hold the conversation.",
          _h_echo_human_elsewhere),
    _noop(H, "echo_human", "Human-side echo while humans hold the conversation.",
          _h_echo_human_elsewhere),
    # actions
    _internal(B, "action:reply", _h_reply_bot, "The bot in control replies inside 24 h; the "
              "disclosure goes first when needed (first message, after a human, after a lapse)."),
    _move(P, "action:reply", H, "accept", _h_reply_pending, "A reply from the targeted human app "
          "accepts the conversation, then is sent (RESPONSE, or HUMAN_AGENT after 24 h)."),
    _internal(H, "action:reply", _h_reply_human, "The human app holding the thread replies: "
              "RESPONSE within 24 h, HUMAN_AGENT up to 7 days; idle timer restarts."),
    _move(B, "action:escalate", P, "escalate", _h_escalate, "The bot in control passes to the "
          "human app (target_app or the default) with its metadata; handover_requested; pending "
          "timer. Refused not_allowed when no human app exists."),
    _refuse(P, "action:escalate", "not_owner", _h_escalate_refused, "Already pending: only the "
            "app in control escalates."),
    _refuse(H, "action:escalate", "not_owner", _h_escalate_refused, "A human holds it: only the "
            "app in control escalates."),
    _refuse(B, "action:accept", "not_allowed", _h_accept_bot, "Nothing is pending."),
    _move(P, "action:accept", H, "accept", _h_accept_pending, "The targeted human app accepts: "
          "pending timer off, idle timer on."),
    _noop(H, "action:accept", "Already accepted by the app holding the thread (idempotent).",
          _h_accept_human),
    _move(B, "action:pass", B, "pass_to_bot", _h_pass_bot, "The bot in control passes to another "
          "bot app of ours (null target = primary); it gets control_received."),
    _move(P, "action:pass", B, "release_to_bot", _h_pass_back, "The targeted human app passes back "
          "to a bot: disclosure sent now (window open) or due; bot gets handover_ended."),
    _move(H, "action:pass", B, "release_to_bot", _h_pass_back, "The human app passes back to a "
          "bot: disclosure sent now (window open) or due; bot gets handover_ended."),
    _move(B, "action:pass_to_human", P, "escalate", _h_pass_to_human, "The bot in control passes "
          "to a human app of ours: same as action:escalate to that app."),
    _move(P, "action:pass_to_human", P, "transfer", _h_pass_to_human, "The targeted human app "
          "hands over to another human app, which must accept; pending timer restarts."),
    _move(H, "action:pass_to_human", P, "transfer", _h_pass_to_human, "The human app transfers "
          "to another human app, which must accept."),
    _move(B, "action:pass_to_inbox", H, "pass_to_inbox", _h_pass_to_inbox, "The bot in control "
          "passes to a foreign inbox (Instagram/Page Inbox); automation falls silent."),
    _move(P, "action:pass_to_inbox", H, "pass_to_inbox", _h_pass_to_inbox, "The targeted human "
          "app passes to a foreign inbox."),
    _move(H, "action:pass_to_inbox", H, "pass_to_inbox", _h_pass_to_inbox, "The human app passes "
          "to a foreign inbox."),
    _move(B, "action:take", B, "take", _h_take_bot, "A bot app allowed to take (can_take or "
          "primary) takes from another bot or idle; not_allowed otherwise."),
    _move(P, "action:take", B, "take_back", _h_take_back, "A bot app allowed to take takes the "
          "thread back; the human app gets control_lost; disclosure now or due."),
    _move(H, "action:take", B, "take_back", _h_take_back, "A bot app allowed to take takes the "
          "thread back from a human (ours or a foreign inbox); disclosure now or due."),
    _move(B, "action:take_by_human", H, "human_take", _h_take_human, "A human app allowed to take "
          "takes the thread from the bot (which gets control_lost); no accept needed."),
    _move(P, "action:take_by_human", H, "human_take", _h_take_human, "Another human app allowed to "
          "take takes it (the target itself is told to accept instead)."),
    _move(H, "action:take_by_human", H, "human_take", _h_take_human, "Another human app allowed to "
          "take takes it from the holder (ours or a foreign inbox)."),
    _move(B, "action:release", B, "release", _h_release_bot, "A bot app owning the thread "
          "releases it to idle (the primary speaks); not_allowed when already idle."),
    _move(P, "action:release", B, "release_to_bot", _h_release_human, "The targeted human app "
          "releases: idle, disclosure now or due, primary gets handover_ended."),
    _move(H, "action:release", B, "release_to_bot", _h_release_human, "The human app releases: "
          "idle, disclosure now or due, primary gets handover_ended."),
    _internal(B, "action:request", _h_request, "Another app asks for the thread: the app in "
              "control gets thread_control_request (request_policy=ask_owner). With grant it is "
              "handled as the owner's action:pass* to the requester. By the owner: not_allowed."),
    _internal(P, "action:request", _h_request, "Another app asks: the targeted human app gets "
              "thread_control_request (grant: owner's pass)."),
    _internal(H, "action:request", _h_request, "Another app asks: the holder gets "
              "thread_control_request (grant: owner's pass); a foreign holder: Meta request call."),
    _refuse(B, "action:extend", "not_allowed", _h_extend_bot, "Automation has the 24-hour window "
            "only: nothing to extend."),
    _internal(P, "action:extend", _h_extend, "The targeted human app extends Meta's control (up "
              "to 7 days); control expiry moves out."),
    _internal(H, "action:extend", _h_extend, "The human app extends Meta's control (up to 7 "
              "days); control expiry and idle timer move out."),
    _internal(B, "action:react", _h_react, "React/unreact by the bot in control inside the window; "
              "no disclosure for reactions."),
    _internal(P, "action:react", _h_react, "React/unreact by the targeted human app."),
    _internal(H, "action:react", _h_react, "React/unreact by the human app holding the thread."),
    _internal(B, "action:private_reply", _h_private_reply, "Private reply by the bot in control "
              "(disclosure leads the text when due); refused when the comment was answered or is "
              "older than 7 days."),
    _move(P, "action:private_reply", H, "accept", _h_private_reply_pending, "A private reply from "
          "the targeted human app accepts the conversation, then is sent."),
    _internal(H, "action:private_reply", _h_private_reply, "Private reply by the human app holding "
              "the thread."),
    _internal(B, "action:mark_seen", _h_mark_seen, "Mark seen by the bot in control."),
    _internal(P, "action:mark_seen", _h_mark_seen, "Mark seen by the targeted human app."),
    _internal(H, "action:mark_seen", _h_mark_seen, "Mark seen by the human app holding the "
              "thread."),
    _internal(B, "action:bot_failure", _h_bot_failure, "The bot in control did not understand: "
              "failure counted (below the threshold)."),
    _noop(P, "action:bot_failure", "Ignored: the bot is not in control.", _h_bot_not_in_control),
    _noop(H, "action:bot_failure", "Ignored: the bot is not in control.", _h_bot_not_in_control),
    _move(B, "action:bot_failure_escalates", P, "escalate", _h_bot_failure_escalates, "The "
          "threshold of consecutive failures is reached: escalate (metadata bot_failure)."),
    _noop(P, "action:bot_failure_escalates", "Ignored: the bot is not in control.",
          _h_bot_not_in_control),
    _noop(H, "action:bot_failure_escalates", "Ignored: the bot is not in control.",
          _h_bot_not_in_control),
    _refuse(B, "action:invalid", "invalid", _h_invalid, "Unknown app or target, or bad values."),
    _refuse(P, "action:invalid", "invalid", _h_invalid, "Unknown app or target, or bad values."),
    _refuse(H, "action:invalid", "invalid", _h_invalid, "Unknown app or target, or bad values."),
    # Meta webhooks and reconciliation: our state follows Meta's real owner
    _move(B, "meta:pass_to_bot", B, "meta_pass", _h_meta_bot_in_bot, "Meta passed to another bot "
          "app of ours (or idle): it owns the thread."),
    _move(P, "meta:pass_to_bot", B, "meta_pass", _h_meta_back_to_bot, "Meta passed to a bot app: "
          "back to bot, disclosure now or due, handover_ended."),
    _move(H, "meta:pass_to_bot", B, "meta_pass", _h_meta_back_to_bot, "Meta passed to a bot app: "
          "back to bot, disclosure now or due, handover_ended."),
    _move(B, "meta:pass_to_human", P, "meta_pass", _h_meta_to_pending, "Meta passed to a human app "
          "of ours: it is asked to accept; pending timer."),
    _move(P, "meta:pass_to_human", P, "meta_pass", _h_meta_to_pending, "Meta passed to another "
          "human app of ours: it is the new target."),
    _move(H, "meta:pass_to_human", P, "meta_pass", _h_meta_to_pending, "Meta passed to another "
          "human app of ours: it must accept."),
    _move(B, "meta:pass_to_foreign", H, "meta_pass", _h_meta_to_foreign, "Meta passed to a foreign "
          "inbox (or an app we do not know): human, automation silent."),
    _move(P, "meta:pass_to_foreign", H, "meta_pass", _h_meta_to_foreign, "Meta passed to a "
          "foreign inbox: human, our apps get standby copies only."),
    _move(H, "meta:pass_to_foreign", H, "meta_pass", _h_meta_to_foreign, "Meta passed to a "
          "foreign inbox: human, our apps get standby copies only."),
    _move(B, "meta:take_by_bot", B, "meta_take", _h_meta_bot_in_bot, "Another bot app of ours "
          "took the thread."),
    _move(P, "meta:take_by_bot", B, "meta_take", _h_meta_back_to_bot, "A bot app took the thread "
          "back: disclosure now or due, handover_ended."),
    _move(H, "meta:take_by_bot", B, "meta_take", _h_meta_back_to_bot, "A bot app took the thread "
          "back: disclosure now or due, handover_ended."),
    _move(B, "meta:take_by_human", H, "meta_take", _h_meta_human_take, "A human app of ours took "
          "the thread (a take is deliberate: no accept needed)."),
    _move(P, "meta:take_by_human", H, "meta_take", _h_meta_human_take, "Another human app of ours "
          "took the thread."),
    _move(H, "meta:take_by_human", H, "meta_take", _h_meta_human_take, "Another human app of ours "
          "took the thread."),
    _move(B, "meta:take_by_foreign", H, "meta_take", _h_meta_to_foreign, "A foreign inbox took "
          "the thread (e.g. an agent answered in the Instagram Inbox): bot silent."),
    _move(P, "meta:take_by_foreign", H, "meta_take", _h_meta_to_foreign, "A foreign inbox took "
          "the thread."),
    _move(H, "meta:take_by_foreign", H, "meta_take", _h_meta_to_foreign, "A foreign inbox took "
          "the thread."),
    _internal(B, "meta:request", _h_meta_request, "Meta forwards a request: the app in control "
              "gets thread_control_request (grant: handled as the owner's pass)."),
    _internal(P, "meta:request", _h_meta_request, "Meta forwards a request to the targeted "
              "human app (grant: owner's pass)."),
    _internal(H, "meta:request", _h_meta_request, "Meta forwards a request to the human app "
              "holding the thread (grant: owner's pass; foreign holder: note only)."),
    _noop(B, "meta:app_roles", "App roles changed: noted, no state change.", _h_app_roles),
    _noop(P, "meta:app_roles", "App roles changed: noted, no state change.", _h_app_roles),
    _noop(H, "meta:app_roles", "App roles changed: noted, no state change.", _h_app_roles),
    _noop(B, "owner_confirmed", "Meta's webhook or thread_owner confirms what we know.",
          _h_owner_confirmed),
    _noop(P, "owner_confirmed", "Meta's webhook or thread_owner confirms what we know.",
          _h_owner_confirmed),
    _noop(H, "owner_confirmed", "Meta's webhook or thread_owner confirms what we know.",
          _h_owner_confirmed),
    _move(B, "owner_reconciled:idle", B, "reconcile", _h_meta_bot_in_bot, "thread_owner says "
          "idle while a bot app of ours was believed to own it: idle."),
    _move(P, "owner_reconciled:idle", B, "reconcile", _h_meta_back_to_bot, "thread_owner says "
          "idle: back to bot (idle), disclosure now or due."),
    _move(H, "owner_reconciled:idle", B, "reconcile", _h_meta_back_to_bot, "thread_owner says "
          "idle: back to bot (idle), disclosure now or due."),
    _move(B, "owner_reconciled:bot", B, "reconcile", _h_meta_bot_in_bot, "thread_owner names "
          "another bot app of ours."),
    _move(P, "owner_reconciled:bot", B, "reconcile", _h_meta_back_to_bot, "thread_owner names a "
          "bot app: back to bot, disclosure now or due."),
    _move(H, "owner_reconciled:bot", B, "reconcile", _h_meta_back_to_bot, "thread_owner names a "
          "bot app: back to bot, disclosure now or due."),
    _move(B, "owner_reconciled:human", P, "reconcile", _h_meta_to_pending, "thread_owner names a "
          "human app of ours: it is asked to accept."),
    _move(P, "owner_reconciled:human", P, "reconcile", _h_meta_to_pending, "thread_owner names "
          "another human app of ours: it is the new target."),
    _move(H, "owner_reconciled:human", P, "reconcile", _h_meta_to_pending, "thread_owner names "
          "another human app of ours: it must accept."),
    _move(B, "owner_reconciled:foreign", H, "reconcile", _h_meta_to_foreign, "thread_owner names a "
          "foreign app: human, automation silent."),
    _move(P, "owner_reconciled:foreign", H, "reconcile", _h_meta_to_foreign, "thread_owner names a "
          "foreign app: human."),
    _move(H, "owner_reconciled:foreign", H, "reconcile", _h_meta_to_foreign, "thread_owner names a "
          "different foreign app: it holds the thread."),
    # timers (a firing whose generation is not the current one is timer:stale)
    _noop(B, "timer:pending_timeout", "Not pending any more: ignored.", _h_timer_elsewhere),
    _move(P, "timer:pending_timeout", B, "pending_timeout", _h_pending_timeout, "No agent "
          "accepted in time: the human app passes back to the primary; disclosure and the "
          "no-agent notice (window permitting); handover_ended and control_lost."),
    _noop(H, "timer:pending_timeout", "Already accepted: ignored.", _h_timer_elsewhere),
    _noop(B, "timer:human_idle", "No human holds the thread: ignored.", _h_timer_elsewhere),
    _noop(P, "timer:human_idle", "Not accepted yet: ignored.", _h_timer_elsewhere),
    _move(H, "timer:human_idle", B, "human_idle", _h_human_idle, "The human app was idle too long: "
          "it releases (metadata human_idle); disclosure now or due; handover_ended."),
    _noop(B, "timer:control_expiry", "The bot holds the thread: ignored.", _h_timer_elsewhere),
    _move(P, "timer:control_expiry", B, "control_expiry", _h_control_expiry, "Meta idled the "
          "thread (24 h without a customer message): bot, idle, disclosure due; no Graph call."),
    _move(H, "timer:control_expiry", B, "control_expiry", _h_control_expiry, "Meta idled the "
          "thread: bot, idle, disclosure due; no Graph call."),
    _noop(B, "timer:stale", "A timer of an older generation: ignored.", _h_noted),
    _noop(P, "timer:stale", "A timer of an older generation: ignored.", _h_noted),
    _noop(H, "timer:stale", "A timer of an older generation: ignored.", _h_noted),
)
# fmt: on

TRIGGER_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s.row.trigger for s in _SPECS))
_SPEC_BY_KEY: dict[tuple[State, str], _Spec] = {(s.row.state, s.row.trigger): s for s in _SPECS}

# Every (state, trigger) row, in table order: state by state, trigger by trigger.
TRANSITION_TABLE: list[TransitionRow] = [
    _SPEC_BY_KEY[(state, name)].row for state in State for name in TRIGGER_NAMES
]
# (state, trigger) → the transition name (Decision.transition) or the refusal code.
ROW_LABELS: Mapping[tuple[State, str], str | None] = {k: s.label for k, s in _SPEC_BY_KEY.items()}


def _check_table() -> None:
    expected = {(state, name) for state in State for name in TRIGGER_NAMES}
    if len(_SPECS) != len(_SPEC_BY_KEY) or set(_SPEC_BY_KEY) != expected:
        missing = sorted(expected - set(_SPEC_BY_KEY))
        raise RuntimeError(f"TRANSITION_TABLE is not one row per (state, trigger): {missing}")


# --- the machine --------------------------------------------------------------------------------


def _prepare(spec: _Spec, event: EventData) -> None:
    run = event.model
    assert isinstance(run, _Run)
    spec.handler(run)


def _accepted(event: EventData) -> bool:
    run = event.model
    assert isinstance(run, _Run)
    return run.refusal is None


@functools.cache
def build_machine() -> Machine:
    """The one machine definition, built on first use and shared by every decision. Its
    callbacks only compute values (no I/O), so sharing it is safe."""
    _check_table()
    machine = Machine(
        model=None,
        states=[state.value for state in State],
        initial=State.BOT.value,
        send_event=True,
        auto_transitions=False,
        queued=False,
        ignore_invalid_triggers=False,
        name="conversation",
    )
    for spec in _SPECS:
        row = spec.row
        machine.add_transition(
            trigger=row.trigger,
            source=row.state.value,
            dest=row.dest.value if row.outcome == "transition" else None,
            prepare=[functools.partial(_prepare, spec)],
            conditions=[_accepted],
        )
    return machine


def timer_schedule(view: ConversationView, policy: Policy) -> dict[TimerKind, datetime]:
    """The timers a conversation in this view must have armed, with their due times."""
    out: dict[TimerKind, datetime] = {}
    if view.state is P and view.pending_since is not None:
        out["pending_timeout"] = view.pending_since + policy.pending_timeout
    if view.state is H and view.human_app is not None and view.human_idle_due_at is not None:
        out["human_idle"] = view.human_idle_due_at
    if view.state is not B and view.control_expires_at is not None:
        out["control_expiry"] = view.control_expires_at
    return out


def _timer_effects(
    before: ConversationView, after: ConversationView, policy: Policy
) -> tuple[ConversationView, list[Effect]]:
    old, new = timer_schedule(before, policy), timer_schedule(after, policy)
    if old == new:
        return after, []
    generation = before.timer_generation + 1
    effects: list[Effect] = [CancelTimer(k) for k in TIMER_KINDS if k in old and k not in new]
    effects += [SetTimer(k, due, generation) for k, due in new.items()]
    return after.replace(timer_generation=generation), effects


def decide(view: ConversationView, trigger: Trigger, now: datetime, policy: Policy) -> Decision:
    """Decide what `trigger` does to the conversation in `view` at `now`. Pure."""
    require_aware(now, "now")
    cls = _classify(view, trigger, policy)
    spec = _SPEC_BY_KEY[(view.state, cls.name)]
    run = _Run(view, trigger, now, policy, cls)
    machine = build_machine()
    machine.add_model(run, initial=view.state.value)
    try:
        run.trigger(cls.name)
    finally:
        machine.remove_model(run)
    notes = tuple(run.notes)
    if run.refusal is not None:
        return Decision(view, (), None, run.refusal, notes, cls.name)
    new_view = run.view.replace(state=State(run.state))
    new_view, timers = _timer_effects(view, new_view, policy)
    transition = spec.label if spec.row.outcome == "transition" else None
    return Decision(new_view, (*run.effects, *timers), transition, None, notes, cls.name)
