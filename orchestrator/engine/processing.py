"""The processing step: one stored event → trigger → pure decision → writes.

Runs inside the worker's transaction, which holds the conversation's row lock. Each named
piece has its own module: `triggers` (stored event → trigger), `state_machines.decide` (the
pure decision), `outbox_rows` (effects → rows), `inline` (in-process sub-apps answered in
the same step), `writes` (everything gathered, flushed in a few statements).
"""

from __future__ import annotations

from typing import Any, cast

import asyncpg
import structlog

from orchestrator.engine.inline import MAX_DEPTH, call_inline
from orchestrator.engine.outbox_rows import NO_HANDLER, OutboxRow, describe, rows_for
from orchestrator.engine.runtime import Runtime
from orchestrator.engine.subapps import runs_inline
from orchestrator.engine.triggers import action_trigger, trigger_for
from orchestrator.engine.writes import TranscriptLine, Writes
from orchestrator.ingress.events import Event, EventKind
from orchestrator.store.queries import q
from state_machines import (
    ActionError,
    CancelTimer,
    ConversationView,
    Decision,
    Deliver,
    SetTimer,
    decide,
)

log = structlog.get_logger(__name__)


class IdPool:
    """Outbox ids drawn in blocks, for deliveries run inline (their id is the delivery's
    idempotency key, known before the row is written)."""

    def __init__(self) -> None:
        self._ids: list[int] = []

    async def take(self, conn: asyncpg.Connection) -> int:
        if not self._ids:
            rows = await conn.fetch(q("draw_outbox_ids"), 32)
            self._ids = [r["id"] for r in reversed(rows)]
        return self._ids.pop()


