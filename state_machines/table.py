"""The transition table: the source of truth of the conversation machine.

One row per (state, trigger name): `_move` (control moves to the next state, under a
transition name), `_internal` (effects or bookkeeping, control stays), `_noop` (a note only)
or `_refuse` (a refusal code). Each row names its handler, a public function of one of the
`state_machines.handlers` modules, grouped by trigger family: `customer` (customer events and
echoes), `message_actions` and `control_actions` (our apps' actions), `meta` (Meta's handover
webhooks and thread_owner reconciliation), `outbox` (an effect the outbox gave up on) and
`timers`.

`conversation.build_machine` declares these rows as `transitions` states and transitions;
TRIGGER_NAMES, TRANSITION_TABLE and ROW_LABELS are derived from them, and so are the diagram
and the README table (`orchestrator diagram`, `make readme`). How to read a row: see
`state_machines.conversation`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

from state_machines.handlers import (
    control_actions,
    customer,
    message_actions,
    meta,
    outbox,
    timers,
)
from state_machines.model import State
from state_machines.rules import B, H, P
from state_machines.run import Run

Outcome = Literal["transition", "internal", "no-op", "refusal"]
Handler = Callable[[Run], None]


class TransitionRow(NamedTuple):
    state: State
    trigger: str
    outcome: Outcome
    dest: State
    description: str


@dataclass(frozen=True, slots=True)
class RowSpec:
    """One row of the table with what the machine needs to run it."""

    row: TransitionRow
    label: str | None  # transition name (Decision.transition) or refusal code
    handler: Handler


def _move(s: State, trig: str, dest: State, label: str, h: Handler, d: str) -> RowSpec:
    return RowSpec(TransitionRow(s, trig, "transition", dest, d), label, h)


def _internal(s: State, trig: str, h: Handler, d: str) -> RowSpec:
    return RowSpec(TransitionRow(s, trig, "internal", s, d), None, h)


def _noop(s: State, trig: str, h: Handler | None, d: str) -> RowSpec:
    """A row that only notes `d` (or what `h` notes)."""
    return RowSpec(TransitionRow(s, trig, "no-op", s, d), None, h or _note(d))


def _refuse(s: State, trig: str, code: str, h: Handler, d: str) -> RowSpec:
    return RowSpec(TransitionRow(s, trig, "refusal", s, d), code, h)


def _note(text: str) -> Handler:
    def handler(run: Run) -> None:
        run.note(text)

    return handler


# fmt: off
ROW_SPECS: tuple[RowSpec, ...] = (
    # --- the customer and echoes ------------------------------------------------------------------
    _internal(B, "customer_message", customer.routed,
              "Routed to the primary (or the bot app that owns the thread); standby copies to "
              "others; window anchor moves; a message the bot understood ends a bot-failure "
              "streak."),
    _internal(P, "customer_message", customer.routed,
              "Routed to the targeted human app (standby copies to others); window anchor and "
              "control expiry move."),
    _internal(H, "customer_message", customer.routed,
              "Routed to the human app holding the thread (a foreign inbox: standby copies only);"
              " window anchor and control expiry move."),
    _move(B, "customer_message_escalates", P, "escalate", customer.escalates,
          "Keyword or escalation quick reply: the bot passes to the human app (metadata "
          "customer_request), which gets handover_requested with the message; pending timer "
          "starts."),
    _internal(P, "customer_message_escalates", customer.routed,
              "Already escalated: Routed to the app in control; standby copies to apps with "
              "standby=true."),
    _internal(H, "customer_message_escalates", customer.routed,
              "A human holds it: Routed to the app in control; standby copies to apps with "
              "standby=true."),
    _internal(B, "customer_activity", customer.routed,
              "Routed to the app in control; standby copies to apps with standby=true. Postback, "
              "reaction, referral and comment reopen the window; read, edit and delete do not."),
    _internal(P, "customer_activity", customer.routed,
              "Routed to the app in control; standby copies to apps with standby=true."),
    _internal(H, "customer_activity", customer.routed,
              "Routed to the app in control; standby copies to apps with standby=true."),
    _move(B, "customer_activity_escalates", P, "escalate", customer.escalates,
          "A postback with an escalation payload: escalates like customer_message_escalates."),
    _internal(P, "customer_activity_escalates", customer.routed,
              "Already escalated: Routed to the app in control; standby copies to apps with "
              "standby=true."),
    _internal(H, "customer_activity_escalates", customer.routed,
              "A human holds it: Routed to the app in control; standby copies to apps with "
              "standby=true."),
    _internal(B, "customer_standby", customer.standby_only,
              "The bot app we believe in control got the event only as a standby copy (or the "
              "edge vouches none of ours got it as owner): another app owns the thread. Never "
              "automated on (standby copies only, no escalation); window anchor moves; Meta is "
              "asked who owns it (thread_owner) and the answer moves our state."),
    _internal(P, "customer_standby", customer.standby_only,
              "The targeted human app got the event only as a standby copy: another app owns "
              "the thread. Standby copies only; Meta is asked who owns it (thread_owner). (Not "
              "while our own pass is still on its way to Meta: that copy is expected then.)"),
    _internal(H, "customer_standby", customer.standby_only,
              "Our human app holding the thread got the event only as a standby copy: another "
              "app owns it. Standby copies only; Meta is asked who owns it (thread_owner)."),
    _internal(B, "customer_as_owner", customer.as_owner_while_foreign,
              "Only classified while a foreign app is believed to hold the thread (human state);"
              " handled as there: standby copies only, Meta is asked (thread_owner)."),
    _internal(P, "customer_as_owner", customer.as_owner_while_foreign,
              "Only classified while a foreign app is believed to hold the thread (human state);"
              " handled as there: standby copies only, Meta is asked (thread_owner)."),
    _internal(H, "customer_as_owner", customer.as_owner_while_foreign,
              "An app of ours got the event as owner (messaging) while we believe a foreign app "
              "(an Inbox) holds the thread: it let go without a webhook (a release sends none). "
              "Standby copies only, nothing automated; Meta is asked who owns it (thread_owner) "
              "and the answer moves our state (idle or a bot: back to the bot, disclosure)."),
    _noop(B, "echo", customer.own_echo,
          "Echo of our bot's own message."),
    _noop(P, "echo", customer.own_echo,
          "Echo of our bot's own message."),
    _noop(H, "echo", customer.own_echo,
          "Echo of our bot's own message."),
    _internal(B, "echo_human", customer.human_echo_in_bot,
              "A human (our human app, a foreign inbox or the Instagram app) spoke: the next "
              "automated message is disclosed; state follows Meta's take webhook, not the echo."),
    _noop(P, "echo_human", customer.human_echo_elsewhere,
          "Human-side echo while humans hold the conversation."),
    _noop(H, "echo_human", customer.human_echo_elsewhere,
          "Human-side echo while humans hold the conversation."),
    # --- actions of our apps (guards: see state_machines.conversation) ----------------------------
    _internal(B, "action:reply", message_actions.reply_by_bot,
              "The bot in control replies inside 24 h; the disclosure goes first when needed "
              "(first message, after a human, after a lapse)."),
    _move(P, "action:reply", H, "accept", message_actions.reply_accepts,
          "A reply from the targeted human app accepts the conversation, then is sent (RESPONSE, "
          "or HUMAN_AGENT after 24 h)."),
    _internal(H, "action:reply", message_actions.reply_by_human,
              "The human app holding the thread replies: RESPONSE within 24 h, HUMAN_AGENT up to "
              "7 days; idle timer restarts."),
    _move(B, "action:escalate", P, "escalate", control_actions.escalate,
          "The bot in control passes to the human app (target_app or the default) with its "
          "metadata; handover_requested; pending timer. Refused not_allowed when no human app "
          "exists."),
    _refuse(P, "action:escalate", "not_owner", control_actions.escalate_refused,
            "Already pending: only the app in control escalates."),
    _refuse(H, "action:escalate", "not_owner", control_actions.escalate_refused,
            "A human holds it: only the app in control escalates."),
    _refuse(B, "action:accept", "not_allowed", control_actions.accept_nothing_pending,
            "Nothing is pending."),
    _move(P, "action:accept", H, "accept", control_actions.accept_pending,
          "The targeted human app accepts: pending timer off, idle timer on."),
    _noop(H, "action:accept", control_actions.accept_again,
          "Already accepted by the app holding the thread (idempotent)."),
    _move(B, "action:pass", B, "pass_to_bot", control_actions.pass_between_bots,
          "The bot in control passes to another bot app of ours (null target = primary); it gets "
          "control_received."),
    _move(P, "action:pass", B, "release_to_bot", control_actions.pass_back,
          "The targeted human app passes back to a bot: disclosure sent now (window open) or due;"
          " bot gets handover_ended."),
    _move(H, "action:pass", B, "release_to_bot", control_actions.pass_back,
          "The human app passes back to a bot: disclosure sent now (window open) or due; bot gets"
          " handover_ended."),
    _move(B, "action:pass_to_human", P, "escalate", control_actions.pass_to_human,
          "The bot in control passes to a human app of ours: same as action:escalate to that app."),
    _move(P, "action:pass_to_human", P, "transfer", control_actions.pass_to_human,
          "The targeted human app hands over to another human app, which must accept; pending "
          "timer restarts."),
    _move(H, "action:pass_to_human", P, "transfer", control_actions.pass_to_human,
          "The human app transfers to another human app, which must accept."),
    _move(B, "action:pass_to_inbox", H, "pass_to_inbox", control_actions.pass_to_inbox,
          "The bot in control passes to a foreign inbox (Instagram/Page Inbox); automation falls "
          "silent."),
    _move(P, "action:pass_to_inbox", H, "pass_to_inbox", control_actions.pass_to_inbox,
          "The targeted human app passes to a foreign inbox."),
    _move(H, "action:pass_to_inbox", H, "pass_to_inbox", control_actions.pass_to_inbox,
          "The human app passes to a foreign inbox."),
    _move(B, "action:take", B, "take", control_actions.take_between_bots,
          "A bot app allowed to take (can_take or primary) takes from another bot or idle; "
          "not_allowed otherwise."),
    _move(P, "action:take", B, "take_back", control_actions.take_back,
          "A bot app allowed to take takes the thread back; the human app gets control_lost; "
          "disclosure now or due."),
    _move(H, "action:take", B, "take_back", control_actions.take_back,
          "A bot app allowed to take takes the thread back from a human (ours or a foreign "
          "inbox); disclosure now or due."),
    _move(B, "action:take_by_human", H, "human_take", control_actions.take_by_human,
          "A human app allowed to take takes the thread from the bot (which gets control_lost); "
          "no accept needed."),
    _move(P, "action:take_by_human", H, "human_take", control_actions.take_by_human,
          "Another human app allowed to take takes it (the target itself is told to accept "
          "instead)."),
    _move(H, "action:take_by_human", H, "human_take", control_actions.take_by_human,
          "Another human app allowed to take takes it from the holder (ours or a foreign inbox)."),
    _move(B, "action:release", B, "release", control_actions.release_by_bot,
          "A bot app owning the thread releases it to idle (the primary speaks); not_allowed when"
          " already idle."),
    _move(P, "action:release", B, "release_to_bot", control_actions.release_by_human,
          "The targeted human app releases: idle, disclosure now or due, primary gets "
          "handover_ended."),
    _move(H, "action:release", B, "release_to_bot", control_actions.release_by_human,
          "The human app releases: idle, disclosure now or due, primary gets handover_ended."),
    _internal(B, "action:request", control_actions.request,
              "Another app asks for the thread: the app in control gets thread_control_request "
              "(request_policy=ask_owner). With grant it is handled as the owner's action:pass* "
              "to the requester. By the owner: not_allowed."),
    _internal(P, "action:request", control_actions.request,
              "Another app asks: the targeted human app gets thread_control_request (grant: "
              "owner's pass)."),
    _internal(H, "action:request", control_actions.request,
              "Another app asks: the holder gets thread_control_request (grant: owner's pass); a "
              "foreign holder: Meta request call."),
    _refuse(B, "action:extend", "not_allowed", control_actions.extend_refused,
            "Automation has the 24-hour window only: nothing to extend."),
    _internal(P, "action:extend", control_actions.extend,
              "The targeted human app extends Meta's control (up to 7 days); control expiry moves"
              " out."),
    _internal(H, "action:extend", control_actions.extend,
              "The human app extends Meta's control (up to 7 days); control expiry and idle timer"
              " move out."),
    _internal(B, "action:react", message_actions.react,
              "React/unreact by the bot in control inside the window; no disclosure for "
              "reactions."),
    _internal(P, "action:react", message_actions.react,
              "React/unreact by the targeted human app."),
    _internal(H, "action:react", message_actions.react,
              "React/unreact by the human app holding the thread."),
    _internal(B, "action:private_reply", message_actions.private_reply,
              "Private reply by the bot in control (disclosure leads the text when due); refused "
              "when the comment was answered or is older than 7 days."),
    _move(P, "action:private_reply", H, "accept", message_actions.private_reply_accepts,
          "A private reply from the targeted human app accepts the conversation, then is sent."),
    _internal(H, "action:private_reply", message_actions.private_reply,
              "Private reply by the human app holding the thread."),
    _internal(B, "action:mark_seen", message_actions.mark_seen,
              "Mark seen by the bot in control."),
    _internal(P, "action:mark_seen", message_actions.mark_seen,
              "Mark seen by the targeted human app."),
    _internal(H, "action:mark_seen", message_actions.mark_seen,
              "Mark seen by the human app holding the thread."),
    _internal(B, "action:bot_failure", control_actions.bot_failure,
              "The bot in control did not understand: failure counted (below the threshold)."),
    _noop(P, "action:bot_failure", control_actions.bot_not_in_control,
          "Ignored: the bot is not in control."),
    _noop(H, "action:bot_failure", control_actions.bot_not_in_control,
          "Ignored: the bot is not in control."),
    _move(B, "action:bot_failure_escalates", P, "escalate", control_actions.bot_failure_escalates,
          "The threshold of consecutive failures is reached: escalate (metadata bot_failure)."),
    _noop(P, "action:bot_failure_escalates", control_actions.bot_not_in_control,
          "Ignored: the bot is not in control."),
    _noop(H, "action:bot_failure_escalates", control_actions.bot_not_in_control,
          "Ignored: the bot is not in control."),
    _refuse(B, "action:invalid", "invalid", control_actions.invalid,
            "Unknown app or target, or bad values."),
    _refuse(P, "action:invalid", "invalid", control_actions.invalid,
            "Unknown app or target, or bad values."),
    _refuse(H, "action:invalid", "invalid", control_actions.invalid,
            "Unknown app or target, or bad values."),
    # --- Meta's webhooks and thread_owner reconciliation: our state follows Meta's real owner -----
    _move(B, "meta:pass_to_bot", B, "meta_pass", meta.to_other_bot,
          "Meta passed to another bot app of ours (or idle): it owns the thread."),
    _move(P, "meta:pass_to_bot", B, "meta_pass", meta.back_to_bot,
          "Meta passed to a bot app: back to bot, disclosure now or due, handover_ended."),
    _move(H, "meta:pass_to_bot", B, "meta_pass", meta.back_to_bot,
          "Meta passed to a bot app: back to bot, disclosure now or due, handover_ended."),
    _move(B, "meta:pass_to_human", P, "meta_pass", meta.to_pending_human,
          "Meta passed to a human app of ours: it is asked to accept; pending timer."),
    _move(P, "meta:pass_to_human", P, "meta_pass", meta.to_pending_human,
          "Meta passed to another human app of ours: it is the new target."),
    _move(H, "meta:pass_to_human", P, "meta_pass", meta.to_pending_human,
          "Meta passed to another human app of ours: it must accept."),
    _move(B, "meta:pass_to_foreign", H, "meta_pass", meta.to_foreign_owner,
          "Meta passed to a foreign inbox (or an app we do not know): human, automation silent."),
    _move(P, "meta:pass_to_foreign", H, "meta_pass", meta.to_foreign_owner,
          "Meta passed to a foreign inbox: human, our apps get standby copies only."),
    _move(H, "meta:pass_to_foreign", H, "meta_pass", meta.to_foreign_owner,
          "Meta passed to a foreign inbox: human, our apps get standby copies only."),
    _move(B, "meta:take_by_bot", B, "meta_take", meta.to_other_bot,
          "Another bot app of ours took the thread."),
    _move(P, "meta:take_by_bot", B, "meta_take", meta.back_to_bot,
          "A bot app took the thread back: disclosure now or due, handover_ended."),
    _move(H, "meta:take_by_bot", B, "meta_take", meta.back_to_bot,
          "A bot app took the thread back: disclosure now or due, handover_ended."),
    _move(B, "meta:take_by_human", H, "meta_take", meta.human_take,
          "A human app of ours took the thread (a take is deliberate: no accept needed)."),
    _move(P, "meta:take_by_human", H, "meta_take", meta.human_take,
          "Another human app of ours took the thread."),
    _move(H, "meta:take_by_human", H, "meta_take", meta.human_take,
          "Another human app of ours took the thread."),
    _move(B, "meta:take_by_foreign", H, "meta_take", meta.to_foreign_owner,
          "A foreign inbox took the thread (e.g. an agent answered in the Instagram Inbox): bot "
          "silent."),
    _move(P, "meta:take_by_foreign", H, "meta_take", meta.to_foreign_owner,
          "A foreign inbox took the thread."),
    _move(H, "meta:take_by_foreign", H, "meta_take", meta.to_foreign_owner,
          "A foreign inbox took the thread."),
    _noop(B, "meta:superseded", meta.superseded,
          "A pass or take webhook older (Meta's time) than the newest handover applied: "
          "recorded in the notes, never applied."),
    _noop(P, "meta:superseded", meta.superseded,
          "A pass or take webhook older (Meta's time) than the newest handover applied: "
          "recorded in the notes, never applied."),
    _noop(H, "meta:superseded", meta.superseded,
          "A pass or take webhook older (Meta's time) than the newest handover applied: "
          "recorded in the notes, never applied."),
    _internal(B, "meta:unordered", meta.unordered,
              "A pass or take webhook that disagrees with our state and is stamped before our "
              "latest control decision (two clocks): not applied; Meta is asked who owns the "
              "thread (thread_owner) and we follow the answer."),
    _internal(P, "meta:unordered", meta.unordered,
              "A pass or take webhook that disagrees with our state and is stamped before our "
              "latest control decision (two clocks): not applied; Meta is asked who owns the "
              "thread (thread_owner) and we follow the answer."),
    _internal(H, "meta:unordered", meta.unordered,
              "A pass or take webhook that disagrees with our state and is stamped before our "
              "latest control decision (two clocks): not applied; Meta is asked who owns the "
              "thread (thread_owner) and we follow the answer."),
    _internal(B, "meta:request", meta.request,
              "Meta forwards a request: the app in control gets thread_control_request (grant: "
              "handled as the owner's pass)."),
    _internal(P, "meta:request", meta.request,
              "Meta forwards a request to the targeted human app (grant: owner's pass)."),
    _internal(H, "meta:request", meta.request,
              "Meta forwards a request to the human app holding the thread (grant: owner's pass; "
              "foreign holder: note only)."),
    _noop(B, "meta:app_roles", meta.app_roles,
          "App roles changed: noted, no state change."),
    _noop(P, "meta:app_roles", meta.app_roles,
          "App roles changed: noted, no state change."),
    _noop(H, "meta:app_roles", meta.app_roles,
          "App roles changed: noted, no state change."),
    _internal(B, "owner_confirmed", meta.owner_confirmed,
              "Meta's webhook or thread_owner confirms what we know; a webhook's time is kept "
              "as the newest handover applied."),
    _internal(P, "owner_confirmed", meta.owner_confirmed,
              "Meta's webhook or thread_owner confirms what we know; a webhook's time is kept "
              "as the newest handover applied."),
    _internal(H, "owner_confirmed", meta.owner_confirmed,
              "Meta's webhook or thread_owner confirms what we know; a webhook's time is kept "
              "as the newest handover applied."),
    _move(B, "owner_reconciled:idle", B, "reconcile", meta.to_other_bot,
          "thread_owner says idle while a bot app of ours was believed to own it: idle."),
    _move(P, "owner_reconciled:idle", B, "reconcile", meta.back_to_bot,
          "thread_owner says idle: back to bot (idle), disclosure now or due."),
    _move(H, "owner_reconciled:idle", B, "reconcile", meta.back_to_bot,
          "thread_owner says idle: back to bot (idle), disclosure now or due."),
    _move(B, "owner_reconciled:bot", B, "reconcile", meta.to_other_bot,
          "thread_owner names another bot app of ours."),
    _move(P, "owner_reconciled:bot", B, "reconcile", meta.back_to_bot,
          "thread_owner names a bot app: back to bot, disclosure now or due."),
    _move(H, "owner_reconciled:bot", B, "reconcile", meta.back_to_bot,
          "thread_owner names a bot app: back to bot, disclosure now or due."),
    _move(B, "owner_reconciled:human", P, "reconcile", meta.to_pending_human,
          "thread_owner names a human app of ours: it is asked to accept."),
    _move(P, "owner_reconciled:human", P, "reconcile", meta.to_pending_human,
          "thread_owner names another human app of ours: it is the new target."),
    _move(H, "owner_reconciled:human", P, "reconcile", meta.to_pending_human,
          "thread_owner names another human app of ours: it must accept."),
    _move(B, "owner_reconciled:foreign", H, "reconcile", meta.to_foreign_owner,
          "thread_owner names a foreign app: human, automation silent."),
    _move(P, "owner_reconciled:foreign", H, "reconcile", meta.to_foreign_owner,
          "thread_owner names a foreign app: human."),
    _move(H, "owner_reconciled:foreign", H, "reconcile", meta.to_foreign_owner,
          "thread_owner names a different foreign app: it holds the thread."),
    # --- the outbox reports an effect it gave up on ---------------------------------------------
    _internal(B, "disclosure_undelivered", outbox.disclosure_undelivered,
              "The outbox gave up on a disclosure: the automated messages queued behind it were "
              "held (not sent); the disclosure is due again and precedes the next automated "
              "message."),
    _internal(P, "disclosure_undelivered", outbox.disclosure_undelivered,
              "The outbox gave up on a disclosure: automated messages behind it held; the "
              "disclosure is due again for when automation speaks next."),
    _internal(H, "disclosure_undelivered", outbox.disclosure_undelivered,
              "The outbox gave up on a disclosure: automated messages behind it held; the "
              "disclosure is due again for when automation speaks next."),
    # --- timers (a firing whose generation is not the current one is timer:stale) -----------------
    _noop(B, "timer:pending_timeout", timers.not_applicable,
          "Not pending any more: ignored."),
    _move(P, "timer:pending_timeout", B, "pending_timeout", timers.pending_timeout,
          "No agent accepted in time: the human app passes back to the primary; disclosure and "
          "the no-agent notice (window permitting); handover_ended and control_lost."),
    _noop(H, "timer:pending_timeout", timers.not_applicable,
          "Already accepted: ignored."),
    _noop(B, "timer:human_idle", timers.not_applicable,
          "No human holds the thread: ignored."),
    _noop(P, "timer:human_idle", timers.not_applicable,
          "Not accepted yet: ignored."),
    _move(H, "timer:human_idle", B, "human_idle", timers.human_idle,
          "The human app was idle too long: it releases (metadata human_idle); disclosure now or "
          "due; handover_ended."),
    _noop(B, "timer:control_expiry", timers.not_applicable,
          "The bot holds the thread: ignored."),
    _move(P, "timer:control_expiry", B, "control_expiry", timers.control_expiry,
          "Meta idled the thread (24 h without a customer message): bot, idle, disclosure due; no"
          " Graph call."),
    _move(H, "timer:control_expiry", B, "control_expiry", timers.control_expiry,
          "Meta idled the thread: bot, idle, disclosure due; no Graph call."),
    _noop(B, "timer:stale", timers.stale,
          "A timer of an older generation: ignored."),
    _noop(P, "timer:stale", timers.stale,
          "A timer of an older generation: ignored."),
    _noop(H, "timer:stale", timers.stale,
          "A timer of an older generation: ignored."),
)
# fmt: on

TRIGGER_NAMES: tuple[str, ...] = tuple(dict.fromkeys(s.row.trigger for s in ROW_SPECS))
SPEC_BY_KEY: dict[tuple[State, str], RowSpec] = {(s.row.state, s.row.trigger): s for s in ROW_SPECS}

# Every (state, trigger) row, in table order: state by state, trigger by trigger.
TRANSITION_TABLE: list[TransitionRow] = [
    SPEC_BY_KEY[(state, name)].row for state in State for name in TRIGGER_NAMES
]
# (state, trigger) → the transition name (Decision.transition) or the refusal code.
ROW_LABELS: Mapping[tuple[State, str], str | None] = {k: s.label for k, s in SPEC_BY_KEY.items()}


def check_table() -> None:
    expected = {(state, name) for state in State for name in TRIGGER_NAMES}
    if len(ROW_SPECS) != len(SPEC_BY_KEY) or set(SPEC_BY_KEY) != expected:
        missing = sorted(expected - set(SPEC_BY_KEY))
        raise RuntimeError(f"TRANSITION_TABLE is not one row per (state, trigger): {missing}")
