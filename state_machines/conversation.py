"""The conversation state machine and `decide`, pure.

`decide(view, trigger, now, policy)` classifies the trigger into one TRANSITION_TABLE trigger
name (`classify`), makes a `Run` (the model: one decision in progress, holding the view, the
trigger and the effects collected so far), fires that name on the machine for that model and
returns the new snapshot with the effects the row's handler recorded. No I/O, no clock, no
logging, no randomness.

The `transitions` machine is the table made executable: its states are `State`, its
transitions the table's rows (internal rows have no destination), each row's handler is the
transition's `prepare` callback (it computes effects on the Run, never performs them) and the
guard `accepted` lets the transition happen only when the handler refused nothing. The
definitions are built once (`build_machine`) and never changed afterwards: a decision does not
register its model on the machine, it fires the event for that model only
(`Event.trigger(model)`), so concurrent decisions share nothing mutable.

How to read TRANSITION_TABLE: one row per (state, trigger name), each either a transition
(control moves; `dest` may equal the state, e.g. a transfer between human apps), `internal`
(effects or bookkeeping, control unchanged), `no-op` (a note only) or `refusal`. Rows
describe the normal sender; these guards apply on top of every `action:*` row:

- the app must be in control (bot state: the primary, or the bot app that owns the thread;
  pending_human: the targeted human app; human: the human app holding it) unless the row
  says otherwise — else `not_owner`, no effects;
- messages obey the window (window.py) — else `window_closed` / `human_agent_window_closed`;
- malformed actions (unknown app or target, bad values) are classified `action:invalid`.

A refused decision never changes the view; its only effect tells the app that acted why
(`action_refused`). Timers are a function of
the view (`timer_schedule`): whenever the schedule changes the generation is bumped and every
armed timer is (re)set, so a firing with an old generation is recognised as stale.

Where the pieces are: `table` (the rows), `classify` (input → trigger name), `run` (the
model), `handlers/` (one module per trigger family), the steps handlers share (`control`:
who is in control; `sending`: routing and sends checked against the window; `moves`: every
handover), `rules` (constants and rule texts), `window` and `disclosure` (the two policies).
"""

from __future__ import annotations

import functools
from datetime import datetime

from transitions import EventData, Machine

from state_machines.classify import classify, classify_input
from state_machines.control import latest_of
from state_machines.effects import CancelTimer, Decision, Deliver, Effect, Refusal, SetTimer
from state_machines.model import (
    TIMER_KINDS,
    ConversationView,
    Policy,
    State,
    TimerKind,
    require_aware,
)
from state_machines.rules import B, H, P
from state_machines.run import Run
from state_machines.table import (
    ROW_LABELS,
    ROW_SPECS,
    SPEC_BY_KEY,
    TRANSITION_TABLE,
    TRIGGER_NAMES,
    RowSpec,
    TransitionRow,
    check_table,
)
from state_machines.triggers import AppAction, MetaHandover, Trigger

__all__ = [
    "ROW_LABELS",
    "TRANSITION_TABLE",
    "TRIGGER_NAMES",
    "TransitionRow",
    "build_machine",
    "classify",
    "decide",
    "timer_schedule",
]


def _prepare(spec: RowSpec, event: EventData) -> None:
    run = event.model
    assert isinstance(run, Run)
    spec.handler(run)


def accepted(event: EventData) -> bool:
    """The guard of every row: the handler refused nothing."""
    run = event.model
    assert isinstance(run, Run)
    return run.refusal is None


@functools.cache
def build_machine() -> Machine:
    """The machine's definitions, built once from the table and never changed afterwards.
    No model is ever added to it: `decide` fires an event for its own model only."""
    check_table()
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
    for spec in ROW_SPECS:
        row = spec.row
        machine.add_transition(
            trigger=row.trigger,
            source=row.state.value,
            dest=row.dest.value if row.outcome == "transition" else None,
            prepare=[functools.partial(_prepare, spec)],
            conditions=[accepted],
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
    cls = classify_input(view, trigger, policy)
    spec = SPEC_BY_KEY[(view.state, cls.name)]
    run = Run(view, trigger, now, policy, cls)
    build_machine().events[cls.name].trigger(run)
    notes, warnings = tuple(run.notes), tuple(run.warnings)
    if run.refusal is not None:
        told = _refusal_told(trigger, run.refusal, policy)
        return Decision(view, told, None, run.refusal, notes, cls.name, warnings)
    new_view = run.view.replace(state=State(run.state))
    transition = spec.label if spec.row.outcome == "transition" else None
    if transition is not None:
        new_view = _record_control_move(new_view, trigger, now)
    new_view, timers = _timer_effects(view, new_view, policy)
    effects = (*run.effects, *timers)
    return Decision(new_view, effects, transition, None, notes, cls.name, warnings)


def _refusal_told(trigger: Trigger, refusal: Refusal, policy: Policy) -> tuple[Effect, ...]:
    """A refused action changes nothing; the app that asked is told why (`action_refused`)."""
    if not isinstance(trigger, AppAction) or policy.find_app(trigger.app) is None:
        return ()
    event = refusal.to_event(trigger.action.to_json(), trigger.request_id)
    return (Deliver(trigger.app, event),)


def _record_control_move(
    view: ConversationView, trigger: Trigger, now: datetime
) -> ConversationView:
    """Remember when control moved, on the clock of whoever moved it (rules.CLOCK_RULES)."""
    if isinstance(trigger, MetaHandover):
        return view.replace(meta_handover_at=latest_of(view.meta_handover_at, trigger.at))
    return view.replace(control_decided_at=now)
