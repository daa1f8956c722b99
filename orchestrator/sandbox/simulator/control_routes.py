"""The simulator's control API under `/sim/` (customers, the Instagram Inbox, clock, faults,
logs, apps, reset) and the `/phone` page that drives it.

Webhooks caused by control calls are delivered before answering, so callers can rely on
delivery having been attempted; the answer lists those deliveries.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

from aiohttp import web

from orchestrator.sandbox.simulator.errors import SimError
from orchestrator.sandbox.simulator.model import Outcome
from orchestrator.sandbox.simulator.runtime import RUNTIME_KEY, SimRuntime
from orchestrator.sandbox.simulator.webhooks import verify_callback

STATIC_DIR = Path(__file__).parent / "static"


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise SimError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise SimError("the body must be a JSON object")
    return body


def _need(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value in (None, ""):
        raise SimError(f"{key!r} is required")
    return value


def _opt_body(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return None if value in (None, "") else str(value)


async def _answer(rt: SimRuntime, outcome: Outcome) -> web.Response:
    records = await rt.dispatcher.deliver(outcome.webhooks)
    deliveries = [
        {
            k: r.get(k)
            for k in ("seq", "app", "url", "attempt", "redelivery", "status", "ok", "error")
        }
        for r in records
    ]
    return web.json_response({**outcome.result, "deliveries": deliveries})


def _merge(outcomes: list[Outcome], result: dict[str, Any]) -> Outcome:
    return Outcome(result, tuple(w for o in outcomes for w in o.webhooks))


async def customer_action(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME_KEY]
    world = rt.world
    igsid = request.match_info["igsid"]
    action = request.match_info["action"]
    body = await _json_body(request)
    outcome: Outcome
    if action == "say":
        texts = body.get("texts")
        if isinstance(texts, list) and texts:  # a burst, delivered together
            outs = [
                world.say(
                    igsid,
                    str(t),
                    username=_opt_body(body, "username"),
                    channel=_opt_body(body, "channel"),
                )
                for t in texts
            ]
            mids = [o.result["mid"] for o in outs]
            outcome = _merge(outs, {"mid": mids[-1], "mids": mids})
        else:
            attachments = body.get("attachments")
            outcome = world.say(
                igsid,
                _opt_body(body, "text"),
                _opt_body(body, "quick_reply_payload"),
                reply_to=_opt_body(body, "reply_to"),
                attachments=attachments if isinstance(attachments, list) else None,
                username=_opt_body(body, "username"),
                channel=_opt_body(body, "channel"),
            )
    elif action == "react":
        outcome = world.react(igsid, str(_need(body, "mid")), str(body.get("reaction") or "love"))
    elif action == "unreact":
        outcome = world.unreact(igsid, str(_need(body, "mid")))
    elif action == "unsend":
        outcome = world.unsend(igsid, str(_need(body, "mid")))
    elif action == "edit":
        outcome = world.edit(igsid, str(_need(body, "mid")), str(_need(body, "text")))
    elif action == "postback":
        payload = str(_need(body, "payload"))
        outcome = world.postback(igsid, payload, str(body.get("title") or payload))
    elif action == "read":
        outcome = world.read(igsid, _opt_body(body, "mid"))
    elif action == "open_link":
        outcome = world.open_link(igsid, str(_need(body, "ref")))
    elif action == "comment":
        outcome = world.comment(
            igsid,
            str(_need(body, "text")),
            _opt_body(body, "media_id"),
            parent_id=_opt_body(body, "parent_id"),
            username=_opt_body(body, "username"),
        )
    else:
        raise SimError(f"unknown customer action {action!r}", 404)
    return await _answer(rt, outcome)


async def inbox_action(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME_KEY]
    world = rt.world
    igsid = request.match_info["igsid"]
    action = request.match_info["action"]
    body = await _json_body(request)
    # Meta's inbox of the thread's channel: the Page Inbox for a Messenger customer.
    inbox = _opt_body(body, "inbox_app_id") or world.inbox_of(igsid)
    if action == "take":
        outcome = world.inbox_take(igsid, _opt_body(body, "metadata"), inbox_app_id=inbox)
    elif action == "reply":
        outcome = world.inbox_reply(igsid, str(_need(body, "text")), inbox_app_id=inbox)
    elif action == "pass":
        outcome = world.inbox_pass(
            igsid,
            _opt_body(body, "target_app_id"),
            _opt_body(body, "metadata"),
            inbox_app_id=inbox,
        )
    elif action == "release":
        outcome = world.inbox_release(igsid, _opt_body(body, "metadata"), inbox_app_id=inbox)
    elif action == "request":
        outcome = world.inbox_request(igsid, _opt_body(body, "metadata"), inbox_app_id=inbox)
    else:
        raise SimError(f"unknown inbox action {action!r}", 404)
    return await _answer(rt, outcome)


async def customer_view(request: web.Request) -> web.Response:
    world = request.app[RUNTIME_KEY].world
    return web.json_response(world.customer_view(request.match_info["igsid"]))


async def customers(request: web.Request) -> web.Response:
    world = request.app[RUNTIME_KEY].world
    rows = [
        {
            "igsid": t.igsid,
            "username": t.username,
            "owner_app_id": (world.thread(t.igsid) or t).owner,
        }
        for t in list(world.threads.values())
    ]
    return web.json_response({"data": rows})


async def clock_get(request: web.Request) -> web.Response:
    return web.json_response({"now": request.app[RUNTIME_KEY].world.now})


async def clock_advance(request: web.Request) -> web.Response:
    body = await _json_body(request)
    seconds = _need(body, "seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise SimError("'seconds' must be a number")
    return web.json_response({"now": request.app[RUNTIME_KEY].world.advance(float(seconds))})


async def faults_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[RUNTIME_KEY].switch.faults.as_dict())


async def faults_set(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME_KEY]
    body = await _json_body(request)
    rt.switch.set(rt.switch.faults.updated(body))
    return web.json_response(rt.switch.faults.as_dict())


def _filtered(log: deque[dict[str, Any]], request: web.Request) -> list[dict[str, Any]]:
    rows = list(log)
    app = request.query.get("app")
    if app:
        rows = [r for r in rows if app in (r.get("app"), r.get("app_id"))]
    since = request.query.get("since")
    if since and since.isdigit():
        rows = [r for r in rows if r["seq"] > int(since)]
    return rows


async def log_graph(request: web.Request) -> web.Response:
    return web.json_response({"data": _filtered(request.app[RUNTIME_KEY].graph_log, request)})


async def log_webhooks(request: web.Request) -> web.Response:
    return web.json_response({"data": _filtered(request.app[RUNTIME_KEY].dispatcher.log, request)})


async def webhooks_flush(request: web.Request) -> web.Response:
    await request.app[RUNTIME_KEY].dispatcher.flush()
    return web.json_response({"flushed": True})


async def apps_list(request: web.Request) -> web.Response:
    world = request.app[RUNTIME_KEY].world
    rows = []
    for app in world.apps.values():  # never tokens or secrets
        state = world.app_states.get(app.app_id)
        rows.append(
            {
                "app_id": app.app_id,
                "name": app.name,
                "is_default": app.app_id == world.default_app_id,
                "can_take": app.can_take,
                "ours": state is not None,
                "webhook_url": state.webhook_url if state else None,
                "subscribed": state.subscribed if state else False,
                "subscribed_fields": sorted(state.fields) if state else [],
            }
        )
    return web.json_response({"data": rows})


async def app_webhook(request: web.Request) -> web.Response:
    """Register (or clear, with `url: null`) an app's callback URL; with `verify_token`, Meta's
    `hub.challenge` check runs first."""
    rt = request.app[RUNTIME_KEY]
    app_id = request.match_info["app_id"]
    body = await _json_body(request)
    url = _opt_body(body, "url")
    token = _opt_body(body, "verify_token")
    if url is not None and token is not None:
        assert rt.session is not None
        error = await verify_callback(rt.session, url, token)
        if error is not None:
            raise SimError(f"callback verification failed: {error}", 409)
    rt.world.set_webhook_url(app_id, url)
    return web.json_response({"app_id": app_id, "webhook_url": url})


async def reset(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME_KEY]
    body = await _json_body(request)
    await rt.dispatcher.flush()
    rt.world.reset(apps=bool(body.get("apps")))
    rt.switch.set(rt.initial_faults)
    rt.dispatcher.clear()
    rt.graph_log.clear()
    return web.json_response({"reset": True, "now": rt.world.now})


async def phone(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "phone.html")
