"""Handlers for our timers: the pending timeout (no agent accepted), the human idle
timeout, Meta's control expiry, and timers that do not apply or are stale.
"""

from __future__ import annotations

from state_machines.effects import ThreadControl
from state_machines.moves import to_bot
from state_machines.run import Run
from state_machines.triggers import TimerFired


def pending_timeout(run: Run) -> None:
    human, primary = run.policy.find_app(run.view.human_app), run.policy.primary
    meta = "pending_timeout"
    control = (
        ThreadControl(human.name, "pass", primary.app_id, meta)
        if human is not None
        else ThreadControl(primary.name, "take", None, meta)
    )
    to_bot(
        run,
        primary,
        control=control,
        metadata=meta,
        reason=meta,
        actor=None,
        disclose_now=True,
        notice=True,
    )


def human_idle(run: Run) -> None:
    human = run.policy.find_app(run.view.human_app)
    # The app may have left the config since: then the primary takes the thread back.
    control = (
        ThreadControl(human.name, "release", None, "human_idle")
        if human is not None
        else ThreadControl(run.policy.primary.name, "take", None, "human_idle")
    )
    to_bot(
        run,
        None,
        control=control,
        metadata="human_idle",
        reason="human_idle",
        actor=None,
        disclose_now=True,
    )


def control_expiry(run: Run) -> None:
    # Meta already idled the thread: no thread-control call. Nobody is waiting (24 h without
    # a customer message), so the disclosure waits for the next automated message.
    to_bot(
        run,
        None,
        control=None,
        metadata="control_expiry",
        reason="control_expiry",
        actor=None,
        disclose_now=False,
    )


def not_applicable(run: Run) -> None:
    trig = run.input
    assert isinstance(trig, TimerFired)
    run.note(f"{trig.kind} timer does not apply in state {run.view.state}: ignored")


def stale(run: Run) -> None:
    """The classification already explained why nothing happens."""
