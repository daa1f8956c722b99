"""Handlers for app actions that speak to the customer: replies, reactions, mark-seen and
private replies to comments (a reply or private reply from the targeted human app also
accepts a pending conversation).
"""

from __future__ import annotations

from state_machines.actions import PrivateReply, React
from state_machines.control import require_control
from state_machines.disclosure import disclosure_needed, disclosure_text
from state_machines.effects import PrivateReplyEffect, SenderAction
from state_machines.moves import accept
from state_machines.rules import (
    PRIVATE_REPLY_WINDOW,
    RULE_DISCLOSURE,
    RULE_PRIVATE_ONCE,
    RULE_PRIVATE_WINDOW,
    RULE_SPEAK,
)
from state_machines.run import Run, action_of
from state_machines.sending import send_reply, touch_human
from state_machines.window import check_send


def reply_by_bot(run: Run) -> None:
    if require_control(run, "speak", RULE_SPEAK):
        send_reply(run, run.actor)


def reply_accepts(run: Run) -> None:
    if require_control(run, "speak", RULE_SPEAK):
        accept(run, run.actor)
        run.note("a reply from the targeted human app accepts the conversation")
        send_reply(run, run.actor)


def reply_by_human(run: Run) -> None:
    if require_control(run, "speak", RULE_SPEAK):
        send_reply(run, run.actor)


def react(run: Run) -> None:
    if not require_control(run, "react", RULE_SPEAK):
        return
    verdict = check_send(run.view, run.now, author_kind=run.actor.kind, policy=run.policy)
    if not verdict.allowed:
        run.refusal = verdict.refusal
        return
    action = action_of(run)
    if isinstance(action, React):
        run.emit(SenderAction(run.actor.name, "react", action.mid, action.reaction))
    else:
        run.emit(SenderAction(run.actor.name, "unreact", action.mid, None))
    # Reactions are never disclosed and do not count as automation speaking.
    if not run.actor.is_bot:
        touch_human(run)


def mark_seen(run: Run) -> None:
    if not require_control(run, "mark messages seen", RULE_SPEAK):
        return
    verdict = check_send(run.view, run.now, author_kind=run.actor.kind, policy=run.policy)
    if not verdict.allowed:
        run.refusal = verdict.refusal
        return
    run.emit(SenderAction(run.actor.name, "mark_seen", None, None))
    if not run.actor.is_bot:
        touch_human(run)


def _private_reply(run: Run) -> None:
    action = action_of(run)
    assert isinstance(action, PrivateReply)
    if action.already_replied:
        run.refuse(
            "private_reply_used",
            f"comment {action.comment_id} was already answered privately",
            RULE_PRIVATE_ONCE,
        )
        return
    if action.comment_at is None:
        run.note("comment time unknown: Meta enforces the 7-day limit")
    elif run.now - action.comment_at > PRIVATE_REPLY_WINDOW:
        run.refuse(
            "private_reply_expired",
            f"comment {action.comment_id} is older than 7 days",
            RULE_PRIVATE_WINDOW,
        )
        return
    message = dict(action.message)
    discloses = False
    if run.actor.is_bot:
        if disclosure_needed(run.view, run.now, run.policy):
            # One private reply per comment: the disclosure cannot be a message of its own.
            text = message.get("text")
            if not isinstance(text, str):
                run.refuse(
                    "invalid",
                    "a bot's private reply must be text so the disclosure can lead it",
                    RULE_DISCLOSURE,
                )
                return
            message["text"] = f"{disclosure_text(run.view, run.policy)}\n\n{text}"
            run.update(disclosed_at=run.now, disclosure_due=False)
            run.note("disclosure leads the private reply")
            discloses = True
        run.update(last_automated_at=run.now)
    else:
        touch_human(run)
    run.emit(
        PrivateReplyEffect(
            run.actor.name, action.comment_id, message, automated=run.actor.is_bot,
            discloses=discloses,
        )
    )  # fmt: skip


def private_reply(run: Run) -> None:
    if require_control(run, "send a private reply", RULE_SPEAK):
        _private_reply(run)


def private_reply_accepts(run: Run) -> None:
    if require_control(run, "send a private reply", RULE_SPEAK):
        accept(run, run.actor)
        run.note("a private reply from the targeted human app accepts the conversation")
        _private_reply(run)
