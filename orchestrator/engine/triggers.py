"""Stored event → state-machine trigger (and the typed event, for the transcript).

Webhook items are stored raw (exactly what Meta sent) and rebuilt into typed events here by
the same pure parser intake used; actions, timers and reconciliations are stored as our own
JSON. The only database read is for private replies (when the comment was made and whether
it was answered already), which the window rule needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from orchestrator.ingress.events import Event
from orchestrator.ingress.parser import parse_payload
from orchestrator.store.queries import q
from state_machines import (
    ActionError,
    AppAction,
    AppRolesChanged,
    CustomerActivity,
    CustomerMessage,
    DisclosureUndelivered,
    Echo,
    MetaHandover,
    OwnerReconciled,
    PrivateReply,
    TimerFired,
    action_from_json,
)

# docs/platform.md 4.5: what (re)opens the 24-hour window besides a message.
OPENS_WINDOW = frozenset({"postback", "reaction", "referral", "comment", "live_comment"})
# Messenger-only kinds with a customer (docs/payloads.md): delivered to the app in control
# (standby copies to the others) like a read receipt; they open no window and change no state.
MESSENGER_ACTIVITY = frozenset({"delivery", "optin", "account_linking"})
ACTIVITY = (
    OPENS_WINDOW | MESSENGER_ACTIVITY | {"read", "message_edit", "message_deleted", "mention"}
)
# The webhook `object` of a conversation's channel.
OBJECT_OF_CHANNEL = {"instagram": "instagram", "messenger": "page"}
HANDOVER = {
    "pass_thread_control": "pass",
    "take_thread_control": "take",
    "request_thread_control": "request",
}


def typed_event(
    row: Mapping[str, Any], account_id: str, channel: str = "instagram"
) -> Event | None:
    """Rebuild the typed event from the stored raw item (parsing is pure and deterministic,
    so storing the raw item is enough and keeps exactly what Meta sent). The conversation's
    channel gives back the webhook's `object` ("page" for Messenger)."""
    source = row["source"]
    if source not in ("messaging", "standby", "changes"):
        return None
    entry = {"id": account_id, source: [row["payload"]]}
    obj = OBJECT_OF_CHANNEL.get(channel, "instagram")
    parsed = parse_payload({"object": obj, "entry": [entry]})
    return parsed.events[0] if parsed.events else None


async def action_trigger(
    conn: asyncpg.Connection,
    conversation: Mapping[str, Any],
    app: str,
    action_json: Mapping[str, Any],
    at: datetime,
    request_id: str | None = None,
) -> AppAction:
    """A sub-app's action as a trigger; raises ActionError for an invalid action."""
    action = action_from_json(action_json)
    if isinstance(action, PrivateReply):
        info = await conn.fetchrow(
            q("comment_info"), conversation["account_id"], action.comment_id, conversation["id"]
        )
        action = PrivateReply(
            comment_id=action.comment_id,
            message=action.message,
            comment_at=info["comment_at"],
            already_replied=info["already_replied"],
        )
    return AppAction(at=at, app=app, action=action, request_id=request_id)


async def trigger_for(
    conn: asyncpg.Connection,
    conversation: Mapping[str, Any],
    row: Mapping[str, Any],
    *,
    apps: int,
    channel: str = "instagram",
) -> tuple[Any, Event | None]:
    """(trigger or None when there is nothing to decide, typed webhook event or None)."""
    kind, at = row["kind"], row["occurred_at"]
    payload = row["payload"]
    if kind == "action":
        try:
            trigger = await action_trigger(
                conn, conversation, payload["app"], payload["action"], at, payload.get("request_id")
            )
        except ActionError as exc:
            raise ValueError(f"stored action is invalid: {exc}") from exc
        return trigger, None
    if kind == "timer":
        return TimerFired(at=at, kind=payload["timer"], generation=payload["generation"]), None
    if kind == "owner_reconciled":
        expires = payload.get("expires_at")
        return OwnerReconciled(
            at=at,
            owner_app_id=payload.get("owner_app_id"),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        ), None
    if kind == "disclosure_undelivered":
        # Written by the database when it dead-letters a disclosure (migration 0009).
        # Its row sorts first (occurred_at = epoch); its own time is in the payload.
        return DisclosureUndelivered(
            at=_time_or(payload.get("at"), at),
            held=int(payload.get("held") or 0),
            reason=payload.get("reason"),
        ), None
    typed = typed_event(row, conversation["account_id"], channel)
    if typed is None:
        return None, None
    if kind == "reaction" and row["mid"] and await _unsent(conn, conversation, row["mid"]):
        # The message is gone (unsent, its content erased): a reaction to it is recorded,
        # never forwarded to the sub-apps (they were told message_deleted).
        return None, typed
    copies = await _copies(conn, conversation, row, apps)
    return _webhook_trigger(conversation, row, typed, copies), typed


