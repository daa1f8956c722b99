"""Executing one claimed outbox row: the Graph call or the sub-app delivery it stands for.

Pure I/O at the edge: no database access here. What a row leads to besides its answer (a
vendor's actions, a reconciliation after Meta refused for ownership) is returned as event
rows for the dispatcher to store with the row's completion, in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from orchestrator.engine.inline import as_json
from orchestrator.engine.outbox_rows import NO_HANDLER
from orchestrator.engine.runtime import Runtime
from orchestrator.engine.subapps import Delivery, conversation_summary
from orchestrator.store.intake import Row, action_row
from state_machines import ConversationView, check_send
from state_machines.model import parse_datetime

log = structlog.get_logger(__name__)


def conversation_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The conversation columns the claim returned with the row."""
    return {
        "id": row["conversation_id"],
        "account_id": row["account_id"],
        "customer_id": row["customer_id"],
        "state": row["state"],
        "owner_app": row["owner_app"],
        "view": row["view"],
    }


async def perform(rt: Runtime, row: Mapping[str, Any]) -> tuple[dict[str, Any], list[Row]]:
    """(Meta's or the app's answer, follow-up event rows); raises on failure."""
    kind, p = row["kind"], row["payload"]
    igsid = row["customer_id"]
    if kind == "deliver":
        return await deliver(rt, row)
    if kind == "thread_owner":
        # CheckOwner: our state and Meta's evidence disagree; Meta's answer decides.
        event = await owner_answer(rt, row, row["app"])
        return {"owner_app_id": event.payload["owner_app_id"]}, [event]
    target = rt.graph_target(row["account_id"], row["app"])
    graph = rt.graph
    if kind == "send_message":
        messaging_type, tag = window_at_send(rt, row)
        answer = await graph.send_message(
            target,
            {"id": igsid},
            p["message"],
            messaging_type=messaging_type,
            tag=tag,
            reply_to_mid=p.get("reply_to_mid"),
        )
        return dict(answer), []
    if kind == "private_reply":
        return dict(await graph.private_reply(target, p["comment_id"], p["message"])), []
    if kind == "sender_action":
        action = p["action"]
        if action == "react":
            answer = await graph.react(target, igsid, p["mid"], p["reaction"])
        elif action == "unreact":
            answer = await graph.unreact(target, igsid, p["mid"])
        else:
            answer = await graph.sender_action(target, igsid, action)
        return dict(answer), []
    if kind == "thread_control":
        action, meta = p["action"], p.get("metadata")
        if action == "pass":
            answer = await graph.pass_thread_control(
                target, igsid, target_app_id=p.get("target_app_id"), metadata=meta
            )
        elif action == "take":
            answer = await graph.take_thread_control(target, igsid, metadata=meta)
        elif action == "release":
            answer = await graph.release_thread_control(target, igsid, metadata=meta)
        elif action == "request":
            answer = await graph.request_thread_control(target, igsid, metadata=meta)
        elif action == "extend":
            answer = await graph.extend_thread_control(target, igsid, int(p["duration_s"]))
        else:
            raise ValueError(f"unknown thread-control action {action!r}")
        return dict(answer), []
    raise ValueError(f"unknown outbox kind {kind!r}")


class WindowClosedAtSend(Exception):
    """The message window closed between the decision and the send: nothing is sent."""


def window_at_send(rt: Runtime, row: Mapping[str, Any]) -> tuple[str, str | None]:
    """The window rule again at send time (docs/platform.md 4.5): a message decided at 23 h
    59 and sent after retries at 24 h 05 must carry HUMAN_AGENT if a human wrote it, and must
    not go out at all if automation did. Decided on the conversation as it is now (a newer
    customer message reopens the window)."""
    p = row["payload"]
    app = rt.config.app(row["app"])
    human = app is not None and app.kind == "human" and p.get("purpose", "reply") == "reply"
    if not row["view"]:
        return p.get("messaging_type", "RESPONSE"), p.get("tag")
    # The window needs one field of the view: read only that (the whole view, per send,
    # was a third of this function's cost).
    stored = row["view"]
    if isinstance(stored, Mapping):
        last = stored.get("last_customer_message_at")
        view = ConversationView(
            last_customer_message_at=parse_datetime(last, "view.last_customer_message_at")
        )
    else:  # a view stored as JSON text inside jsonb (tests/integration/test_outbox.py does)
        view = ConversationView.from_json(stored)
    verdict = check_send(
        view, rt.clock.now(), author_kind="human" if human else "bot", policy=rt.policy
    )
    if not verdict.allowed:
        message = verdict.refusal.message if verdict.refusal else "the window is closed"
        raise WindowClosedAtSend(f"window closed at send time: {message}")
    return verdict.messaging_type or "RESPONSE", verdict.tag


async def deliver(rt: Runtime, row: Mapping[str, Any]) -> tuple[dict[str, Any], list[Row]]:
    """A delivery to a sub-app (a vendor over HTTP; an in-process app only when the worker
    could not run it inline); the actions it answers with become events of the conversation."""
    handler = rt.subapps.get(row["app"])
    if handler is None:
        return dict(NO_HANDLER), []
    p = row["payload"]
    delivery = Delivery(
        id=row["id"],
        app=row["app"],
        conversation=conversation_summary(
            conversation_of(row), rt.config.channel_of(row["account_id"])
        ),
        event=p["event"],
        standby=bool(p.get("standby")),
    )
    actions = await handler.handle(delivery)
    now = rt.clock.now()
    follow_up = [
        action_row(
            row["account_id"],
            row["customer_id"],
            f"action:delivery-{row['id']}:{i}",
            row["app"],
            as_json(a),
            now,
            in_reply_to=row["id"],
            standby=delivery.standby,
        )
        for i, a in enumerate(actions)
    ]
    return {"delivered": True, "actions": len(follow_up)}, follow_up


async def reconcile(rt: Runtime, row: Mapping[str, Any], reason: str) -> tuple[list[Row], str]:
    """Ask Meta who owns the thread and feed the answer to the state machine."""
    try:
        event = await owner_answer(rt, row, rt.config.primary.name)
    except Exception as exc:
        return [], f"{reason}; thread_owner check failed too: {exc}"
    owner_app_id = event.payload["owner_app_id"]
    return [event], f"{reason}; reconciled with thread_owner (owner: {owner_app_id or 'idle'})"


async def owner_answer(rt: Runtime, row: Mapping[str, Any], app: str) -> Row:
    """Ask Meta who owns the thread (with `app`'s token): an owner_reconciled event, with
    Meta's control expiry when it gives one."""
    owner = await rt.graph.thread_owner(rt.graph_target(row["account_id"], app), row["customer_id"])
    expires = (
        datetime.fromtimestamp(owner.expiration, UTC).isoformat()
        if owner.expiration is not None and owner.app_id is not None
        else None
    )
    log.warning("thread_owner_reconciled", owner_app_id=owner.app_id)
    return Row(
        account_id=row["account_id"],
        customer_id=row["customer_id"],
        dedup_key=f"reconcile:{row['id']}:{row['attempts']}",
        kind="owner_reconciled",
        source="system",
        mid=None,
        occurred_at=rt.clock.now(),
        payload={"owner_app_id": owner.app_id, "outbox_id": row["id"], "expires_at": expires},
    )
