"""Control moves: the shared steps of every handover, whoever asked for it (an app, the
customer, Meta, reconciliation or a timer). Each `_to_*` puts the view in its new state
(pending_human, human with our app, human with a foreign inbox, back to bot, or between our
bots), emits the thread-control call when we make it, and tells the apps concerned.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from state_machines.classify import owner_of
from state_machines.control import control_deadline, controller
from state_machines.effects import Deliver, ThreadControl
from state_machines.model import FOREIGN_PREFIX, AppSpec
from state_machines.run import Run
from state_machines.sending import (
    automated_send,
    send_disclosure,
    send_no_agent_notice,
    touch_human,
)
from state_machines.triggers import MetaHandover, OwnerReconciled


def inform(run: Run, app: AppSpec | None, event: dict[str, Any], actor: AppSpec | None) -> None:
    """Tell an app of ours what happened, unless it caused it itself."""
    caused = actor is not None and app is not None and app.name == actor.name
    if app is not None and (not caused or run.cls.granted):
        run.emit(Deliver(app.name, event))


def previous_label(run: Run) -> str:
    trig = run.input
    if isinstance(trig, MetaHandover) and trig.previous_owner_app_id:
        prev = owner_of(trig.previous_owner_app_id, run.policy)
        return run.policy.owner_label(prev.key)
    ctrl = controller(run.view, run.policy)
    return ctrl.name if ctrl else run.policy.owner_label(run.view.owner_app)


def cleared_stretch(metadata: str | None) -> dict[str, Any]:
    return {
        "pending_since": None,
        "human_idle_due_at": None,
        "bot_failures": 0,
        "last_bot_failure_at": None,
        "handover_metadata": metadata,
    }


def to_pending(
    run: Run,
    target: AppSpec,
    *,
    control: ThreadControl | None,
    metadata: str | None,
    reason: str,
    actor: AppSpec | None,
    event: Mapping[str, Any] | None = None,
) -> None:
    """→ pending_human with `target`: it is asked to accept; the pending timer starts."""
    prev = controller(run.view, run.policy)
    from_label = actor.name if actor else previous_label(run)
    if control is not None:
        if prev is not None and prev.is_bot and control.action == "pass":
            text = run.policy.localized(run.policy.escalation_text, run.view.locale)
            refusal = automated_send(run, prev, {"text": text}, "notice") if text else None
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
        inform(run, prev, lost, actor)
    run.update(
        owner_app=target.name,
        human_app=target.name,
        **{**cleared_stretch(metadata), "pending_since": run.now},
        control_expires_at=moved_control_deadline(run),
    )
    run.note(f"{target.name} is asked to take over ({reason})")


def to_human(
    run: Run,
    app: AppSpec,
    *,
    control: ThreadControl | None,
    metadata: str | None,
    reason: str,
    actor: AppSpec | None,
) -> None:
    """→ human with our `app` holding the thread (a deliberate take)."""
    prev = controller(run.view, run.policy)
    if control is not None:
        run.emit(control)
    if prev is not None and prev.name != app.name:
        lost = {"type": "control_lost", "reason": reason, "to_app": app.name, "metadata": metadata}
        inform(run, prev, lost, actor)
    run.update(
        owner_app=app.name,
        human_app=app.name,
        **cleared_stretch(metadata),
        control_expires_at=moved_control_deadline(run),
    )
    touch_human(run)
    run.note(f"{app.name} holds the thread ({reason})")


def to_foreign(
    run: Run,
    foreign_id: str,
    *,
    control: ThreadControl | None,
    metadata: str | None,
    reason: str,
    actor: AppSpec | None,
) -> None:
    """→ human with a foreign inbox holding the thread: our apps get standby copies only."""
    prev = controller(run.view, run.policy)
    owner = FOREIGN_PREFIX + foreign_id
    label = run.policy.owner_label(owner)
    if control is not None:
        run.emit(control)
    lost = {"type": "control_lost", "reason": reason, "to_app": label, "metadata": metadata}
    inform(run, prev, lost, actor)
    run.update(
        owner_app=owner,
        human_app=None,
        **cleared_stretch(metadata),
        control_expires_at=moved_control_deadline(run),
    )
    run.note(f"{label} owns the thread: our apps get standby copies only, automation is silent")


def to_bot(
    run: Run,
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
    prev = controller(run.view, run.policy)
    from_label = run.view.human_app or run.policy.owner_label(run.view.owner_app)
    if control is not None:
        run.emit(control)
    run.update(
        owner_app=new_owner.name if new_owner else None,
        human_app=None,
        control_expires_at=None,
        disclosure_due=True,
        **cleared_stretch(metadata),
    )
    bot = new_owner or run.policy.primary
    if bot.is_bot:
        if disclose_now:
            send_disclosure(run, bot)
        if notice:
            send_no_agent_notice(run, bot)
    ended = {
        "type": "handover_ended",
        "from_app": from_label,
        "metadata": metadata,
        "reason": reason,
    }
    inform(run, bot, ended, actor)
    if prev is not None and prev.name != bot.name:
        lost = {"type": "control_lost", "reason": reason, "to_app": bot.name, "metadata": metadata}
        inform(run, prev, lost, actor)
    run.note(f"back to {bot.name} ({reason})")


def bot_to_bot(
    run: Run,
    new_owner: AppSpec | None,
    *,
    control: ThreadControl | None,
    metadata: str | None,
    reason: str,
    actor: AppSpec | None,
) -> None:
    """Control moves between our bot apps (None = idle: the primary speaks)."""
    prev = controller(run.view, run.policy)
    from_label = actor.name if actor else previous_label(run)
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
        inform(run, now_ctrl, received, actor)
        lost = {
            "type": "control_lost",
            "reason": reason,
            "to_app": now_ctrl.name,
            "metadata": metadata,
        }
        inform(run, prev, lost, actor)
    run.note(f"{run.policy.owner_label(run.view.owner_app)} owns the thread ({reason})")


def moved_control_deadline(run: Run) -> datetime | None:
    """Meta's control deadline after control moved to a human-side holder. The move is a
    control action, so it counts as activity: Meta's time for a handover webhook, ours for a
    call we make; a reconciliation takes Meta's expiration when Meta gave one."""
    trig = run.input
    if isinstance(trig, OwnerReconciled) and trig.expires_at is not None:
        return trig.expires_at
    acted = trig.at if isinstance(trig, MetaHandover | OwnerReconciled) else run.now
    return control_deadline(run.view, run.now, acted)


def meta_reason(run: Run) -> str:
    trig = run.input
    return f"meta_{trig.kind}" if isinstance(trig, MetaHandover) else "reconciled"


def accept(run: Run, app: AppSpec) -> None:
    run.update(
        owner_app=app.name,
        human_app=app.name,
        pending_since=None,
        control_expires_at=control_deadline(run.view, run.now),
    )
    touch_human(run)
