"""The Meta simulator's HTTP face: Graph endpoints, the `/sim/` control API and the phone page.

Graph requests are routed by path (`/{version}/{node}/{edge}`, version optional) and identified
by their token; the rules live in `world.py`, delivery in `webhooks.py`. Webhooks caused by Graph
calls are sent after answering (as Meta does); those caused by control calls are sent before
answering, so callers can rely on delivery having been attempted.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from orchestrator.simulator.config import INSTAGRAM_INBOX_APP_ID, SimApp, SimConfig
from orchestrator.simulator.errors import (
    GraphError,
    SimError,
    invalid_token,
    param_error,
    transient_error,
    unsupported_request,
)
from orchestrator.simulator.model import Outcome
from orchestrator.simulator.webhooks import (
    DeliveryPolicy,
    Faults,
    FaultSwitch,
    Target,
    WebhookDispatcher,
    verify_callback,
)
from orchestrator.simulator.world import World

STATIC_DIR = Path(__file__).parent / "static"
VERSION_RE = re.compile(r"^v\d+\.\d+$")
JSON_PARAMS = ("recipient", "message", "payload", "thread_control", "reply_to")
CONTROL_EDGES = (
    "pass_thread_control",
    "take_thread_control",
    "release_thread_control",
    "request_thread_control",
    "extend_thread_control",
)
SECRET_PARAMS = frozenset({"appsecret_proof", "verify_token", "client_secret"})
ClientSessionFactory = Callable[[], aiohttp.ClientSession]


@dataclass
class SimRuntime:
    """Everything the handlers share; one per simulator app."""

    world: World
    switch: FaultSwitch
    dispatcher: WebhookDispatcher
    initial_faults: Faults
    session_factory: ClientSessionFactory
    graph_log: deque[dict[str, Any]]
    session: aiohttp.ClientSession | None = None
    graph_seq: int = 0


RUNTIME_KEY = web.AppKey("simulator_runtime", SimRuntime)
WORLD_KEY = web.AppKey("simulator_world", World)


def _fbtrace_id() -> str:
    return "A" + secrets.token_urlsafe(16)[:22]


# ---------------------------------------------------------------- Graph API


async def _graph_params(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """Query and body merged (Meta accepts both), JSON-ish params decoded, token taken out."""
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        if request.content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except ValueError:
                    raise param_error("The request body is not valid JSON") from None
                if not isinstance(body, dict):
                    raise param_error("The request body must be a JSON object")
                params.update(body)
        else:
            params.update(dict(await request.post()))
    for key in JSON_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("{", "["):
            try:
                params[key] = json.loads(value)
            except ValueError:
                raise param_error(f"Param {key} must be a JSON object") from None
    token = params.pop("access_token", None)
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    return params, token if isinstance(token, str) else None


def _recipient_id(params: dict[str, Any]) -> str | None:
    recipient = params.get("recipient")
    if isinstance(recipient, dict):
        value = recipient.get("id")
        return None if value is None else str(value)
    return str(recipient) if recipient not in (None, "") else None


def _opt(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    return None if value in (None, "") else str(value)


def _fields(params: dict[str, Any]) -> list[str]:
    raw = params.get("fields") or ""
    return [f.strip() for f in str(raw).split(",") if f.strip()]


async def _graph_call(
    rt: SimRuntime, method: str, path: str, params: dict[str, Any], token: str | None
) -> tuple[SimApp | None, Outcome]:
    world = rt.world
    segments = [s for s in path.split("/") if s]
    if segments and VERSION_RE.match(segments[0]):
        segments.pop(0)
    if not segments or len(segments) > 2:
        raise unsupported_request(method, "/".join(segments))
    node = segments[0]
    edge = segments[1] if len(segments) == 2 else None
    cfg = world.config
    page_like = node in ("me", cfg.page_id, cfg.account_id)

    if edge == "subscriptions":  # app-level webhook config: app token `<id>|<secret>`
        app = world.app_by_app_token(token) or world.app_by_token(token)
        if app is None:
            raise invalid_token()
        world.check_rate(app.app_id)
        if node != app.app_id:
            raise unsupported_request(method, node)
        return app, await _app_subscriptions(rt, app, method, params)

    app = world.app_by_token(token)
    if app is None:
        raise invalid_token()
    world.check_rate(app.app_id)
    if edge is None:
        if method != "GET":
            raise unsupported_request(method, node)
        return app, Outcome(_node(world, node, _fields(params)))
    if not page_like:
        raise unsupported_request(method, node)
    key = (method, edge)
    igsid = _recipient_id(params)
    if key == ("POST", "messages"):
        return app, world.send(app.app_id, params)
    if method == "POST" and edge in CONTROL_EDGES:
        metadata = _opt(params, "metadata")
        if edge == "pass_thread_control":
            target = _opt(params, "target_app_id")
            return app, world.pass_thread_control(app.app_id, igsid, target, metadata)
        if edge == "take_thread_control":
            return app, world.take_thread_control(app.app_id, igsid, metadata)
        if edge == "release_thread_control":
            return app, world.release_thread_control(app.app_id, igsid, metadata)
        if edge == "request_thread_control":
            return app, world.request_thread_control(app.app_id, igsid, metadata)
        return app, world.extend_thread_control(app.app_id, igsid, params.get("duration"))
    if key == ("GET", "thread_owner"):
        return app, Outcome(world.thread_owner(app.app_id, igsid))
    if key == ("GET", "conversations"):
        result = world.conversations(
            app.app_id, _opt(params, "platform"), _opt(params, "user_id"), _fields(params)
        )
        return app, Outcome(result)
    if edge == "subscribed_apps":
        if method == "GET":
            return app, Outcome(world.subscribed_apps())
        if method == "POST":
            fields = params.get("subscribed_fields")
            return app, world.subscribe(app.app_id, fields if fields is not None else None)
        if method == "DELETE":
            return app, world.unsubscribe(app.app_id)
    if key == ("POST", "message_attachments"):
        return app, Outcome({"attachment_id": str(10**15 + secrets.randbelow(10**15))})
    raise param_error(f"Tried accessing nonexisting field ({edge}) on node type (Page)")


def _node(world: World, node: str, fields: list[str]) -> dict[str, Any]:
    cfg = world.config
    if node in ("me", cfg.page_id):
        result: dict[str, Any] = {"id": cfg.page_id}
        if "messaging_feature_status" in fields:
            result = world.feature_status()
        if "name" in fields:
            result["name"] = "Simulated Page"
        if "instagram_business_account" in fields:
            result["instagram_business_account"] = {"id": cfg.account_id}
        return result
    if node == cfg.account_id:
        return {"id": cfg.account_id, "username": "simulated_business"}
    profile = world.profile(node)
    if profile is not None:
        return profile
    raise unsupported_request("GET", node)


async def _app_subscriptions(
    rt: SimRuntime, app: SimApp, method: str, params: dict[str, Any]
) -> Outcome:
    world = rt.world
    state = world.app_states[app.app_id]
    if method == "GET":
        data = []
        if state.webhook_url:
            data.append(
                {
                    "object": "instagram",
                    "callback_url": state.webhook_url,
                    "active": True,
                    "fields": [
                        {"name": f, "version": world.config.api_version}
                        for f in sorted(state.fields)
                    ],
                }
            )
        return Outcome({"data": data})
    if method != "POST":
        raise unsupported_request(method, app.app_id)
    url = _opt(params, "callback_url")
    if url is None:
        raise param_error("The parameter callback_url is required")
    assert rt.session is not None
    error = await verify_callback(rt.session, url, _opt(params, "verify_token") or "")
    if error is not None:
        raise GraphError(2200, f"(#2200) Callback verification failed: {error}")
    world.set_webhook_url(app.app_id, url)
    if params.get("fields"):
        world.subscribe(app.app_id, str(params["fields"]))
    return Outcome({"success": True})


async def graph_handler(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME_KEY]
    method, path = request.method, request.path
    app: SimApp | None = None
    logged_params: dict[str, Any] = {}
    try:
        params, token = await _graph_params(request)
        logged_params = {k: v for k, v in params.items() if k not in SECRET_PARAMS}
        app = rt.world.app_by_token(token) or rt.world.app_by_app_token(token)
        if rt.switch.roll_5xx():
            raise transient_error()
        app, outcome = await _graph_call(rt, method, path, params, token)
        status, body, error = 200, outcome.result, None
        if outcome.webhooks:
            rt.dispatcher.submit(outcome.webhooks)  # Meta delivers after answering
    except GraphError as exc:
        status, body, error = exc.http_status, exc.body(_fbtrace_id()), exc
    rt.graph_seq += 1
    rt.graph_log.append(
        {
            "seq": rt.graph_seq,
            "time": rt.world.now,
            "method": method,
            "path": path,
            "app": app.name if app else None,
            "app_id": app.app_id if app else None,
            "params": logged_params,  # never the token (taken out by _graph_params) or secrets
            "status": status,
            "error_code": error.code if error else None,
            "error_subcode": error.subcode if error else None,
            "response": body,
        }
    )
    return web.json_response(body, status=status)


# ---------------------------------------------------------------- control API


@web.middleware
async def control_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except SimError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    except GraphError as exc:  # a world rule refused a control action
        return web.json_response(exc.body(_fbtrace_id()), status=409)


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
            outs = [world.say(igsid, str(t), username=_opt_body(body, "username")) for t in texts]
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
    inbox = _opt_body(body, "inbox_app_id") or INSTAGRAM_INBOX_APP_ID
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


# ---------------------------------------------------------------- composition


def create_simulator_app(
    config: SimConfig,
    *,
    faults: Faults | None = None,
    client_session_factory: ClientSessionFactory | None = None,
    delivery: DeliveryPolicy | None = None,
    clock: Callable[[], float] | None = None,
) -> web.Application:
    world = World(config, clock=clock) if clock is not None else World(config)
    initial = faults or Faults()
    switch = FaultSwitch(initial)

    def target(app_id: str) -> Target | None:
        app = world.apps.get(app_id)
        state = world.app_states.get(app_id)
        if app is None or state is None:
            return None
        return Target(app.app_id, app.name, state.webhook_url, app.secret)

    def disable_webhooks(app_id: str) -> None:
        world.unsubscribe(app_id)

    dispatcher = WebhookDispatcher(
        config.account_id,
        target,
        switch,
        delivery or DeliveryPolicy(),
        lambda: world.now,
        on_disable=disable_webhooks,
    )
    runtime = SimRuntime(
        world=world,
        switch=switch,
        dispatcher=dispatcher,
        initial_faults=initial,
        session_factory=client_session_factory or aiohttp.ClientSession,
        graph_log=deque(maxlen=10_000),
    )
    app = web.Application(middlewares=[control_errors])
    app[RUNTIME_KEY] = runtime
    app[WORLD_KEY] = world
    app.cleanup_ctx.append(_delivery_ctx)

    r = app.router
    r.add_get("/phone", phone)
    r.add_post("/sim/customers/{igsid}/{action}", customer_action)
    r.add_get("/sim/customers/{igsid}", customer_view)
    r.add_get("/sim/customers", customers)
    r.add_post("/sim/inbox/{igsid}/{action}", inbox_action)
    r.add_get("/sim/clock", clock_get)
    r.add_post("/sim/clock/advance", clock_advance)
    r.add_get("/sim/faults", faults_get)
    r.add_post("/sim/faults", faults_set)
    r.add_get("/sim/log/graph", log_graph)
    r.add_get("/sim/log/webhooks", log_webhooks)
    r.add_post("/sim/webhooks/flush", webhooks_flush)
    r.add_get("/sim/apps", apps_list)
    r.add_post("/sim/apps/{app_id}/webhook", app_webhook)
    r.add_post("/sim/reset", reset)
    r.add_route("*", "/{path:.*}", graph_handler)  # everything else is the Graph API
    return app


async def _delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    """One ClientSession for webhook delivery, created inside the running loop."""
    rt = app[RUNTIME_KEY]
    rt.session = rt.session_factory()
    try:
        await rt.dispatcher.start(rt.session)
        yield
    finally:
        await rt.dispatcher.stop()
        await rt.session.close()
        rt.session = None


async def run_simulator(
    config: SimConfig, host: str = "127.0.0.1", port: int = 8090, *, faults: Faults | None = None
) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(create_simulator_app(config, faults=faults))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
