"""Handlers for Meta's handover webhooks and thread_owner reconciliation: our state follows
Meta's real owner. Also forwarded requests for the thread and app-role changes.
"""

from __future__ import annotations

from state_machines._run import _Run
from state_machines.control import _controller, _holder
from state_machines.effects import Deliver
from state_machines.moves import (
    _bot_to_bot,
    _meta_reason,
    _to_bot,
    _to_foreign,
    _to_human,
    _to_pending,
)
from state_machines.triggers import AppRolesChanged


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


def _h_owner_confirmed(run: _Run) -> None:
    run.note(f"Meta confirms: {_holder(run.view, run.policy)}")


def _h_app_roles(run: _Run) -> None:
    trig = run.input
    assert isinstance(trig, AppRolesChanged)
    roles = ", ".join(f"{k}: {'/'.join(v)}" for k, v in trig.roles.items()) or "none"
    run.note(f"app roles changed ({roles}); routing is unaffected until Meta moves the thread")