class ConversationProcessor:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        # Only handlers that declare `inline = True` (subapps.SubApp; the HTTP vendor
        # adapter never does): one that waits on the network would hold every conversation
        # of the batch until it answered.
        self.inline_apps = {name for name, handler in rt.subapps.items() if runs_inline(handler)}

    async def process(
        self,
        conn: asyncpg.Connection,
        conversation: dict[str, Any],
        event: Any,
        writes: Writes,
        ids: IdPool,
    ) -> dict[str, Any]:
        """Decide one event; `conversation` is updated in place for the next one. Returns the
        result recorded on the event row."""
        rt = self.rt
        account = rt.config.account(conversation["account_id"])
        if account is None:
            # Reported at intake already (webhook_for_unknown_account); the same words here.
            reason = rt.config.unknown_account_reason(conversation["account_id"])
            log.warning(
                "event_for_unknown_account", account_id=conversation["account_id"], reason=reason
            )
            return {"note": reason}
        channel = account.channel_of(conversation["account_id"]) or "instagram"
        now = rt.clock.now()
        if event["unsent"] or (event["kind"] == "message_deleted" and event["mid"]):
            # One erase mechanism (orchestrator_erase). For a deletion this is the guarantee:
            # per-conversation order processes it after its message, whose transcript line is
            # written first (flush), whatever raced with intake's immediate erase.
            await writes.flush(conn)
            await conn.execute(q("erase_unsent"), [conversation["account_id"]], [event["mid"]])
        if event["erased"] or event["unsent"]:
            # Unsent before we got to it: keep a tombstone in the transcript, decide nothing.
            writes.transcript.append(
                TranscriptLine(
                    conversation["id"],
                    event["mid"],
                    "in",
                    "customer",
                    None,
                    None,
                    None,
                    event["occurred_at"],
                    deleted_at=now,
                )
            )
            return {"note": "unsent by the customer before processing; content erased"}
        trigger, typed = await trigger_for(
            conn, conversation, event, apps=len(rt.config.apps), channel=channel
        )
        if typed is not None:
            await self._transcribe(conn, conversation["id"], event, typed, writes)
        if trigger is None:
            note = f"{event['kind']}: recorded, no decision needed"
            log.info("event_processed", event_id=event["id"], kind=event["kind"], note=note)
            return {"note": note, "state": conversation["state"]}
        view = self._view(conversation, account.locale)
        decision = decide(view, trigger, now, rt.policy)
        inline: list[tuple[Deliver, int]] = []
        self._apply(conversation, event["id"], decision, writes, inline, depth=0)
        # In-process apps are called breadth first, after every effect of the decision is
        # queued: what an app does in answer comes after what the decision itself said (e.g.
        # support sees the customer's message before the bot's handover request it
        # prompted), and each app gets its deliveries in decision order.
        while inline:
            effect, depth = inline.pop(0)
            await self._deliver_inline(
                conn, conversation, event["id"], effect, writes, ids, inline, depth
            )
        # (from_state, trigger): which table row decided, for QA's scenario coverage.
        return {
            **self._result(event, decision),
            "trigger": decision.trigger_name,
            "from_state": str(view.state),
        }

    @staticmethod
    def _view(conversation: dict[str, Any], locale: str) -> ConversationView:
        # The view decided last in this batch, kept next to its JSON: parsing the JSON again
        # for every event and every inline action was a visible part of a decision's cost.
        cached = conversation.get("view_obj")
        if cached is not None:
            return cast(ConversationView, cached)
        if conversation["view"]:
            return ConversationView.from_json(conversation["view"])
        return ConversationView(locale=locale)

    async def _transcribe(
        self, conn: asyncpg.Connection, cid: int, row: Any, typed: Event, writes: Writes
    ) -> None:
        if typed.kind == EventKind.MESSAGE_EDIT:
            await writes.flush(conn)  # the edited message's own line may be in this batch
            # text None: the edit did not say the new text; the stored one is kept.
            await conn.execute(
                q("edit_message"), cid, row["mid"], getattr(typed, "text", None), row["occurred_at"]
            )
            return
        if typed.kind not in (EventKind.MESSAGE, EventKind.MESSAGE_ECHO):
            return
        is_echo = typed.kind == EventKind.MESSAGE_ECHO
        if is_echo:
            app = self.rt.config.app_by_id(str(getattr(typed, "app_id", "") or ""))
            author = app.name if app else f"foreign:{getattr(typed, 'app_id', None)}"
        else:
            author = "customer"
        attachments = [a.payload | {"type": a.type} for a in getattr(typed, "attachments", ())]
        writes.transcript.append(
            TranscriptLine(
                cid,
                getattr(typed, "mid", None),
                "out" if is_echo else "in",
                author,
                "echo" if is_echo else None,
                getattr(typed, "text", None),
                attachments or None,
                row["occurred_at"],
            )
        )

    def _apply(
        self,
        conversation: dict[str, Any],
        event_id: int | None,
        d: Decision,
        writes: Writes,
        inline: list[tuple[Deliver, int]],
        *,
        depth: int,
    ) -> None:
        """Record a decision's writes; deliveries to in-process apps are queued on `inline`
        (run by the caller, breadth first)."""
        rt = self.rt
        cid = conversation["id"]
        view_json = d.view.to_json()
        state = str(d.view.state)
        writes.conversation(cid, state, d.view.owner_app, view_json)
        conversation.update(
            state=state, owner_app=d.view.owner_app, view=view_json, view_obj=d.view
        )
        now = rt.clock.now()
        for effect in d.effects:
            if isinstance(effect, SetTimer):
                writes.timers[(cid, effect.kind)] = (effect.due_at, effect.generation)
            elif isinstance(effect, CancelTimer):
                writes.timers[(cid, effect.kind)] = None
            elif isinstance(effect, Deliver) and self._runs_inline(effect, depth):
                inline.append((effect, depth))
            elif isinstance(effect, Deliver) and effect.app not in rt.subapps:
                # No handler and no URL: the app acts through the REST API only. The
                # delivery is recorded (audit, scenarios) as done at once; sending it
                # through the dispatcher did nothing but cost a claim and a completion.
                [(kind, app, lane, payload)] = rows_for(effect)
                writes.outbox.append(
                    OutboxRow(
                        cid,
                        conversation["account_id"],
                        event_id,
                        kind,
                        app,
                        lane,
                        payload,
                        now,
                        status="done",
                        result=NO_HANDLER,
                    )
                )
            else:
                for kind, app, lane, payload in rows_for(effect):
                    writes.outbox.append(
                        OutboxRow(
                            cid, conversation["account_id"], event_id, kind, app, lane, payload, now
                        )
                    )
        if d.transition:
            channel = rt.config.channel_of(conversation["account_id"]) or "instagram"
            rt.metrics.transitions.labels(d.transition, channel).inc()
        if d.refusal:
            rt.metrics.refusals.labels(d.refusal.code).inc()
        for warning in d.warnings:
            log.warning("decision_warning", warning=warning)

    def _runs_inline(self, effect: Deliver, depth: int) -> bool:
        return effect.app in self.inline_apps and depth < MAX_DEPTH

    async def _deliver_inline(
        self,
        conn: asyncpg.Connection,
        conversation: dict[str, Any],
        event_id: int | None,
        effect: Deliver,
        writes: Writes,
        ids: IdPool,
        inline: list[tuple[Deliver, int]],
        depth: int,
    ) -> None:
        """Call the in-process app now and decide its actions in the same step; the delivery
        is recorded as an outbox row that is already done (or dead, with the reason)."""
        rt = self.rt
        delivery_id = await ids.take(conn)
        [(kind, app, lane, payload)] = rows_for(effect)
        outcome = await call_inline(
            rt.subapps[effect.app],
            delivery_id=delivery_id,
            app=effect.app,
            conversation=conversation,
            event=payload["event"],
            standby=effect.standby,
            channel=rt.config.channel_of(conversation["account_id"]),
        )
        decided: list[dict[str, Any]] = []
        for i, action_json in enumerate(outcome.actions):
            request_id = f"delivery-{delivery_id}:{i}"
            try:
                trigger = await action_trigger(
                    conn, conversation, effect.app, action_json, rt.clock.now(), request_id
                )
            except ActionError as exc:
                log.warning("inline_action_invalid", app=effect.app, error=str(exc))
                decided.append({"action": action_json, "error": str(exc)})
                continue
            account = rt.config.account(conversation["account_id"])
            view = self._view(conversation, account.locale if account else "en")
            d = decide(view, trigger, rt.clock.now(), rt.policy)
            self._apply(conversation, event_id, d, writes, inline, depth=depth + 1)
            decided.append(
                {
                    "action": action_json.get("type"),
                    "trigger": d.trigger_name,  # with from_state: QA's scenario coverage
                    "from_state": str(view.state),
                    "transition": d.transition,
                    "refusal": d.refusal.code if d.refusal else None,
                    "effects": [describe(e) for e in d.effects],
                }
            )
        status = "dead" if outcome.error else "done"
        result: dict[str, Any] = {
            "delivered": outcome.error is None,
            "inline": True,
            "actions": decided,
        }
        if outcome.error:
            result["error"] = outcome.error
            rt.metrics.outbox.labels(kind, "dead").inc()
        writes.outbox.append(
            OutboxRow(
                conversation["id"],
                conversation["account_id"],
                event_id,
                kind,
                app,
                lane,
                payload,
                rt.clock.now(),
                id=delivery_id,
                status=status,
                result=result,
                last_error=outcome.error,
            )
        )

    def _result(self, row: Any, d: Decision) -> dict[str, Any]:
        effects = [describe(e) for e in d.effects]
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
