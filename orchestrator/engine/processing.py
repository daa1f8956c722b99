"""The processing step: one stored event → trigger → pure decision → one transaction of writes.

Runs inside the worker's transaction, which holds the conversation's row lock: the new state,
the transcript, the outbox rows (in order) and the timers commit together with the event's
"done", or not at all.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import structlog

from orchestrator.engine.runtime import Runtime
from orchestrator.graph import split_text
from orchestrator.ingress.events import Event, EventKind
from orchestrator.ingress.parser.envelope import parse_payload
from orchestrator.store.queries import q
from state_machines import (
    ActionError,
    AppAction,
    AppRolesChanged,
    CancelTimer,
    ConversationView,
    CustomerActivity,
    CustomerMessage,
    Decision,
    Deliver,
    Echo,
    MetaHandover,
    OwnerReconciled,
    PrivateReply,
    PrivateReplyEffect,
    SenderAction,
    SendMessage,
    SetTimer,
    ThreadControl,
    TimerFired,
    action_from_json,
    decide,
)

log = structlog.get_logger(__name__)

# docs/platform.md 4.5: what (re)opens the 24-hour window besides a message.
_OPENS_WINDOW = {"postback", "reaction", "referral", "comment", "live_comment"}
_ACTIVITY = _OPENS_WINDOW | {"read", "message_edit", "message_deleted", "mention"}
_HANDOVER = {
    "pass_thread_control": "pass",
    "take_thread_control": "take",
    "request_thread_control": "request",
}


def reparse(row: Any) -> Event | None:
    """Rebuild the typed event from the stored raw item (parsing is pure and deterministic,
    so storing the raw item is enough and keeps exactly what Meta sent)."""
    source = row["source"]
    if source not in ("messaging", "standby", "changes"):
        return None
    entry = {"id": row["account_id"], source: [row["payload"]]}
    parsed = parse_payload({"object": "instagram", "entry": [entry]})
    return parsed.events[0] if parsed.events else None


class ConversationProcessor:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def process(
        self, conn: asyncpg.Connection, conversation: dict[str, Any], event: Any
    ) -> dict[str, Any]:
        rt = self.rt
        account = rt.config.account(conversation["account_id"])
        if account is None:
            log.warning("event_for_unknown_account", account_id=conversation["account_id"])
            return {"note": f"account {conversation['account_id']} is not registered"}
        view = (
            ConversationView.from_json(conversation["view"])
            if conversation["view"]
            else ConversationView(locale=account.locale)
        )
        now = rt.clock.now()
        if event["unsent"] or (event["kind"] == "message_deleted" and event["mid"]):
            # One erase mechanism (orchestrator_erase). For a deletion this is the guarantee:
            # per-conversation order processes it after its message, whose transcript row
            # then exists, whatever raced with intake's immediate erase.
            await conn.execute(q("erase_unsent"), [conversation["account_id"]], [event["mid"]])
        if event["erased"] or event["unsent"]:
            # Unsent before we got to it: keep a tombstone in the transcript, decide nothing.
            await conn.execute(
                q("insert_message"),
                conversation["id"],
                event["mid"],
                "in",
                "customer",
                None,
                None,
                None,
                event["occurred_at"],
                now,
                None,
            )
            return {"note": "unsent by the customer before processing; content erased"}
        trigger, typed = await self._trigger(conn, conversation, event)
        if typed is not None and typed.kind in (EventKind.MESSAGE, EventKind.MESSAGE_ECHO):
            await self._transcribe(conn, conversation["id"], event, typed)
        elif typed is not None and typed.kind == EventKind.MESSAGE_EDIT:
            await conn.execute(
                q("edit_message"), conversation["id"], event["mid"], getattr(typed, "text", None)
            )
        if trigger is None:
            note = f"{event['kind']}: recorded, no decision needed"
            log.info("event_processed", event_id=event["id"], kind=event["kind"], note=note)
            return {"note": note, "state": conversation["state"]}
        decision = decide(view, trigger, now, rt.policy)
        await self._apply(conn, conversation, event, decision)
        return self._result(event, decision)

    async def _trigger(
        self, conn: asyncpg.Connection, conversation: dict[str, Any], row: Any
    ) -> tuple[Any, Event | None]:
        kind, at = row["kind"], row["occurred_at"]
        payload = row["payload"]
        if kind == "action":
            try:
                action = action_from_json(payload["action"])
            except ActionError as exc:
                raise ValueError(f"stored action is invalid: {exc}") from exc
            if isinstance(action, PrivateReply):
                info = await conn.fetchrow(
                    q("comment_info"),
                    conversation["account_id"],
                    action.comment_id,
                    conversation["id"],
                )
                action = PrivateReply(
                    comment_id=action.comment_id,
                    message=action.message,
                    comment_at=info["comment_at"],
                    already_replied=info["already_replied"],
                )
            return AppAction(
                at=at, app=payload["app"], action=action, request_id=payload.get("request_id")
            ), None
        if kind == "timer":
            return TimerFired(at=at, kind=payload["timer"], generation=payload["generation"]), None
        if kind == "owner_reconciled":
            return OwnerReconciled(at=at, owner_app_id=payload.get("owner_app_id")), None
        typed = reparse({**dict(row), "account_id": conversation["account_id"]})
        if typed is None:
            return None, None
        event_json = {**typed.to_json(), "type": str(typed.kind)}
        if kind == "message":
            return CustomerMessage(
                at=at,
                mid=typed.mid,  # type: ignore[attr-defined]
                text=getattr(typed, "text", None),
                quick_reply_payload=getattr(typed, "quick_reply_payload", None),
                has_attachments=bool(getattr(typed, "attachments", ())),
                event=event_json,
            ), typed
        if kind == "message_echo":
            return Echo(
                at=at,
                app_id=getattr(typed, "app_id", None),
                mid=getattr(typed, "mid", None),
                event=event_json,
            ), typed
        if kind in _HANDOVER:
            return MetaHandover(
                at=at,
                kind=_HANDOVER[kind],  # type: ignore[arg-type]
                previous_owner_app_id=getattr(typed, "previous_owner_app_id", None),
                new_owner_app_id=getattr(typed, "new_owner_app_id", None),
                requested_owner_app_id=getattr(typed, "requested_owner_app_id", None),
                metadata=getattr(typed, "metadata", None),
                event=event_json,
            ), typed
        if kind == "app_roles":
            return AppRolesChanged(at=at, roles=getattr(typed, "roles", {})), typed
        if kind == "postback" and row["source"] == "standby" and _ours_in_control(conversation):
            return None, typed  # the owner's copy (with the payload) makes the decision
        if kind in ("comment", "live_comment") and typed.customer_id == conversation["account_id"]:
            return None, typed  # the business's own comment reply: never a customer's activity
        if kind in _ACTIVITY:
            return CustomerActivity(
                at=at,
                kind=kind,
                opens_window=kind in _OPENS_WINDOW,
                event=event_json,
                payload=getattr(typed, "payload", None),
            ), typed
        return None, typed  # unknown: stored raw and flagged at intake, nothing to decide

    async def _transcribe(
        self, conn: asyncpg.Connection, conversation_id: int, row: Any, typed: Event
    ) -> None:
        is_echo = typed.kind == EventKind.MESSAGE_ECHO
        if is_echo:
            app = self.rt.config.app_by_id(str(getattr(typed, "app_id", "") or ""))
            author = app.name if app else f"foreign:{getattr(typed, 'app_id', None)}"
        else:
            author = "customer"
        attachments = [a.payload | {"type": a.type} for a in getattr(typed, "attachments", ())]
        await conn.execute(
            q("insert_message"),
            conversation_id,
            getattr(typed, "mid", None),
            "out" if is_echo else "in",
            author,
            "echo" if is_echo else None,
            getattr(typed, "text", None),
            attachments or None,
            row["occurred_at"],
            None,
            None,
        )

    async def _apply(
        self, conn: asyncpg.Connection, conversation: dict[str, Any], row: Any, d: Decision
    ) -> None:
        cid = conversation["id"]
        view_json = d.view.to_json()
        await conn.execute(
            q("update_conversation"), cid, str(d.view.state), d.view.owner_app, view_json
        )
        conversation.update(state=str(d.view.state), owner_app=d.view.owner_app, view=view_json)
        kinds: list[str] = []
        apps: list[str] = []
        payloads: list[dict[str, Any]] = []
        for effect in d.effects:
            if isinstance(effect, SetTimer):
                await conn.execute(
                    q("set_timer"), cid, effect.kind, effect.due_at, effect.generation
                )
            elif isinstance(effect, CancelTimer):
                await conn.execute(q("cancel_timer"), cid, effect.kind)
            else:
                for kind, app, payload in _outbox_rows(effect):
                    kinds.append(kind)
                    apps.append(app)
                    payloads.append(payload)
        if kinds:
            await conn.execute(
                q("insert_outbox"),
                cid,
                row["id"],
                kinds,
                apps,
                [json.dumps(p, default=str) for p in payloads],
                self.rt.clock.now(),
            )
            await conn.execute(q("notify_outbox"))
        m = self.rt.metrics
        if d.transition:
            m.transitions.labels(d.transition).inc()
        if d.refusal:
            m.refusals.labels(d.refusal.code).inc()

    def _result(self, row: Any, d: Decision) -> dict[str, Any]:
        effects = [_describe(e) for e in d.effects]
        result: dict[str, Any] = {
            "transition": d.transition,
            "state": str(d.view.state),
            "owner_app": d.view.owner_app,
            "effects": effects,
            "notes": list(d.notes),
            "refusal": None,
        }
        if d.refusal:
            result["refusal"] = {
                "code": d.refusal.code,
                "message": d.refusal.message,
                "rule": d.refusal.rule,
            }
        log.info(
            "event_processed",
            event_id=row["id"],
            kind=row["kind"],
            transition=d.transition,
            state=str(d.view.state),
            owner_app=d.view.owner_app,
            effects=effects or None,
            refusal=d.refusal.code if d.refusal else None,
        )
        return result


def _ours_in_control(conversation: dict[str, Any]) -> bool:
    """One of our apps holds the thread (or it is idle, the primary answering), so Meta sends
    that app the event in `messaging[]`; a standby copy is then only for information."""
    owner = conversation["owner_app"]
    return owner is None or not str(owner).startswith("foreign:")


def _outbox_rows(effect: Any) -> list[tuple[str, str, dict[str, Any]]]:
    if isinstance(effect, SendMessage):
        base = {
            "messaging_type": effect.messaging_type,
            "tag": effect.tag,
            "purpose": effect.purpose,
            "reply_to_mid": effect.reply_to_mid,
        }
        return [
            ("send_message", effect.app, {**base, "message": m})
            for m in _split_message(dict(effect.message))
        ]
    if isinstance(effect, PrivateReplyEffect):
        return [
            (
                "private_reply",
                effect.app,
                {"comment_id": effect.comment_id, "message": dict(effect.message)},
            )
        ]
    if isinstance(effect, SenderAction):
        return [
            (
                "sender_action",
                effect.app,
                {"action": effect.action, "mid": effect.mid, "reaction": effect.reaction},
            )
        ]
    if isinstance(effect, ThreadControl):
        return [
            (
                "thread_control",
                effect.app,
                {
                    "action": effect.action,
                    "target_app_id": effect.target_app_id,
                    "metadata": effect.metadata,
                    "duration_s": effect.duration_s,
                },
            )
        ]
    if isinstance(effect, Deliver):
        return [("deliver", effect.app, {"event": dict(effect.event), "standby": effect.standby})]
    raise TypeError(f"no outbox mapping for effect {type(effect).__name__}")


def _split_message(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Text over Meta's 1000-byte limit becomes several messages, in order; quick replies
    ride on the last one (they belong to the question, which ends the text)."""
    text = message.get("text")
    if not isinstance(text, str) or len(text.encode()) <= 1000 or "attachment" in message:
        return [message]
    chunks = split_text(text, 1000)
    out = [{"text": c} for c in chunks]
    extras = {k: v for k, v in message.items() if k != "text"}
    out[-1].update(extras)
    return out


def _describe(effect: Any) -> str:
    if isinstance(effect, SendMessage):
        return f"send:{effect.purpose}:{effect.app}"
    if isinstance(effect, ThreadControl):
        return f"thread_control:{effect.action}:{effect.app}"
    if isinstance(effect, Deliver):
        return f"deliver:{effect.app}" + (":standby" if effect.standby else "")
    if isinstance(effect, SetTimer):
        return f"set_timer:{effect.kind}"
    if isinstance(effect, CancelTimer):
        return f"cancel_timer:{effect.kind}"
    return type(effect).__name__
