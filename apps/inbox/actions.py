"""What an agent does, as the orchestrator sees it.

Every action that concerns Meta (accept, take, reply, react, private reply, release, transfer
to another app) goes through `orchestrator.api.submit.submit_action` — the same ordered path
as the REST API's — and its outcome (accepted, refused with the core's reason) is what the
page shows. Who answers a conversation is held by the database (`inbox_assignments`, one row
per conversation): two agents accepting at once, one wins and the other is told who has it.
Notes and agent-to-agent transfers are the inbox's own records and never reach Meta.
Each attempt is written to the audit trail with its outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from apps.inbox.auth import Agent
from apps.inbox.queries import q
from orchestrator.api.submit import Outcome, submit_action
from orchestrator.clock import Clock
from orchestrator.engine.wakeup import Waker
from state_machines import ActionError

log = structlog.get_logger(__name__)
MAX_TEXT = 2000
MAX_REASON = 200


@dataclass(frozen=True, slots=True)
class Result:
    """`ok`; `message_key` + `values` for the page (a refusal names the core's reason)."""

    ok: bool
    message_key: str
    values: Mapping[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass(frozen=True, slots=True)
class Services:
    pool: asyncpg.Pool
    waker: Waker
    clock: Clock
    app: str  # the human app the inbox acts as
    human_apps: tuple[str, ...]  # other human apps a conversation may be transferred to


async def _submit(
    s: Services, conv: Mapping[str, Any], agent: Agent, action: dict[str, Any], nonce: str
) -> Outcome:
    return await submit_action(
        s.pool,
        s.waker,
        s.clock,
        app=s.app,
        account_id=conv["account_id"],
        customer_id=conv["customer_id"],
        action=action,
        # The form's one-time nonce: a double submit is the same event, decided once.
        request_id=nonce or uuid.uuid4().hex,
        origin="inbox",
        agent={"id": agent.id, "login": agent.login, "name": agent.display_name},
    )


async def _audit(
    s: Services,
    conv_id: int,
    agent: Agent,
    action: str,
    outcome: str,
    detail: Mapping[str, Any] | None = None,
    event_id: int | None = None,
) -> None:
    await s.pool.execute(
        q("audit_insert"),
        conv_id,
        agent.id,
        action,
        outcome,
        dict(detail or {}),
        event_id,
        s.clock.now(),
    )


def _from_outcome(o: Outcome, done_key: str) -> Result:
    if o.status == "accepted":
        return Result(True, done_key)
    if o.status == "queued":
        return Result(True, "queued", status=202)
    if o.status == "failed":
        return Result(False, "failed", status=500)
    refusal = o.refusal or {}
    code = str(refusal.get("code", ""))
    message = str(refusal.get("message", code))
    if code == "not_owner":
        return Result(False, "refused_not_owner", {"message": message}, 409)
    if code in ("window_closed", "human_agent_window_closed"):
        return Result(False, "refused_window", {"message": message}, 422)
    return Result(False, "refused", {"message": f"{message} ({code})"}, 409)


async def _submit_and_audit(
    s: Services,
    conv: Mapping[str, Any],
    agent: Agent,
    name: str,
    action: dict[str, Any],
    nonce: str,
    detail: Mapping[str, Any] | None = None,
) -> tuple[Outcome | None, Result]:
    try:
        outcome = await _submit(s, conv, agent, action, nonce)
    except ActionError as exc:
        return None, Result(False, "invalid", {"message": str(exc)}, 400)
    info = dict(detail or {})
    if outcome.refusal:
        info["refusal"] = outcome.refusal.get("code")
    await _audit(s, conv["id"], agent, name, outcome.status, info, outcome.event_id)
    log.info("inbox_action", conversation_id=conv["id"], action=name, outcome=outcome.status)
    return outcome, _from_outcome(outcome, f"done_{name}")


def holds(conv: Mapping[str, Any], agent: Agent) -> bool:
    return conv["agent_id"] == agent.id


async def _claim(s: Services, conv: Mapping[str, Any], agent: Agent) -> Result | None:
    """Take the assignment row; None when it is now mine, else the refusal."""
    got = await s.pool.fetchval(q("assignment_take"), conv["id"], s.app, agent.id)
    if got is not None:
        return None
    holder = await s.pool.fetchrow(q("assignment_holder"), conv["id"])
    if holder is None or holder["agent_id"] == agent.id:
        return None if holder is not None else Result(False, "failed", status=409)
    await _audit(s, conv["id"], agent, "accept", "taken", {"holder": holder["display_name"]})
    return Result(False, "taken_by", {"name": holder["display_name"]}, 409)


async def accept(s: Services, conv: Mapping[str, Any], agent: Agent, nonce: str) -> Result:
    """Accept a pending conversation (or claim one the inbox app already holds)."""
    refused = await _claim(s, conv, agent)
    if refused is not None:
        return refused
    outcome, result = await _submit_and_audit(s, conv, agent, "accept", {"type": "accept"}, nonce)
    if outcome is None or outcome.status in ("refused", "failed"):
        await s.pool.execute(q("assignment_drop"), conv["id"], agent.id)
    return result


async def take(s: Services, conv: Mapping[str, Any], agent: Agent, nonce: str) -> Result:
    """Take the conversation from the bot (or from an inbox outside ours)."""
    refused = await _claim(s, conv, agent)
    if refused is not None:
        return refused
    outcome, result = await _submit_and_audit(
        s, conv, agent, "take", {"type": "take", "metadata": f"taken by {agent.login}"}, nonce
    )
    if outcome is None or outcome.status in ("refused", "failed"):
        await s.pool.execute(q("assignment_drop"), conv["id"], agent.id)
    return result


def _require_holder(conv: Mapping[str, Any], agent: Agent) -> Result | None:
    if holds(conv, agent):
        return None
    if conv["agent_id"] is not None:
        return Result(False, "taken_by", {"name": conv["agent_name"]}, 409)
    return Result(False, "not_yours", status=409)


async def reply(
    s: Services,
    conv: Mapping[str, Any],
    agent: Agent,
    text: str,
    nonce: str,
    quick_replies: Sequence[str] = (),
) -> Result:
    text = text.strip()
    if not text:
        return Result(False, "empty_text", status=400)
    if len(text) > MAX_TEXT:
        return Result(False, "invalid", {"message": f"at most {MAX_TEXT} characters"}, 400)
    refused = _require_holder(conv, agent)
    if refused is not None:
        return refused
    message: dict[str, Any] = {"text": text}
    if quick_replies:
        message["quick_replies"] = [
            {"content_type": "text", "title": title, "payload": title} for title in quick_replies
        ]
    action = {"type": "reply", "message": message}
    _, result = await _submit_and_audit(s, conv, agent, "reply", action, nonce)
    return result


async def react(
    s: Services, conv: Mapping[str, Any], agent: Agent, mid: str, reaction: str, nonce: str
) -> Result:
    refused = _require_holder(conv, agent)
    if refused is not None:
        return refused
    action = {"type": "react", "mid": mid, "reaction": reaction or "love"}
    _, result = await _submit_and_audit(s, conv, agent, "react", action, nonce, {"mid": mid})
    return result


async def private_reply(
    s: Services, conv: Mapping[str, Any], agent: Agent, comment_id: str, text: str, nonce: str
) -> Result:
    text = text.strip()
    if not text:
        return Result(False, "empty_text", status=400)
    refused = _require_holder(conv, agent)
    if refused is not None:
        return refused
    action = {"type": "private_reply", "comment_id": comment_id, "message": {"text": text}}
    _, result = await _submit_and_audit(
        s, conv, agent, "private_reply", action, nonce, {"comment_id": comment_id}
    )
    return result


async def release(
    s: Services, conv: Mapping[str, Any], agent: Agent, reason: str, nonce: str
) -> Result:
    """Back to the bot with a reason: the bot gets handover_ended with it as metadata."""
    reason = (reason.strip() or "released")[:MAX_REASON]
    if not (holds(conv, agent) or agent.is_admin):
        return _require_holder(conv, agent) or Result(False, "not_yours", status=409)
    action = {"type": "release", "metadata": reason}
    outcome, result = await _submit_and_audit(
        s, conv, agent, "release", action, nonce, {"reason": reason}
    )
    if outcome is not None and outcome.status == "accepted" and conv["agent_id"] is not None:
        await s.pool.execute(q("assignment_drop"), conv["id"], conv["agent_id"])
    return result


async def transfer(
    s: Services, conv: Mapping[str, Any], agent: Agent, target: str, nonce: str
) -> Result:
    """`agent:<login>` moves the conversation to another agent of this inbox (our record
    only); `app:<name>` passes the thread to another human app through the action path."""
    if not (holds(conv, agent) or agent.is_admin):
        return _require_holder(conv, agent) or Result(False, "not_yours", status=409)
    kind, _, name = target.partition(":")
    if kind == "agent":
        row = await s.pool.fetchrow(q("agent_by_login"), name)
        if row is None or row["disabled_at"] is not None:
            return Result(False, "unknown_agent", status=400)
        if conv["agent_id"] is None:
            got = await s.pool.fetchval(q("assignment_take"), conv["id"], s.app, row["id"])
            moved = got is not None
        else:
            moved = (
                await s.pool.fetchval(
                    q("assignment_move"), conv["id"], row["id"], agent.id, agent.is_admin
                )
                is not None
            )
        if not moved:
            return Result(False, "not_yours", status=409)
        await _audit(s, conv["id"], agent, "transfer", "accepted", {"to_agent": name})
        return Result(True, "done_transfer")
    if kind == "app" and name in s.human_apps:
        action = {"type": "pass", "target_app": name, "metadata": f"transfer by {agent.login}"}
        outcome, result = await _submit_and_audit(
            s, conv, agent, "transfer", action, nonce, {"to_app": name}
        )
        if outcome is not None and outcome.status == "accepted" and conv["agent_id"] is not None:
            await s.pool.execute(q("assignment_drop"), conv["id"], conv["agent_id"])
        return result
    return Result(False, "invalid", {"message": f"unknown transfer target {target!r}"}, 400)


async def add_note(s: Services, conv: Mapping[str, Any], agent: Agent, text: str) -> Result:
    """Stored in inbox_notes only: no event, no outbox row, nothing that could reach Meta."""
    text = text.strip()
    if not text:
        return Result(False, "empty_text", status=400)
    if len(text) > 5000:
        return Result(False, "invalid", {"message": "at most 5000 characters"}, 400)
    async with s.pool.acquire() as conn, conn.transaction():
        now = s.clock.now()
        await conn.execute(q("note_insert"), conv["id"], agent.id, text, now)
        await conn.execute(
            q("audit_insert"), conv["id"], agent.id, "note", "accepted", {}, None, now
        )
    return Result(True, "done_note")
