"""Who controls the thread now and until when: the app of ours that may act for it, a
sentence naming the holder for refusals, the in-control guard every `action:*` row applies,
and Meta's control deadline (24 h of inactivity: after the customer's last message or the last
control action, or an extension).
"""

from __future__ import annotations

from datetime import datetime

from state_machines.model import AppSpec, ConversationView, Policy
from state_machines.rules import CONTROL_IDLE, B, P
from state_machines.run import Run


def controller(view: ConversationView, policy: Policy) -> AppSpec | None:
    """Our app that may act for the thread now; None when a foreign inbox holds it."""
    if view.state is B:
        owner = policy.find_app(view.owner_app)
        return owner if owner is not None and owner.is_bot else policy.primary
    return policy.find_app(view.human_app)


def who_holds(view: ConversationView, policy: Policy) -> str:
    if view.state is B:
        ctrl = controller(view, policy)
        return f"{ctrl.name if ctrl else 'the primary app'} is in control"
    if view.state is P:
        return f"a handover to {view.human_app} is pending"
    return f"{policy.owner_label(view.owner_app)} owns the thread"


def require_control(run: Run, verb: str, rule: str) -> bool:
    ctrl = controller(run.view, run.policy)
    if ctrl is not None and ctrl.name == run.actor.name:
        return True
    run.refuse(
        "not_owner",
        f"{run.actor.name} may not {verb} while {who_holds(run.view, run.policy)}",
        rule,
    )
    return False


def latest_of(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def control_deadline(
    view: ConversationView, now: datetime, acted_at: datetime | None = None
) -> datetime | None:
    """When Meta idles the thread: 24 h of inactivity (docs/platform.md 1.3). The customer's last
    message and a control action (pass, take, extend; `acted_at`) are activity, so a human
    app taking a conversation 25 h after the customer wrote holds it for a day."""
    last = view.last_customer_message_at or now
    acted = acted_at + CONTROL_IDLE if acted_at is not None else None
    return latest_of(view.control_expires_at, last + CONTROL_IDLE, acted)
