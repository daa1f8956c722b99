"""REST API for sub-apps (vendors) under /api/v1, authenticated by a per-app API key.

Actions posted here enter the same ordered worker path as webhooks: the API stores the action
as an event of the conversation, waits (briefly) for the worker to decide, and answers with
that decision — so the answer is exactly what happened, never a guess made beside the queue.
Every input gets an answer: bad input 400 (413 too large), bad key 401, unknown or unreadable
conversation 404, not the owner 409, window closed / reply too long / idempotency key reused
422, database unavailable 503 — always `{"error": {"code", "message"}}`. The routes are
described by `openapi.yaml`, served at /api/v1/openapi.json (and checked against this list).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from orchestrator.api import openapi, submit
from orchestrator.api import validation as v
from orchestrator.api.validation import ApiError
from orchestrator.config import AppConfig
from orchestrator.errors import StoreUnavailable
from orchestrator.store.outage import describe, is_outage
from orchestrator.store.queries import q
from orchestrator.typedefs import CLOCK, CONFIG, POOL, RUNTIME
from state_machines import ActionError, ConversationView, window_deadlines

__all__ = ["ApiError", "error_middleware", "routes"]

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
_CODES = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 400: "bad_request"}


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError:
        raise
    except web.HTTPException as exc:
        if not request.path.startswith("/api/") or exc.status_code < 400:
            raise
        # The router's own 404/405 (and aiohttp's 413) as the same JSON errors as ours.
        code = _CODES.get(exc.status_code, "http_error")
        return web.json_response(
            {"error": {"code": code, "message": exc.reason}},
            status=exc.status_code,
            headers={k: v for k, v in exc.headers.items() if k == "Allow"},
        )
    except StoreUnavailable as exc:
        log.error("store_unavailable", path=request.path, reason=str(exc))
        return _unavailable()
    except Exception as exc:
        if is_outage(exc):
            log.error("store_unavailable", path=request.path, reason=describe(exc))
            return _unavailable()
        log.exception("request_failed", path=request.path)
        return web.json_response(
            {"error": {"code": "internal", "message": "internal error; see the service log"}},
            status=500,
        )


def _unavailable() -> web.Response:
    return web.json_response(
        {"error": {"code": "store_unavailable", "message": "storage unavailable, retry"}},
        status=503,
        headers={"Retry-After": "1"},
    )


def _caller(request: web.Request) -> AppConfig:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header.isascii():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <your app's api_key>'")
    app = request.app[CONFIG].app_by_api_key(header.removeprefix("Bearer ").strip())
    if app is None:
        raise ApiError(401, "unauthorized", "unknown API key")
    structlog.contextvars.bind_contextvars(app=app.name)
    return app


def _access(request: web.Request, app: AppConfig) -> tuple[list[str], str, bool, bool]:
    """(accounts, app, reads everything of its accounts, is the primary app)."""
    config = request.app[CONFIG]
    accounts = sorted(config.account_ids())  # Instagram account ids and Messenger Page ids
    return accounts, app.name, app.can_read == "all" or app.standby, app.role == "primary"


async def _conversation(request: web.Request, app: AppConfig, *, reading: bool) -> Any:
    """The conversation of the path; 404 when it does not exist, or (`reading`) when this
    app may not read it: whether it exists is not told to apps that may not see it."""
    cid = v.conversation_id(request.match_info["conversation_id"])
    accounts, name, reads_all, primary = _access(request, app)
    row = await request.app[POOL].fetchrow(
        q("api_conversation"), cid, accounts, name, reads_all, primary
    )
    if row is None or (reading and not row["readable"]):
        raise ApiError(404, "unknown_conversation", f"no conversation {cid}")
    return row


def _summary(row: Any, channel: str | None) -> dict[str, Any]:
    view = ConversationView.from_json(row["view"]) if row["view"] else ConversationView()
    automated_until, human_until = window_deadlines(view)
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "customer_id": row["customer_id"],
        "channel": channel,
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
    app = _caller(request)
    params = v.query(request, {"state": "", "account_id": "", "limit": ""})
    limit, state = v.limit(params.get("limit")), v.state(params.get("state"))
    account = params.get("account_id") or None
    accounts, name, reads_all, primary = _access(request, app)
    rows = await request.app[POOL].fetch(
        q("api_list_conversations"), state, account, limit, accounts, name, reads_all, primary
    )
    config = request.app[CONFIG]
    return web.json_response(
        {
            "conversations": [
                {
                    **dict(r),
                    "channel": config.channel_of(r["account_id"]),
                    "updated_at": r["updated_at"].isoformat(),
                }
                for r in rows
            ]
        }
    )


async def get_conversation(request: web.Request) -> web.Response:
    app = _caller(request)
    v.query(request, {})
    row = await _conversation(request, app, reading=True)
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
    channel = request.app[CONFIG].channel_of(row["account_id"])
    return web.json_response({**_summary(row, channel), "transcript": transcript})


async def post_action(request: web.Request) -> web.Response:
    return await _post(request, None)


def _verb_handler(verb: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await _post(request, verb)

    handler.__name__ = f"post_{verb}"
    return handler


async def _post(request: web.Request, verb: str | None) -> web.Response:
    app = _caller(request)
    v.query(request, {})
    key = v.idempotency_key(request.headers.get("Idempotency-Key"))
    row = await _conversation(request, app, reading=False)
    body = await v.json_object(request)
    if verb == "messages":
        for name in body:
            if name not in ("text", "message"):
                raise ApiError(400, "invalid_action", f"{name}: unknown field (text or message)")
        message = body.get("message") or ({"text": body["text"]} if "text" in body else None)
        body = {"type": "reply", "message": message}
    elif verb:
        body = {**body, "type": verb}
    return await submit_action(request, app, row, body, key)


async def submit_action(
    request: web.Request,
    app: AppConfig,
    row: Any,
    action: dict[str, Any],
    key: str | None = None,
) -> web.Response:
    """An app's action through the one submit path (`api/submit.py`), answered with the
    worker's actual decision."""
    try:
        outcome = await submit.submit_action(
            request.app[POOL],
            request.app[RUNTIME].waker,
            request.app[CLOCK],
            app=app.name,
            account_id=row["account_id"],
            customer_id=row["customer_id"],
            conversation_id=row["id"],
            action=action,
            request_id=key or uuid.uuid4().hex,
            origin="api",
            max_reply_parts=request.app[CONFIG].service.max_reply_parts,
        )
    except ActionError as exc:
        raise ApiError(400, "invalid_action", str(exc)) from None
    except submit.ReplyTooLong as exc:
        raise ApiError(
            422, "reply_too_long", str(exc), parts=exc.parts, max_parts=exc.max_parts
        ) from None
    except submit.KeyReused as exc:
        raise ApiError(422, "idempotency_key_reused", str(exc), event_id=exc.event_id) from None
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
    v.query(request, {})
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


VERBS = ("messages", "accept", "pass", "take", "release", "request", "extend")
routes = [
    web.get("/api/v1/openapi.json", openapi.serve),
    web.get("/api/v1/conversations", list_conversations),
    web.get("/api/v1/conversations/{conversation_id}", get_conversation),
    web.post("/api/v1/conversations/{conversation_id}/actions", post_action),
    *(
        web.post(f"/api/v1/conversations/{{conversation_id}}/{verb}", _verb_handler(verb))
        for verb in VERBS
    ),
    web.get("/api/v1/dead-letters", dead_letters),
]
