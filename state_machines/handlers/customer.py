"""Handlers for the customer side: messages and activity (routed, or escalated when the
customer asks for a human) and echoes of messages sent in the conversation.
"""

from __future__ import annotations

from state_machines.control import controller
from state_machines.effects import CheckOwner, Deliver, ThreadControl
from state_machines.model import FOREIGN_PREFIX
from state_machines.moves import to_pending
from state_machines.rules import META_CUSTOMER_REQUEST, RULE_OWNER_EVIDENCE, RULE_STANDBY
from state_machines.run import Run
from state_machines.sending import contact, route
from state_machines.triggers import CustomerActivity, CustomerMessage, Echo


def routed(run: Run) -> None:
    trig = run.input
    assert isinstance(trig, CustomerMessage | CustomerActivity)
    opens = trig.opens_window if isinstance(trig, CustomerActivity) else True
    contact(run, trig.at, opens_window=opens, ends_streak=isinstance(trig, CustomerMessage))
    route(run, trig.event)


def escalates(run: Run) -> None:
    trig = run.input
    assert isinstance(trig, CustomerMessage | CustomerActivity)
    opens = trig.opens_window if isinstance(trig, CustomerActivity) else True
    contact(run, trig.at, opens_window=opens, ends_streak=False)
    bot = controller(run.view, run.policy)
    target = run.target.app
    assert bot is not None and target is not None
    control = ThreadControl(bot.name, "pass", target.app_id, META_CUSTOMER_REQUEST)
    # The human app sees the customer's message inside handover_requested; the bot does not
    # get it as a normal message (only as a standby copy if it asked for those).
    to_pending(
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


def _standby_copies_only(run: Run, trig: CustomerMessage | CustomerActivity) -> list[str]:
    """The customer's contact counts (window, lapse), but no app of ours gets the event as
    owner: only the apps listening in standby get their copies. Returns their names."""
    opens = trig.opens_window if isinstance(trig, CustomerActivity) else True
    contact(run, trig.at, opens_window=opens, ends_streak=False)
    copies = [a.name for a in run.policy.apps if a.standby]
    for name in copies:
        run.emit(Deliver(name, trig.event, standby=True))
    return copies


def standby_only(run: Run) -> None:
    """The app we believe in control got the event only as a standby copy (classify's
    `standby_only`): another app owns the thread. Nothing is automated on it (no app of ours
    gets it as owner, no escalation); Meta is asked who owns the thread and the answer
    (OwnerReconciled) moves our state."""
    trig = run.input
    assert isinstance(trig, CustomerMessage | CustomerActivity)
    copies = _standby_copies_only(run, trig)
    believed = controller(run.view, run.policy)
    # Asked with the default app's token: thread_owner names the owner only to the owner or
    # the default app; any other app gets at most an expiration (docs/platform.md 5), which
    # would read as "idle".
    asker = run.policy.primary
    run.emit(CheckOwner(asker.name, "standby_only"))
    run.note(
        f"a standby copy only: another app owns the thread ({RULE_STANDBY}); we believed "
        f"{believed.name if believed else 'nobody of ours'} in control; asking Meta "
        f"(thread_owner) with {asker.name}'s token"
        + (f"; standby copies: {', '.join(copies)}" if copies else "")
    )


def as_owner_while_foreign(run: Run) -> None:
    """An app of ours got the event as owner (`messaging[]`) while we believe an app outside
    our config holds the thread (classify's `owner_evidence`): that app let go without a
    webhook (an Inbox's release sends none). Nothing is automated on our stale belief: the
    event goes where it would under that belief (standby copies). Meta is asked who owns the
    thread when the copy arrives (intake queues the thread_owner check itself, migration
    0009: the copies of one event arrive independently, so the stored one may not be this
    evidence); the answer (OwnerReconciled) moves our state, e.g. back to the bot with a
    fresh disclosure."""
    trig = run.input
    assert isinstance(trig, CustomerMessage | CustomerActivity)
    copies = _standby_copies_only(run, trig)
    run.note(
        f"{trig.received_by} got the event as owner while we believed "
        f"{run.policy.owner_label(run.view.owner_app)} holds the thread ({RULE_OWNER_EVIDENCE}); "
        "Meta is asked (thread_owner, queued by intake as the copy arrived)"
        + (f"; standby copies: {', '.join(copies)}" if copies else "")
    )


def own_echo(run: Run) -> None:
    run.note("echo of our own automated message")


def human_echo_in_bot(run: Run) -> None:
    trig = run.input
    assert isinstance(trig, Echo)
    app = run.policy.app_by_id(trig.app_id)
    if app is not None:
        who = app.name
    elif trig.app_id:
        who = run.policy.owner_label(FOREIGN_PREFIX + str(trig.app_id))
    else:
        who = "someone in the Instagram app"
    if run.view.disclosure_due:
        run.note(f"{who} spoke; the disclosure is already due")
        return
    # Two clocks (rules.CLOCK_RULES): the echo's time is Meta's, so it is compared with Meta's
    # times only. Automated messages we decided before processing it were decided without
    # knowing it, so they do not make it old news.
    handover = run.view.meta_handover_at
    if handover is not None and trig.at < handover:
        run.note(f"{who} spoke before the newest handover webhook applied; nothing new to disclose")
        return
    # A human spoke while automation holds the thread: the next automated message is a
    # human-to-automation move, so it is disclosed (docs/platform.md 9).
    run.update(disclosure_due=True)
    run.note(f"{who} spoke while the bot is in control; waiting for Meta's take webhook")


def human_echo_elsewhere(run: Run) -> None:
    run.note("a human-side message echoed while humans hold the conversation")
