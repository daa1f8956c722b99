"""Outbox dispatcher: executes effects written by the worker, per conversation in order.

A row is claimed only when it is the oldest open row of its conversation (and a partial
unique index forbids two in flight), so a conversation's sends, thread-control calls and
sub-app deliveries happen exactly in the order the state machine decided them. A retry stays
on the same row; after the policy gives up the row is dead-lettered with its reason and the
next row proceeds. Meta refusing because we are not the thread owner triggers a
`thread_owner` check that reconciles the conversation instead of a blind retry.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from orchestrator.engine.loop import run_until_stopped
from orchestrator.engine.runtime import Runtime
from orchestrator.engine.subapps import Delivery
from orchestrator.graph import GraphError, HttpDeliveryError, NotThreadOwner, RetryPolicy
from orchestrator.store.intake import Row, action_row, store_rows
from orchestrator.store.queries import q

log = structlog.get_logger(__name__)
REAP_AFTER_S = 120.0


class Dispatcher:
    def __init__(self, rt: Runtime, *, name: str = "dispatcher", poll_interval: float = 0.5):
        self.rt = rt
        self.name = name
        self.poll_interval = poll_interval
        self.policy: RetryPolicy = rt.retry_policy

    async def run(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        await run_until_stopped(
            self.run_once,
            stop=stop,
            wake=wake,
            poll_interval=self.poll_interval,
            name=self.name,
            kind="dispatcher",
        )

    async def reap(self) -> int:
        rows = await self.rt.pool.fetch(q("outbox_reap"), REAP_AFTER_S)
        for r in rows:
            log.warning("outbox_row_recovered", outbox_id=r["id"])
        return len(rows)

    async def run_once(self) -> bool:
        """Claim and execute one row; True when a row was handled."""
        try:
            row = await self.rt.pool.fetchrow(q("claim_outbox"), self.rt.clock.now(), self.name)
        except asyncpg.UniqueViolationError:
            return True  # another dispatcher claimed this conversation's head just now
        if row is None:
            return False
        # Shielded: a claimed row is always finished (done, retry or dead), even at shutdown.
        await asyncio.shield(self._execute(row))
        return True

    async def _execute(self, row: asyncpg.Record) -> None:
        rt = self.rt
        conv = await rt.pool.fetchrow(q("conversation_context"), row["conversation_id"])
        structlog.contextvars.bind_contextvars(
            conversation_id=row["conversation_id"], outbox_id=row["id"], app=row["app"]
        )
        try:
            try:
                result, follow_up = await self._perform(row, conv)
            except Exception as exc:
                if not isinstance(exc, GraphError | HttpDeliveryError):
                    log.exception("outbox_unexpected_error", kind=row["kind"])
                await self._failed(row, conv, exc)
                return
            for attempt in range(1, 4):
                try:
                    async with rt.pool.acquire() as conn, conn.transaction():
                        if follow_up:
                            await store_rows(conn, follow_up, row["app"])
                        await self._record_transcript(conn, row, result)
                        await conn.execute(q("outbox_done"), row["id"], result)
                    if follow_up:
                        rt.waker.poke()
                    break
                except asyncpg.DeadlockDetectedError:
                    # The effect happened; only our record of it failed. Never leave the row
                    # 'doing' (it would block the conversation and be re-sent by the reaper).
                    log.warning("outbox_done_retry", attempt=attempt)
                    if attempt == 3:
                        raise
            rt.metrics.outbox.labels(row["kind"], "done").inc()
            log.info("outbox_done", kind=row["kind"], attempts=row["attempts"])
        finally:
            structlog.contextvars.unbind_contextvars("conversation_id", "outbox_id", "app")

    async def _perform(
        self, row: asyncpg.Record, conv: asyncpg.Record
    ) -> tuple[dict[str, Any], list[Row]]:
        rt, kind, p = self.rt, row["kind"], row["payload"]
        igsid = conv["customer_id"]
        if kind == "deliver":
            return await self._deliver(row, conv)
        if kind == "thread_owner":
            # CheckOwner: our state and Meta's evidence disagree; Meta's answer decides.
            event = await self._owner_answer(row, conv, row["app"])
            return {"owner_app_id": event.payload["owner_app_id"]}, [event]
        target = rt.graph_target(conv["account_id"], row["app"])
        graph = rt.graph
        if kind == "send_message":
            answer = await graph.send_message(
                target,
                {"id": igsid},
                p["message"],
                messaging_type=p.get("messaging_type", "RESPONSE"),
                tag=p.get("tag"),
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

    async def _deliver(
        self, row: asyncpg.Record, conv: asyncpg.Record
    ) -> tuple[dict[str, Any], list[Row]]:
        rt = self.rt
        handler = rt.subapps.get(row["app"])
        if handler is None:
            return {"delivered": False, "note": "app has no handler; it uses the REST API"}, []
        p = row["payload"]
        delivery = Delivery(
            id=row["id"],
            app=row["app"],
            conversation=conversation_summary(conv),
            event=p["event"],
            standby=bool(p.get("standby")),
        )
        actions = await handler.handle(delivery)
        now = rt.clock.now()
        follow_up = [
            action_row(
                conv["account_id"],
                conv["customer_id"],
                f"action:delivery-{row['id']}:{i}",
                row["app"],
                _as_json(a),
                now,
                in_reply_to=row["id"],
                standby=delivery.standby,
            )
            for i, a in enumerate(actions)
        ]
        return {"delivered": True, "actions": len(follow_up)}, follow_up

    async def _record_transcript(
        self, conn: asyncpg.Connection, row: asyncpg.Record, result: Mapping[str, Any]
    ) -> None:
        if row["kind"] not in ("send_message", "private_reply"):
            return
        p = row["payload"]
        message = p.get("message", {})
        await conn.execute(
            q("insert_message"),
            row["conversation_id"],
            result.get("message_id"),
            "out",
            row["app"],
            p.get("purpose", "reply" if row["kind"] == "send_message" else "private_reply"),
            message.get("text"),
            message.get("attachment") or message.get("attachments"),
            self.rt.clock.now(),
            None,
            row["id"],
        )

    async def _failed(self, row: asyncpg.Record, conv: asyncpg.Record, exc: Exception) -> None:
        rt = self.rt
        if isinstance(exc, GraphError):
            rt.metrics.graph_errors.labels(str(exc.code or exc.http_status or "network")).inc()
        decision = self.policy.decide(exc, row["attempts"])
        if decision.verdict == "retry":
            when = rt.clock.now() + timedelta(seconds=decision.delay)
            await rt.pool.execute(q("outbox_retry"), row["id"], when, decision.reason)
            rt.metrics.outbox.labels(row["kind"], "retry").inc()
            log.warning(
                "outbox_retry",
                kind=row["kind"],
                attempt=row["attempts"],
                delay_s=round(decision.delay, 2),
                reason=decision.reason,
            )
            return
        reason = decision.reason
        follow_up: list[Row] = []
        if decision.verdict == "reconcile" or isinstance(exc, NotThreadOwner):
            follow_up, reason = await self._reconcile(row, conv, reason)
        async with rt.pool.acquire() as conn, conn.transaction():
            if follow_up:
                await store_rows(conn, follow_up, None)
            await conn.execute(q("outbox_dead"), row["id"], reason)
        if follow_up:
            rt.waker.poke()
        rt.metrics.outbox.labels(row["kind"], "dead").inc()
        log.error("outbox_dead_letter", kind=row["kind"], attempts=row["attempts"], reason=reason)

    async def _reconcile(
        self, row: asyncpg.Record, conv: asyncpg.Record, reason: str
    ) -> tuple[list[Row], str]:
        """Ask Meta who owns the thread and feed the answer to the state machine."""
        try:
            event = await self._owner_answer(row, conv, self.rt.config.primary.name)
        except Exception as exc:
            return [], f"{reason}; thread_owner check failed too: {exc}"
        owner_app_id = event.payload["owner_app_id"]
        return [event], f"{reason}; reconciled with thread_owner (owner: {owner_app_id or 'idle'})"

    async def _owner_answer(self, row: asyncpg.Record, conv: asyncpg.Record, app: str) -> Row:
        """Ask Meta who owns the thread (with `app`'s token): an owner_reconciled event."""
        rt = self.rt
        owner = await rt.graph.thread_owner(
            rt.graph_target(conv["account_id"], app), conv["customer_id"]
        )
        now = rt.clock.now()
        expires = (
            datetime.fromtimestamp(owner.expiration, UTC).isoformat()
            if owner.expiration is not None and owner.app_id is not None
            else None
        )
        log.warning("thread_owner_reconciled", owner_app_id=owner.app_id)
        return Row(
            account_id=conv["account_id"],
            customer_id=conv["customer_id"],
            dedup_key=f"reconcile:{row['id']}:{row['attempts']}",
            kind="owner_reconciled",
            source="system",
            mid=None,
            occurred_at=now,
            payload={"owner_app_id": owner.app_id, "outbox_id": row["id"], "expires_at": expires},
        )


def conversation_summary(conv: Mapping[str, Any]) -> dict[str, Any]:
    view = conv["view"] or {}
    return {
        "id": conv["id"],
        "account_id": conv["account_id"],
        "customer_id": conv["customer_id"],
        "state": conv["state"],
        "owner_app": conv["owner_app"],
        "locale": view.get("locale"),
    }


def _as_json(action: Any) -> dict[str, Any]:
    if isinstance(action, Mapping):
        return dict(action)
    to_json = getattr(action, "to_json", None)
    if callable(to_json):
        return dict(to_json())
    return json.loads(json.dumps(action, default=str))
