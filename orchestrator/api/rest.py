"""REST API for sub-apps (vendors) under /api/v1, authenticated by a per-app API key.

Actions posted here enter the same ordered worker path as webhooks: the API stores the action
as an event of the conversation, waits (briefly) for the worker to decide, and answers with
that decision — so the answer is exactly what happened, never a guess made beside the queue.
Errors: bad key 401, unknown conversation 404, not the owner 409, window closed 422.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from orchestrator.api import submit
from orchestrator.config import AppConfig
from orchestrator.errors import StoreUnavailable
from orchestrator.store.queries import q
from orchestrator.typedefs import CLOCK, CONFIG, POOL, RUNTIME
from state_machines import ActionError, ConversationView, window_deadlines

log = structlog.get_logger(__name__)
_STATUS_BY_REFUSAL = {
    "not_owner": 409,
    "not_allowed": 409,
    "window_closed": 422,
    "human_agent_window_closed": 422,
    "private_reply_used": 422,
    "private_reply_expired": 422,
    "invalid": 400,
}


class ApiError(web.HTTPException):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        self.status_code = status
        super().__init__(
            text=web.json_response({"error": {"code": code, "message": message, **extra}}).text,
            content_type="application/json",
        )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except StoreUnavailable as exc:
        log.error("store_unavailable", path=request.path, reason=str(exc))
        return web.json_response(
            {"error": {"code": "store_unavailable", "message": "storage unavailable, retry"}},
            status=503,
        )
    except Exception:
        log.exception("request_failed", path=request.path)
        return web.json_response(
            {"error": {"code": "internal", "message": "internal error; see the service log"}},
            status=500,
        )


def _caller(request: web.Request) -> AppConfig:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <your app's api_key>'")
    app = request.app[CONFIG].app_by_api_key(header.removeprefix("Bearer ").strip())
    if app is None:
        raise ApiError(401, "unauthorized", "unknown API key")
    structlog.contextvars.bind_contextvars(app=app.name)
    return app


async def _conversation(request: web.Request) -> Any:
    raw = request.match_info["conversation_id"]
    if not raw.isdigit():
        raise ApiError(404, "unknown_conversation", f"no conversation {raw!r}")
    row = await request.app[POOL].fetchrow(q("conversation_context"), int(raw))
    if row is None:
        raise ApiError(404, "unknown_conversation", f"no conversation {raw}")
    return row


def _summary(row: Any) -> dict[str, Any]:
    view = ConversationView.from_json(row["view"]) if row["view"] else ConversationView()
    automated_until, human_until = window_deadlines(view)
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "customer_id": row["customer_id"],
        "state": row["state"],
        "owner_app": row["owner_app"],
        "human_app": view.human_app,
        "locale": view.locale,
        "last_customer_message_at": _iso(view.last_customer_message_at),
        "window": {"automated_until": _iso(automated_until), "human_until": _iso(human_until)},
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def list_conversations(request: web.Request) -> web.Response:
    _caller(request)
    limit = min(int(request.query.get("limit", "50") or 50), 500)
    rows = await request.app[POOL].fetch(
        q("list_conversations"), request.query.get("state"), request.query.get("account_id"), limit
    )
    return web.json_response(
        {"conversations": [{**dict(r), "updated_at": r["updated_at"].isoformat()} for r in rows]}
    )


async def get_conversation(request: web.Request) -> web.Response:
    _caller(request)
    row = await _conversation(request)
    messages = await request.app[POOL].fetch(q("transcript"), row["id"])
    transcript = []
    for m in messages:
        item: dict[str, Any] = {
            "mid": m["mid"],
            "direction": m["direction"],
            "author": m["author"],
            "purpose": m["purpose"],
            "at": m["created_at"].isoformat(),
        }
        if m["deleted_at"] is not None:
            item["deleted"] = True  # unsent by the customer: content erased, tombstone kept
        else:
            item["text"] = m["text"]
            item["attachments"] = m["attachments"]
        transcript.append(item)
    return web.json_response({**_summary(row), "transcript": transcript})


async def post_action(request: web.Request) -> web.Response:
    app = _caller(request)
    row = await _conversation(request)
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "bad_json", "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    verb = request.match_info.get("verb")
    if verb == "messages":
        message = body.get("message") or ({"text": body["text"]} if "text" in body else None)
        body = {"type": "reply", "message": message}
    elif verb:
        body = {**body, "type": verb}
    return await submit_action(request, app, row, body)


async def submit_action(
    request: web.Request, app: AppConfig, row: Any, action: dict[str, Any]
) -> web.Response:
    request_id = request.headers.get("Idempotency-Key") or uuid.uuid4().hex
    try:
        outcome = await submit.submit_action(
            request.app[POOL],
            request.app[RUNTIME].waker,
            request.app[CLOCK],
            app=app.name,
            account_id=row["account_id"],
            customer_id=row["customer_id"],
            action=action,
            request_id=request_id,
            origin="api",
        )
    except ActionError as exc:
        raise ApiError(400, "invalid_action", str(exc)) from None
    event_id, result = outcome.event_id, outcome.result
    if outcome.status == "queued":
        return web.json_response(
            {"status": "queued", "event_id": event_id, "conversation_id": row["id"]}, status=202
        )
    if outcome.status == "failed":
        raise ApiError(
            500, "processing_failed", f"the action could not be processed: {outcome.error}"
        )
    refusal = outcome.refusal
    if refusal:
        raise ApiError(
            _STATUS_BY_REFUSAL.get(refusal["code"], 409),
            refusal["code"],
            refusal["message"],
            rule=refusal.get("rule"),
            event_id=event_id,
        )
    return web.json_response(
        {
            "status": "accepted",
            "event_id": event_id,
            "conversation_id": row["id"],
            "transition": result.get("transition"),
            "state": result.get("state"),
            "effects": result.get("effects", []),
        }
    )


async def dead_letters(request: web.Request) -> web.Response:
    app = _caller(request)
    rows = await request.app[POOL].fetch(q("outbox_dead_list"), app.name, 200)
    return web.json_response(
        {
            "dead_letters": [
                {
                    "id": r["id"],
                    "conversation_id": r["conversation_id"],
                    "kind": r["kind"],
                    "attempts": r["attempts"],
                    "reason": r["last_error"],
                    "created_at": r["created_at"].isoformat(),
                }
                for r in rows
            ]
        }
    )


routes = [
    web.get("/api/v1/conversations", list_conversations),
    web.get("/api/v1/conversations/{conversation_id}", get_conversation),
    web.post("/api/v1/conversations/{conversation_id}/actions", post_action),
    web.post(
        "/api/v1/conversations/{conversation_id}/{verb:messages|pass|take|release|request|accept|extend}",
        post_action,
    ),
    web.get("/api/v1/dead-letters", dead_letters),
]
