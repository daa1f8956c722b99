"""Handlers for Meta's handover webhooks and thread_owner reconciliation: our state follows
Meta's real owner. Also forwarded requests for the thread and app-role changes.
"""

from __future__ import annotations

from state_machines.control import controller, latest_of, who_holds
from state_machines.effects import CheckOwner, Deliver
from state_machines.moves import (
    bot_to_bot,
    meta_reason,
    to_bot,
    to_foreign,
    to_human,
    to_pending,
)
from state_machines.roles import check_app_roles
from state_machines.run import Run
from state_machines.triggers import AppRolesChanged, MetaHandover


def to_other_bot(run: Run) -> None:
    bot_to_bot(
        run,
        run.target.app,
        control=None,
        metadata=run.cls.metadata,
        reason=meta_reason(run),
        actor=None,
    )


def back_to_bot(run: Run) -> None:
    to_bot(
        run,
        run.target.app,
        control=None,
        metadata=run.cls.metadata,
        reason=meta_reason(run),
        actor=None,
        disclose_now=True,
    )


def to_pending_human(run: Run) -> None:
    target = run.target.app
    assert target is not None
    to_pending(
        run, target, control=None, metadata=run.cls.metadata, reason=meta_reason(run), actor=None
    )


def human_take(run: Run) -> None:
    app = run.target.app
    assert app is not None
    to_human(run, app, control=None, metadata=run.cls.metadata, reason=meta_reason(run), actor=None)


def to_foreign_owner(run: Run) -> None:
    foreign_id = run.target.foreign_id
    assert foreign_id is not None
    to_foreign(
        run,
        foreign_id,
        control=None,
        metadata=run.cls.metadata,
        reason=meta_reason(run),
        actor=None,
    )


def request(run: Run) -> None:
    owner = controller(run.view, run.policy)
    requester = run.target
    label = run.policy.owner_label(requester.key)
    if owner is None:
        run.note(f"request by {label}: {who_holds(run.view, run.policy)}, not ours to answer")
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


def owner_confirmed(run: Run) -> None:
    run.note(f"Meta confirms: {who_holds(run.view, run.policy)}")
    trig = run.input
    if isinstance(trig, MetaHandover):
        # A confirmation is Meta's newest word too: older handovers must not undo it.
        run.update(meta_handover_at=latest_of(run.view.meta_handover_at, trig.at))


def app_roles(run: Run) -> None:
    trig = run.input
    assert isinstance(trig, AppRolesChanged)
    roles = ", ".join(f"{k}: {'/'.join(v)}" for k, v in trig.roles.items()) or "none"
    run.note(f"app roles changed ({roles}); routing is unaffected until Meta moves the thread")
    for warning in check_app_roles(trig.roles, run.policy):
        run.warn(warning)


def superseded(run: Run) -> None:
    """The classification noted why: an older handover than the newest applied."""


def unordered(run: Run) -> None:
    """A handover webhook we cannot order against our own later decision: ask Meta."""
    # The default app's token: only the owner or the default app is told the owner's id
    # (docs/platform.md 5); the app we believe in control may be neither.
    run.emit(CheckOwner(run.policy.primary.name, "handover_before_our_decision"))
