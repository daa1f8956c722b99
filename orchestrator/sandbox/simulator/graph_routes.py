"""The simulated Graph API endpoints: every request not under `/sim/` or `/phone`.

Requests are routed by path (`/{version}/{node}/{edge}`, version optional) and identified by
their token; the rules live in `world.py`. Webhooks caused by Graph calls are handed to the
dispatcher after answering, as Meta does. Every call is kept in the Graph log, never with its
token or secrets.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from aiohttp import web

from orchestrator.sandbox.simulator.config import SimApp
from orchestrator.sandbox.simulator.errors import (
    GraphError,
    invalid_token,
    param_error,
    rate_limited,
    transient_error,
    unsupported_request,
)
from orchestrator.sandbox.simulator.model import Outcome
from orchestrator.sandbox.simulator.runtime import RUNTIME_KEY, SimRuntime
from orchestrator.sandbox.simulator.webhooks import verify_callback
from orchestrator.sandbox.simulator.world import World

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


def _fbtrace_id() -> str:
    return "A" + secrets.token_urlsafe(16)[:22]


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

    if node == "debug_token" and edge is None:  # needs an app token (docs/platform.md 12)
        app = world.app_by_app_token(token)
        if app is None:
            raise invalid_token()
        return app, Outcome(_debug_token(world, app, _opt(params, "input_token")))

    app = world.app_by_token(token)
    if app is None or not world.app_states[app.app_id].token_valid:
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
        if not cfg.messaging_available:
            raise GraphError(36103, "(#36103) Messaging is not available for this account")
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


def _debug_token(world: World, caller: SimApp, input_token: str | None) -> dict[str, Any]:
    """Meta's token inspection: `{"data": {...}}`; an unknown token is `is_valid: false`."""
    if input_token is None:
        raise param_error("The parameter input_token is required")
    app = world.app_by_token(input_token)
    if app is None or app.app_id != caller.app_id:
        # Meta answers for tokens of the calling app only; any other token is invalid to it.
        return {
            "data": {
                "is_valid": False,
                "error": {"code": 190, "message": "Invalid OAuth access token."},
            }
        }
    state = world.app_states[app.app_id]
    data: dict[str, Any] = {
        "app_id": app.app_id,
        "type": "PAGE",
        "application": app.name,
        "data_access_expires_at": 0,
        "expires_at": 0,
        "is_valid": state.token_valid,
        "issued_at": int(world.now) - 3600,
        "profile_id": world.config.page_id,
        "scopes": sorted(state.scopes),
        "user_id": "10000000000042",
    }
    if not state.token_valid:
        data["error"] = {"code": 190, "message": "Error validating access token."}
    return {"data": data}


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
            # One callback for both webhook objects: the Instagram account's and the Page's
            # (Messenger) events reach the same /webhooks/<app> route.
            for obj in ("instagram", "page"):
                data.append(
                    {
                        "object": obj,
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
        if rt.switch.roll_613():
            raise rate_limited()
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
