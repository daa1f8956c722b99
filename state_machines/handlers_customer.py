"""Handlers for the customer side: messages and activity (routed, or escalated when the
customer asks for a human) and echoes of messages sent in the conversation.
"""

from __future__ import annotations

from state_machines._run import _Run
from state_machines.control import _controller, _later
from state_machines.effects import Deliver, ThreadControl
from state_machines.model import FOREIGN_PREFIX
from state_machines.moves import _to_pending
from state_machines.rules import META_CUSTOMER_REQUEST
from state_machines.sending import _contact, _route
from state_machines.triggers import CustomerActivity, CustomerMessage, Echo


def _h_customer(run: _Run) -> None:
    trig = run.input
    assert isinstance(trig, CustomerMessage | CustomerActivity)
    opens = trig.opens_window if isinstance(trig, CustomerActivity) else True
    _contact(run, trig.at, opens_window=opens, ends_streak=isinstance(trig, CustomerMessage))
    _route(run, trig.event)


def _h_customer_escalates(run: _Run) -> None:
    trig = run.input
    assert isinstance(trig, CustomerMessage | CustomerActivity)
    opens = trig.opens_window if isinstance(trig, CustomerActivity) else True
    _contact(run, trig.at, opens_window=opens, ends_streak=False)
    bot = _controller(run.view, run.policy)
    target = run.target.app
    assert bot is not None and target is not None
    control = ThreadControl(bot.name, "pass", target.app_id, META_CUSTOMER_REQUEST)
    # The human app sees the customer's message inside handover_requested; the bot does not
    # get it as a normal message (only as a standby copy if it asked for those).
    _to_pending(
        run,
        target,
        control=control,
        metadata=META_CUSTOMER_REQUEST,
        reason="customer_request",
        actor=None,
        event=trig.event,
    )
    for app in run.policy.apps:
        if app.standby and app.name != target.name:
            run.emit(Deliver(app.name, trig.event, standby=True))


def _h_echo(run: _Run) -> None:
    run.note("echo of our own automated message")


def _h_echo_human_in_bot(run: _Run) -> None:
    trig = run.input
    assert isinstance(trig, Echo)
    app = run.policy.app_by_id(trig.app_id)
    if app is not None:
        who = app.name
    elif trig.app_id:
        who = run.policy.owner_label(FOREIGN_PREFIX + str(trig.app_id))
    else:
        who = "someone in the Instagram app"
    latest = _later(run.view.disclosed_at, run.view.last_automated_at)
    if run.view.disclosure_due or (latest is not None and trig.at <= latest):
        run.note(f"{who} spoke earlier; nothing new to disclose")
        return
    # A human spoke while automation holds the thread: the next automated message is a
    # human-to-automation move, so it is disclosed (docs/platform.md 9).
    run.update(disclosure_due=True)
    run.note(f"{who} spoke while the bot is in control; waiting for Meta's take webhook")


def _h_echo_human_elsewhere(run: _Run) -> None:
    run.note("a human-side message echoed while humans hold the conversation")
