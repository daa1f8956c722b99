"""Handlers for app actions about thread control: escalate, accept, pass, take, release,
request and extend, bot failures, and invalid actions.
"""

from __future__ import annotations

from datetime import timedelta

from state_machines.actions import ExtendThread
from state_machines.control import controller, latest_of, require_control, who_holds
from state_machines.effects import Deliver, ThreadControl
from state_machines.moves import accept, bot_to_bot, to_bot, to_foreign, to_human, to_pending
from state_machines.rules import (
    META_BOT_FAILURE,
    RULE_ACCEPT,
    RULE_CONTROL,
    RULE_ESCALATION,
    RULE_EXTEND,
    RULE_RELEASE,
    RULE_REQUEST,
    RULE_TAKE,
    RULE_VALID,
    B,
    P,
)
from state_machines.run import Run, action_of
from state_machines.sending import touch_human


def escalate(run: Run) -> None:
    if not require_control(run, "escalate", RULE_CONTROL):
        return
    if run.cls.target is None or run.cls.target.app is None:
        run.refuse("not_allowed", "no human app is configured to escalate to", RULE_ESCALATION)
        return
    target, meta = run.cls.target.app, run.cls.metadata
    control = ThreadControl(run.actor.name, "pass", target.app_id, meta)
    to_pending(run, target, control=control, metadata=meta, reason="bot", actor=run.actor)


def escalate_refused(run: Run) -> None:
    holder = who_holds(run.view, run.policy)
    run.refuse("not_owner", f"{run.actor.name} may not escalate while {holder}", RULE_CONTROL)


def accept_nothing_pending(run: Run) -> None:
    holder = who_holds(run.view, run.policy)
    run.refuse(
        "not_allowed", f"nothing is pending ({holder}); the bot escalates first", RULE_ACCEPT
    )


def accept_pending(run: Run) -> None:
    if require_control(run, "accept", RULE_ACCEPT):
        accept(run, run.actor)
        run.note(f"{run.actor.name} accepted the conversation")


def accept_again(run: Run) -> None:
    if require_control(run, "accept", RULE_ACCEPT):
        run.note(f"{run.actor.name} already holds the conversation")


def pass_between_bots(run: Run) -> None:
    if require_control(run, "pass the thread", RULE_CONTROL):
        target, meta = run.target.app, run.cls.metadata
        assert target is not None
        control = ThreadControl(run.actor.name, "pass", target.app_id, meta)
        bot_to_bot(run, target, control=control, metadata=meta, reason="pass", actor=run.actor)


def pass_back(run: Run) -> None:
    if require_control(run, "pass the thread", RULE_CONTROL):
        target, meta = run.target.app, run.cls.metadata
        assert target is not None
        control = ThreadControl(run.actor.name, "pass", target.app_id, meta)
        to_bot(
            run,
            target,
            control=control,
            metadata=meta,
            reason="passed_back",
            actor=run.actor,
            disclose_now=True,
        )


def pass_to_human(run: Run) -> None:
    if require_control(run, "pass the thread", RULE_CONTROL):
        target, meta = run.target.app, run.cls.metadata
        assert target is not None
        reason = "pass" if run.view.state is B else "transfer"
        control = ThreadControl(run.actor.name, "pass", target.app_id, meta)
        to_pending(run, target, control=control, metadata=meta, reason=reason, actor=run.actor)


def pass_to_inbox(run: Run) -> None:
    if require_control(run, "pass the thread", RULE_CONTROL):
        foreign_id, meta = run.target.foreign_id, run.cls.metadata
        assert foreign_id is not None
        control = ThreadControl(run.actor.name, "pass", foreign_id, meta)
        to_foreign(run, foreign_id, control=control, metadata=meta, reason="pass", actor=run.actor)


def _may_take(run: Run) -> bool:
    if run.actor.may_take:
        return True
    run.refuse("not_allowed", f"{run.actor.name} is not allowed to take control", RULE_TAKE)
    return False


def take_between_bots(run: Run) -> None:
    if not _may_take(run):
        return
    if run.view.owner_app == run.actor.name:
        run.refuse("invalid", f"{run.actor.name} already owns the thread", RULE_VALID)
        return
    meta = run.cls.metadata
    control = ThreadControl(run.actor.name, "take", None, meta)
    bot_to_bot(run, run.actor, control=control, metadata=meta, reason="taken", actor=run.actor)


