"""What goes out while control stays put: routing a customer event to the app in control
(standby copies to the others), the bookkeeping a customer contact causes (window anchor,
bot-failure streak), the human idle timer, the disclosure, and automated and human sends
checked against the messaging window.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from state_machines.actions import Reply
from state_machines.control import controller, latest_of, who_holds
from state_machines.disclosure import disclosure_needed, disclosure_text
from state_machines.effects import Deliver, Refusal, SendMessage
from state_machines.model import AppSpec
from state_machines.rules import CONTROL_IDLE, B
from state_machines.run import Run, action_of
from state_machines.window import check_send


def route(run: Run, event: Mapping[str, Any], *, skip: tuple[str, ...] = ()) -> None:
    """The app in control gets the event; every other app with standby=True a standby copy
    (standby never triggers automation)."""
    ctrl = controller(run.view, run.policy)
    if ctrl is not None and ctrl.name not in skip:
        run.emit(Deliver(ctrl.name, event, standby=False))
    copies = [
        a.name
        for a in run.policy.apps
        if a.standby and a.name not in skip and (ctrl is None or a.name != ctrl.name)
    ]
    for name in copies:
        run.emit(Deliver(name, event, standby=True))
    holder = ctrl.name if ctrl else f"nobody of ours ({who_holds(run.view, run.policy)})"
    run.note(f"routed to {holder}" + (f"; standby copies: {', '.join(copies)}" if copies else ""))


def contact(run: Run, at: datetime, *, opens_window: bool, ends_streak: bool) -> None:
    v = run.view
    changes: dict[str, Any] = {}
    if ends_streak:
        if v.state is B and v.bot_failures and v.failure_at_message != v.customer_messages:
            # The previous message drew no BotFailure, so the failures were not consecutive.
            changes.update(bot_failures=0, last_bot_failure_at=None)
            run.note("bot-failure streak ended: the previous message was understood")
        changes["customer_messages"] = v.customer_messages + 1
    if opens_window:
        # Order rule: the window anchor only moves forward (Meta may deliver out of order).
        anchor = latest_of(v.last_customer_message_at, at)
        changes["last_customer_message_at"] = anchor
        if v.state is not B and anchor is not None:
            changes["control_expires_at"] = latest_of(v.control_expires_at, anchor + CONTROL_IDLE)
    run.update(**changes)


def touch_human(run: Run, until: datetime | None = None) -> None:
    due = latest_of(run.view.human_idle_due_at, run.now + run.policy.human_idle_timeout, until)
    run.update(human_idle_due_at=due)


def send_disclosure(run: Run, bot: AppSpec) -> None:
    verdict = check_send(run.view, run.now, author_kind="bot", policy=run.policy)
    if not verdict.allowed:
        run.note("disclosure stays due (window closed); it will precede the next automated message")
        return
    text = disclosure_text(run.view, run.policy)
    run.emit(SendMessage(bot.name, {"text": text}, "RESPONSE", None, "disclosure", automated=True))
    run.update(disclosed_at=run.now, disclosure_due=False)


def automated_send(
    run: Run,
    app: AppSpec,
    message: Mapping[str, Any],
    purpose: Literal["reply", "notice"],
    reply_to_mid: str | None = None,
) -> Refusal | None:
    """An automated message: window first, then the disclosure if needed, then the message."""
    verdict = check_send(run.view, run.now, author_kind="bot", policy=run.policy)
    if not verdict.allowed:
        return verdict.refusal
    if disclosure_needed(run.view, run.now, run.policy):
        send_disclosure(run, app)
    run.emit(
        SendMessage(app.name, message, "RESPONSE", None, purpose, reply_to_mid, automated=True)
    )
    run.update(last_automated_at=run.now)
    return None


def send_reply(run: Run, app: AppSpec) -> None:
    action = action_of(run)
    assert isinstance(action, Reply)
    if app.is_bot:
        refusal = automated_send(run, app, action.message, "reply", action.reply_to_mid)
        if refusal is not None:
            run.refusal = refusal
        return
    verdict = check_send(run.view, run.now, author_kind="human", policy=run.policy)
    if not verdict.allowed or verdict.messaging_type is None:
        run.refusal = verdict.refusal
        return
    run.emit(
        SendMessage(
            app.name,
            action.message,
            verdict.messaging_type,
            verdict.tag,
            "reply",
            action.reply_to_mid,
        )
    )
    touch_human(run)


def send_no_agent_notice(run: Run, bot: AppSpec) -> None:
    text = run.policy.localized(run.policy.no_agent_text, run.view.locale)
    if not text:
        run.note("no 'no agent available' text configured: no notice sent")
        return
    refusal = automated_send(run, bot, {"text": text}, "notice")
    if refusal is not None:
        run.note(f"no-agent notice not sent: {refusal.message}")
