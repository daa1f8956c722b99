"""Webhook ingress: verify, record, acknowledge — nothing else on the request path."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

import structlog
from aiohttp import web

from orchestrator.errors import StoreUnavailable
from orchestrator.ingress import signature
from orchestrator.ingress.accounts import UnknownAccount, unknown_accounts
from orchestrator.ingress.decode import MalformedJSON, decode_webhook
from orchestrator.ingress.events import Event
from orchestrator.ingress.parser import parse_payload
from orchestrator.store.intake import IntakeResult, store_raw, store_webhook
from orchestrator.typedefs import CONFIG, INTAKE, METRICS, POOL, RUNTIME

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
    # Signed: these are the bytes Meta sent, and Meta would send the same bytes again for an
    # hour. From here on only an unavailable database keeps us from answering 200.
    events: Sequence[Event] = ()
    unknown: list[UnknownAccount] = []
    try:
        decoded = decode_webhook(body)
    except MalformedJSON as exc:
        problems = [f"not JSON: {exc}"]
        store = store_raw(request.app[POOL], name, body, problems[0])
    else:
        parsed = parse_payload(decoded.value)
        events, problems = parsed.events, [*decoded.problems, *parsed.problems]
        store = store_webhook(
            request.app[POOL], name, body, events, tuple(problems), group=request.app.get(INTAKE)
        )
        unknown = unknown_accounts(config, events)
    try:
        result: IntakeResult = await store
    except StoreUnavailable as exc:
        metrics.webhooks.labels(name, "store_unavailable").inc()
        # The reason names the error class and SQLSTATE only, never content.
        log.error("webhook_not_stored", reason=str(exc), size=len(body))
        # Not acknowledged: Meta redelivers, and nothing was half-stored (one statement).
        return _error(503, "store_unavailable", "storage unavailable, retry later")
    # Items of accounts not in the config are stored whole (no extra copy of the bytes in
    # raw_deliveries), but would never be processed: said here, once per id and POST.
    for item in unknown:
        metrics.unknown_accounts.labels(item.object).inc(len(item.items))
        log.warning(
            "webhook_for_unknown_account",
            account_id=item.account_id,
            object=item.object,
            items=len(item.items),
            reason=item.reason,
        )
        problems.append(item.problem())
    for event in events:
        if event.kind == "policy_enforcement":
            # Meta warned, blocked or unblocked the Page (Messenger): an operator must see it.
            log.warning(
                "messenger_policy_enforcement",
                account_id=event.account_id,
                action=getattr(event, "action", None),
                reason=getattr(event, "reason", None),
            )
    if result.stored:
        request.app[RUNTIME].waker.poke()
    outcome = "flagged" if problems or result.quarantined or result.raw_only else "stored"
    metrics.webhooks.labels(name, outcome).inc()
    for kind, n in result.kinds.items():
        metrics.events_stored.labels(kind).inc(n)
    metrics.events_duplicate.inc(result.duplicates)
    # Counts only: problem notes quote values, and values are customer content.
    log.info(
        "webhook_received",
        outcome=outcome,
        items=len(events),
        stored=result.stored,
        duplicates=result.duplicates,
        quarantined=result.quarantined or None,
        raw_only=result.raw_only or None,
        problems=len(problems) or None,
    )
    return web.json_response(
        {
            "stored": result.stored,
            "duplicates": result.duplicates,
            "quarantined": result.quarantined,
            "raw_only": result.raw_only,
            "problems": problems[:100],
        }
    )
