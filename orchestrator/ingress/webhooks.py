"""Webhook ingress: verify, record, acknowledge — nothing else on the request path."""

from __future__ import annotations

import hmac

import structlog
from aiohttp import web

from orchestrator.errors import StoreUnavailable
from orchestrator.ingress import signature
from orchestrator.ingress.parser import MalformedJSON, parse_body
from orchestrator.store.intake import store_webhook
from orchestrator.typedefs import CONFIG, METRICS, POOL, RUNTIME

log = structlog.get_logger(__name__)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def verify_subscription(request: web.Request) -> web.StreamResponse:
    """Meta's GET handshake: echo `hub.challenge` when the verify token matches."""
    config = request.app[CONFIG]
    name = request.match_info["app"]
    app = config.app(name)
    if app is None:
        return _error(404, "unknown_app", f"no app named {name!r} is registered")
    params = request.query
    mode, token = params.get("hub.mode"), params.get("hub.verify_token", "")
    challenge = params.get("hub.challenge", "")

    if mode != "subscribe" or not hmac.compare_digest(
        token.encode(), app.verify_token.value.encode()
    ):
        log.warning("webhook_verification_refused", app=name, mode=mode)
        return _error(
            403,
            "verification_failed",
            "hub.mode must be 'subscribe' and hub.verify_token must match the app's verify_token",
        )
    log.info("webhook_verified", app=name)
    return web.Response(text=challenge, content_type="text/plain")


async def receive(request: web.Request) -> web.StreamResponse:
    config, metrics = request.app[CONFIG], request.app[METRICS]
    name = request.match_info["app"]
    structlog.contextvars.bind_contextvars(app=name)
    app = config.app(name)
    if app is None:
        metrics.webhooks.labels("unknown", "unknown_app").inc()
        return _error(404, "unknown_app", f"no app named {name!r} is registered")
    if (
        request.content_length is not None
        and request.content_length > config.service.max_body_bytes
    ):
        metrics.webhooks.labels(name, "too_large").inc()
        log.warning("webhook_too_large", size=request.content_length)
        return _error(413, "too_large", f"body over {config.service.max_body_bytes} bytes")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        metrics.webhooks.labels(name, "too_large").inc()
        log.warning("webhook_too_large")
        return _error(413, "too_large", f"body over {config.service.max_body_bytes} bytes")
    if not signature.verify(app.app_secret.value, body, request.headers.get("X-Hub-Signature-256")):
        metrics.webhooks.labels(name, "bad_signature").inc()
        present = "X-Hub-Signature-256" in request.headers
        log.warning("webhook_signature_rejected", header_present=present, size=len(body))
        return _error(
            401,
            "bad_signature",
            "X-Hub-Signature-256 must be sha256=HMAC-SHA256(app secret, raw body)"
            if present
            else "missing X-Hub-Signature-256 header",
        )
    try:
        parsed = parse_body(body)
    except MalformedJSON as exc:
        metrics.webhooks.labels(name, "bad_json").inc()
        log.warning("webhook_bad_json", reason=str(exc))
        return _error(400, "bad_json", f"body is not valid JSON: {exc}")
    raw_problem = None
    if not parsed.shape_ok:
        raw_problem = (body.decode("utf-8", "replace"), "; ".join(parsed.problems))
    try:
        result = await store_webhook(request.app[POOL], name, parsed.events, raw_problem)
    except StoreUnavailable as exc:
        metrics.webhooks.labels(name, "store_unavailable").inc()
        log.error("webhook_not_stored", reason=str(exc))
        # Not acknowledged: Meta redelivers, and nothing was half-stored (one transaction).
        return _error(503, "store_unavailable", "storage unavailable, retry later")
    if result.stored:
        request.app[RUNTIME].waker.poke()
    outcome = "flagged" if raw_problem or parsed.problems else "stored"
    metrics.webhooks.labels(name, outcome).inc()
    for kind, n in result.kinds.items():
        metrics.events_stored.labels(kind).inc(n)
    metrics.events_duplicate.inc(result.duplicates)
    log.info(
        "webhook_received",
        outcome=outcome,
        items=len(parsed.events),
        stored=result.stored,
        duplicates=result.duplicates,
        problems=list(parsed.problems)[:10] or None,
    )
    return web.json_response(
        {
            "stored": result.stored,
            "duplicates": result.duplicates,
            "problems": list(parsed.problems),
        }
    )