def take_back(run: Run) -> None:
    if _may_take(run):
        meta = run.cls.metadata
        control = ThreadControl(run.actor.name, "take", None, meta)
        to_bot(
            run,
            run.actor,
            control=control,
            metadata=meta,
            reason="taken",
            actor=run.actor,
            disclose_now=True,
        )


def take_by_human(run: Run) -> None:
    if not _may_take(run):
        return
    if run.view.human_app == run.actor.name:
        hint = "; accept it instead" if run.view.state is P else ""
        run.refuse("invalid", f"{run.actor.name} already holds the thread{hint}", RULE_VALID)
        return
    meta = run.cls.metadata
    control = ThreadControl(run.actor.name, "take", None, meta)
    to_human(run, run.actor, control=control, metadata=meta, reason="taken", actor=run.actor)


def release_by_bot(run: Run) -> None:
    if not require_control(run, "release the thread", RULE_CONTROL):
        return
    if run.view.owner_app is None:
        run.refuse("not_allowed", "the thread is idle: there is nothing to release", RULE_RELEASE)
        return
    meta = run.cls.metadata
    control = ThreadControl(run.actor.name, "release", None, meta)
    bot_to_bot(run, None, control=control, metadata=meta, reason="released", actor=run.actor)


def release_by_human(run: Run) -> None:
    if require_control(run, "release the thread", RULE_CONTROL):
        meta = run.cls.metadata
        control = ThreadControl(run.actor.name, "release", None, meta)
        to_bot(
            run,
            None,
            control=control,
            metadata=meta,
            reason="released",
            actor=run.actor,
            disclose_now=True,
        )


def request(run: Run) -> None:
    owner = controller(run.view, run.policy)
    meta = run.cls.metadata
    if owner is None:
        # A foreign inbox holds it: only Meta can forward the request (docs/platform.md 5).
        run.emit(ThreadControl(run.actor.name, "request", None, meta))
        run.note(f"asked Meta for the thread: {who_holds(run.view, run.policy)}")
        return
    if owner.name == run.actor.name:
        run.refuse("not_allowed", f"{run.actor.name} is already in control", RULE_REQUEST)
        return
    run.emit(
        Deliver(
            owner.name,
            {"type": "thread_control_request", "requested_by": run.actor.name, "metadata": meta},
        )
    )
    run.note(f"{owner.name} is asked to pass the thread to {run.actor.name}")


def extend_refused(run: Run) -> None:
    run.refuse(
        "not_allowed",
        f"{run.actor.name} may not extend control: {who_holds(run.view, run.policy)}",
        RULE_EXTEND,
    )


def extend(run: Run) -> None:
    if not require_control(run, "extend control", RULE_CONTROL):
        return
    action = action_of(run)
    assert isinstance(action, ExtendThread)
    until = run.now + timedelta(seconds=action.duration_s)
    run.emit(ThreadControl(run.actor.name, "extend", None, None, action.duration_s))
    run.update(control_expires_at=latest_of(run.view.control_expires_at, until))
    # An extension is the human app asking to hold the thread: the idle timer waits as long.
    touch_human(run, until=until)


def bot_failure(run: Run) -> None:
    if require_control(run, "report a bot failure", RULE_CONTROL):
        count = run.view.bot_failures + 1
        run.update(
            bot_failures=count,
            last_bot_failure_at=run.now,
            failure_at_message=run.view.customer_messages,
        )
        run.note(f"bot failure {count} of {run.policy.bot_failure_threshold}")


def bot_failure_escalates(run: Run) -> None:
    if not require_control(run, "report a bot failure", RULE_CONTROL):
        return
    target = run.target.app
    assert target is not None
    control = ThreadControl(run.actor.name, "pass", target.app_id, META_BOT_FAILURE)
    to_pending(
        run,
        target,
        control=control,
        metadata=META_BOT_FAILURE,
        reason="bot_failure",
        actor=run.actor,
    )


def bot_not_in_control(run: Run) -> None:
    run.note(f"ignored: the bot is not in control ({who_holds(run.view, run.policy)})")


def invalid(run: Run) -> None:
    assert run.cls.refusal is not None
    run.refusal = run.cls.refusal
