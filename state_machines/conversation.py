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

This module is the entry point (the machine, `decide`, `timer_schedule`); the pieces sit
beside it: `table` (TRANSITION_TABLE), `classify` (input → trigger name), `_run` (the model
the machine drives), `control`, `sending` and `moves` (steps the handlers share), the
`handlers_*` modules (one per kind of input) and `rules` (constants and rule texts).
"""

from __future__ import annotations

import functools
from datetime import datetime

from transitions import EventData, Machine

from state_machines._run import _Run
from state_machines.classify import _classify, classify
from state_machines.effects import CancelTimer, Decision, Effect, SetTimer
from state_machines.model import (
    TIMER_KINDS,
    ConversationView,
    Policy,
    State,
    TimerKind,
    require_aware,
)
from state_machines.rules import B, H, P
from state_machines.table import (
    _SPEC_BY_KEY,
    _SPECS,
    ROW_LABELS,
    TRANSITION_TABLE,
    TRIGGER_NAMES,
    TransitionRow,
    _check_table,
    _Spec,
)
from state_machines.triggers import Trigger

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
    # The event is fired on the shared definition without attaching the run as a model:
    # `add_model` builds ~40 bound trigger methods per call, which cost more than the whole
    # rest of a decision. The run only needs its `state` attribute for the machine to read
    # and write.
    run.state = view.state.value
    build_machine().events[cls.name].trigger(run)
    notes = tuple(run.notes)
    if run.refusal is not None:
        return Decision(view, (), None, run.refusal, notes, cls.name)
    new_view = run.view.replace(state=State(run.state))
    new_view, timers = _timer_effects(view, new_view, policy)
    transition = spec.label if spec.row.outcome == "transition" else None
    return Decision(new_view, (*run.effects, *timers), transition, None, notes, cls.name)
