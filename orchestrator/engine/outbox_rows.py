"""Effects → outbox rows: what the dispatcher will execute, in decision order, per lane.

Lanes order a conversation's rows independently of each other: `meta` for everything that
reaches Meta (sends, reactions, thread control) — the customer-facing order — and one lane
per sub-app for its deliveries, so a slow or unreachable vendor never holds back a reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.graph.text import MAX_TEXT_BYTES, split_text
from state_machines import (
    CancelTimer,
    CheckOwner,
    Deliver,
    PrivateReplyEffect,
    SenderAction,
    SendMessage,
    SetTimer,
    ThreadControl,
)

META_LANE = "meta"
# The result of a delivery to an app without a handler or URL (it uses the REST API only).
NO_HANDLER = {"delivered": False, "note": "app has no handler; it uses the REST API"}


def delivery_lane(app: str) -> str:
    return f"app:{app}"


@dataclass(slots=True)
class OutboxRow:
    conversation_id: int
    account_id: str
    event_id: int | None
    kind: str
    app: str
    lane: str
    payload: dict[str, Any]
    available_at: datetime
    id: int | None = None  # drawn in advance for rows executed inline
    status: str = "pending"
    result: dict[str, Any] | None = None
    last_error: str | None = None


def rows_for(effect: Any) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(kind, app, lane, payload) for one effect; timers are not outbox rows."""
    payload: dict[str, Any]
    if isinstance(effect, SendMessage):
        base: dict[str, Any] = {
            "messaging_type": effect.messaging_type,
            "tag": effect.tag,
            "purpose": effect.purpose,
            "reply_to_mid": effect.reply_to_mid,
        }
        if effect.automated:
            # Held by the database when the disclosure before it is dead-lettered (0009).
            base["automated"] = True
        return [
            ("send_message", effect.app, META_LANE, {**base, "message": m})
            for m in split_message(dict(effect.message))
        ]
    if isinstance(effect, PrivateReplyEffect):
        payload = {"comment_id": effect.comment_id, "message": dict(effect.message)}
        if effect.automated:  # held / re-armed by the database like sends (0009)
            payload["automated"] = True
        if effect.discloses:
            payload["discloses"] = True
        return [("private_reply", effect.app, META_LANE, payload)]
    if isinstance(effect, SenderAction):
        payload = {"action": effect.action, "mid": effect.mid, "reaction": effect.reaction}
        return [("sender_action", effect.app, META_LANE, payload)]
    if isinstance(effect, ThreadControl):
        payload = {
            "action": effect.action,
            "target_app_id": effect.target_app_id,
            "metadata": effect.metadata,
            "duration_s": effect.duration_s,
        }
        return [("thread_control", effect.app, META_LANE, payload)]
    if isinstance(effect, CheckOwner):
        return [("thread_owner", effect.app, META_LANE, {"reason": effect.reason})]
    if isinstance(effect, Deliver):
        payload = {"event": dict(effect.event), "standby": effect.standby}
        return [("deliver", effect.app, delivery_lane(effect.app), payload)]
    raise TypeError(f"no outbox mapping for effect {type(effect).__name__}")


def split_message(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Text over Meta's 1000-byte limit becomes several messages, in order; quick replies
    ride on the last one (they belong to the question, which ends the text)."""
    text = message.get("text")
    if not isinstance(text, str) or len(text.encode()) <= MAX_TEXT_BYTES or "attachment" in message:
        return [message]
    chunks = split_text(text, MAX_TEXT_BYTES)
    out: list[dict[str, Any]] = [{"text": c} for c in chunks]
    out[-1].update({k: v for k, v in message.items() if k != "text"})
    return out


def describe(effect: Any) -> str:
    """A short name of an effect for results and logs."""
    if isinstance(effect, SendMessage):
        return f"send:{effect.purpose}:{effect.app}"
    if isinstance(effect, ThreadControl):
        return f"thread_control:{effect.action}:{effect.app}"
    if isinstance(effect, Deliver):
        return f"deliver:{effect.app}" + (":standby" if effect.standby else "")
    if isinstance(effect, CheckOwner):
        return f"thread_owner:{effect.app}"
    if isinstance(effect, SetTimer):
        return f"set_timer:{effect.kind}"
    if isinstance(effect, CancelTimer):
        return f"cancel_timer:{effect.kind}"
    return type(effect).__name__