@dataclass(frozen=True, slots=True)
class Copies:
    """What intake saw of one customer event besides the stored copy (migration 0009)."""

    copies: tuple[tuple[str, str], ...] = ()  # (app, "messaging" | "standby")
    control_pending: bool = False  # a pass/take/release of ours not performed at Meta yet


async def _copies(
    conn: asyncpg.Connection, conversation: Mapping[str, Any], row: Mapping[str, Any], apps: int
) -> Copies:
    """The copies of this customer event our apps received, duplicates included, and whether
    a control move of ours is still on its way to Meta. Read only where they can change the
    decision: several apps, a customer event, and a standby copy stored or one of our apps
    believed to hold the thread (a messaging copy stored while idle or while an Inbox holds
    it says all there is)."""
    if apps < 2 or (row["kind"] != "message" and row["kind"] not in ACTIVITY):
        return Copies()
    owner = conversation["owner_app"]
    ours_holds = owner is not None and not str(owner).startswith("foreign:")
    if row["source"] != "standby" and not ours_holds:
        return Copies()
    found = await conn.fetchrow(q("event_copies"), row["id"])
    if found is None:
        return Copies()
    return Copies(
        tuple(zip(found["apps"], found["sources"], strict=True)), found["control_pending"]
    )


async def _unsent(conn: asyncpg.Connection, conversation: Mapping[str, Any], mid: str) -> bool:
    return bool(await conn.fetchval(q("mid_unsent"), conversation["account_id"], mid))


def _time_or(value: Any, default: datetime) -> datetime:
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    return parsed if parsed is not None and parsed.utcoffset() is not None else default


def copy_evidence(row: Mapping[str, Any], seen: Copies | None = None) -> dict[str, Any]:
    """Ownership evidence for the state machine (issue 9.1): which webhook field carried the
    copy decided on and which app of ours received it, which apps got standby copies, and
    whether a control move of ours is still on its way to Meta. Meta sends each app one
    copy: in `messaging[]` to the owner (or the default app while idle), in `standby[]` to
    the others (docs/platform.md 2.9). Intake stores the first copy only; `seen` holds the
    others intake saw (duplicates included; `_copies` reads them only where they can matter).
    A messaging copy says the most (that app may answer), so it is the one decided on when
    intake stored a standby copy first."""
    seen = seen or Copies()
    source = "standby" if row["source"] == "standby" else "messaging"
    received_by = row["received_by"]
    if source == "standby":
        owner_copy = next((app for app, src in seen.copies if src == "messaging"), None)
        if owner_copy is not None:
            source, received_by = "messaging", owner_copy
    return {
        "source": source,
        "received_by": received_by,
        "standby_by": tuple(sorted({app for app, src in seen.copies if src == "standby"})),
        "control_pending": seen.control_pending,
    }


def _webhook_trigger(
    conversation: Mapping[str, Any],
    row: Mapping[str, Any],
    typed: Event,
    copies: Copies | None = None,
) -> Any:
    kind, at = row["kind"], row["occurred_at"]
    event_json = {**typed.to_json(), "type": str(typed.kind)}
    if kind == "message":
        return CustomerMessage(
            at=at,
            mid=typed.mid,  # type: ignore[attr-defined]
            text=getattr(typed, "text", None),
            quick_reply_payload=getattr(typed, "quick_reply_payload", None),
            has_attachments=bool(getattr(typed, "attachments", ())),
            event=event_json,
            **copy_evidence(row, copies),
        )
    if kind == "message_echo":
        return Echo(
            at=at,
            app_id=getattr(typed, "app_id", None),
            mid=getattr(typed, "mid", None),
            event=event_json,
        )
    if kind in HANDOVER:
        return MetaHandover(
            at=at,
            kind=HANDOVER[kind],  # type: ignore[arg-type]
            previous_owner_app_id=getattr(typed, "previous_owner_app_id", None),
            new_owner_app_id=getattr(typed, "new_owner_app_id", None),
            requested_owner_app_id=getattr(typed, "requested_owner_app_id", None),
            metadata=getattr(typed, "metadata", None),
            event=event_json,
        )
    if kind == "app_roles":
        return AppRolesChanged(at=at, roles=getattr(typed, "roles", {}))
    if kind == "postback" and row["source"] == "standby" and _ours_in_control(conversation):
        return None  # the owner's copy (with the payload) makes the decision
    if kind in ("comment", "live_comment") and typed.customer_id == conversation["account_id"]:
        return None  # the business's own comment reply: never a customer's activity
    if kind in ACTIVITY:
        return CustomerActivity(
            at=at,
            kind=kind,
            opens_window=kind in OPENS_WINDOW,
            event=event_json,
            payload=getattr(typed, "payload", None),
            **copy_evidence(row, copies),
        )
    return None  # unknown: stored raw and flagged at intake, nothing to decide


def _ours_in_control(conversation: Mapping[str, Any]) -> bool:
    """One of our apps holds the thread (or it is idle, the primary answering), so Meta sends
    that app the event in `messaging[]`; a standby copy is then only for information."""
    owner = conversation["owner_app"]
    return owner is None or not str(owner).startswith("foreign:")
