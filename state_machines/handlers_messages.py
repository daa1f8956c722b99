"""Handlers for app actions that speak to the customer: replies, reactions, mark-seen and
private replies to comments (a reply or private reply from the targeted human app also
accepts a pending conversation).
"""

from __future__ import annotations

from state_machines._run import _action, _Run
from state_machines.actions import PrivateReply, React
from state_machines.control import _require_control
from state_machines.disclosure import disclosure_needed, disclosure_text
from state_machines.effects import PrivateReplyEffect, SenderAction
from state_machines.moves import _accept
from state_machines.rules import (
    PRIVATE_REPLY_WINDOW,
    RULE_DISCLOSURE,
    RULE_PRIVATE_ONCE,
    RULE_PRIVATE_WINDOW,
    RULE_SPEAK,
)
from state_machines.sending import _send_reply, _touch_human
from state_machines.window import check_send


def _h_reply_bot(run: _Run) -> None:
    if _require_control(run, "speak", RULE_SPEAK):
        _send_reply(run, run.actor)


def _h_reply_pending(run: _Run) -> None:
    if _require_control(run, "speak", RULE_SPEAK):
        _accept(run, run.actor)
        run.note("a reply from the targeted human app accepts the conversation")
        _send_reply(run, run.actor)


def _h_reply_human(run: _Run) -> None:
    if _require_control(run, "speak", RULE_SPEAK):
        _send_reply(run, run.actor)


def _h_react(run: _Run) -> None:
    if not _require_control(run, "react", RULE_SPEAK):
        return
    verdict = check_send(run.view, run.now, author_kind=run.actor.kind, policy=run.policy)
    if not verdict.allowed:
        run.refusal = verdict.refusal
        return
    action = _action(run)
    if isinstance(action, React):
        run.emit(SenderAction(run.actor.name, "react", action.mid, action.reaction))
    else:
        run.emit(SenderAction(run.actor.name, "unreact", action.mid, None))
    # Reactions are never disclosed and do not count as automation speaking.
    if not run.actor.is_bot:
        _touch_human(run)


def _h_mark_seen(run: _Run) -> None:
    if not _require_control(run, "mark messages seen", RULE_SPEAK):
        return
    verdict = check_send(run.view, run.now, author_kind=run.actor.kind, policy=run.policy)
    if not verdict.allowed:
        run.refusal = verdict.refusal
        return
    run.emit(SenderAction(run.actor.name, "mark_seen", None, None))
    if not run.actor.is_bot:
        _touch_human(run)


def _private_reply(run: _Run) -> None:
    action = _action(run)
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
        run.update(last_automated_at=run.now)
    else:
        _touch_human(run)
    run.emit(PrivateReplyEffect(run.actor.name, action.comment_id, message))


def _h_private_reply(run: _Run) -> None:
    if _require_control(run, "send a private reply", RULE_SPEAK):
        _private_reply(run)


def _h_private_reply_pending(run: _Run) -> None:
    if _require_control(run, "send a private reply", RULE_SPEAK):
        _accept(run, run.actor)
        run.note("a private reply from the targeted human app accepts the conversation")
        _private_reply(run)
