"""TRANSITION_TABLE: one row per (state, trigger name), each with its outcome, destination,
description, label and handler. TRIGGER_NAMES and ROW_LABELS are derived from it; the
diagram and the README table are generated from it. How to read it: see
`state_machines.conversation`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from state_machines._run import _Run
from state_machines.handlers_control import (
    _h_accept_bot,
    _h_accept_human,
    _h_accept_pending,
    _h_bot_failure,
    _h_bot_failure_escalates,
    _h_bot_not_in_control,
    _h_escalate,
    _h_escalate_refused,
    _h_extend,
    _h_extend_bot,
    _h_invalid,
    _h_pass_back,
    _h_pass_bot,
    _h_pass_to_human,
    _h_pass_to_inbox,
    _h_release_bot,
    _h_release_human,
    _h_request,
    _h_take_back,
    _h_take_bot,
    _h_take_human,
)
from state_machines.handlers_customer import (
    _h_customer,
    _h_customer_escalates,
    _h_echo,
    _h_echo_human_elsewhere,
    _h_echo_human_in_bot,
)
from state_machines.handlers_messages import (
    _h_mark_seen,
    _h_private_reply,
    _h_private_reply_pending,
    _h_react,
    _h_reply_bot,
    _h_reply_human,
    _h_reply_pending,
)
from state_machines.handlers_meta import (
    _h_app_roles,
    _h_meta_back_to_bot,
    _h_meta_bot_in_bot,
    _h_meta_human_take,
    _h_meta_request,
    _h_meta_to_foreign,
    _h_meta_to_pending,
    _h_owner_confirmed,
)
from state_machines.handlers_timers import (
    _h_control_expiry,
    _h_human_idle,
    _h_noted,
    _h_pending_timeout,
    _h_timer_elsewhere,
)
from state_machines.model import State
from state_machines.rules import B, H, P

Outcome = Literal["transition", "internal", "no-op", "refusal"]


class TransitionRow(NamedTuple):
    state: State
    trigger: str
    outcome: Outcome
    dest: State
    description: str


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


def _h_note(text: str) -> Callable[[_Run], None]:
    def handler(run: _Run) -> None:
        run.note(text)

    return handler


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
