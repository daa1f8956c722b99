"""Control moves: the shared steps of every handover, whoever asked for it (an app, the
customer, Meta, reconciliation or a timer). Each `_to_*` puts the view in its new state
(pending_human, human with our app, human with a foreign inbox, back to bot, or between our
bots), emits the thread-control call when we make it, and tells the apps concerned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from state_machines._run import _Run
from state_machines.classify import _owner_of
from state_machines.control import _control_deadline, _controller
from state_machines.effects import Deliver, ThreadControl
from state_machines.model import FOREIGN_PREFIX, AppSpec
from state_machines.sending import _automated_send, _disclose_now, _notice, _touch_human
from state_machines.triggers import MetaHandover


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


def _accept(run: _Run, app: AppSpec) -> None:
    run.update(
        owner_app=app.name,
        human_app=app.name,
        pending_since=None,
        control_expires_at=_control_deadline(run.view, run.now),
    )
    _touch_human(run)
