"""HTTP vendor adapter: deliveries as signed JSON POSTs to the vendor's URL.

Headers: `X-Orchestrator-Signature: sha256=<HMAC-SHA256(signing_secret, raw body)>` and
`Idempotency-Key: delivery-<id>` (the same on every retry, so vendors can dedupe). A 2xx
answer may carry `{"actions": [...]}`; vendors can also act later through the REST API.
Anything else raises, and the outbox retries in order, then dead-letters with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from orchestrator.engine.subapps import AppContext, Delivery
from orchestrator.graph.errors import HttpDeliveryError
from orchestrator.ingress import signature

TIMEOUT = aiohttp.ClientTimeout(total=10)


class HttpVendor:
    def __init__(self, ctx: AppContext) -> None:
        assert ctx.app.url and ctx.app.signing_secret
        self.url = ctx.app.url
        self._secret = ctx.app.signing_secret.value
        self._http = ctx.http

    async def handle(self, delivery: Delivery) -> Sequence[Mapping[str, Any]]:
        if self._http is None:
            raise RuntimeError("HttpVendor needs the shared HTTP session")
        body = json.dumps(delivery.to_json(), separators=(",", ":"), default=str).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Orchestrator-Signature": signature.sign(self._secret, body),
            "Idempotency-Key": f"delivery-{delivery.id}",
            "User-Agent": "ig-handover-orchestrator",
        }
        try:
            async with self._http.post(
                self.url, data=body, headers=headers, timeout=TIMEOUT
            ) as resp:
                text = await resp.text()
                if resp.status >= 300:
                    retry_after = resp.headers.get("Retry-After")
                    raise HttpDeliveryError(
                        resp.status,
                        f"vendor answered HTTP {resp.status} at {self.url}: {text[:200]}",
                        retry_after=float(retry_after)
                        if retry_after and retry_after.isdigit()
                        else None,
                    )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise HttpDeliveryError(
                0, f"vendor unreachable at {self.url}: {type(exc).__name__}: {exc}"
            ) from exc
        if not text.strip():
            return []
        try:
            answer = json.loads(text)
        except ValueError:
            return []  # a plain "ok" is fine: the vendor acts through the REST API
        actions = answer.get("actions", []) if isinstance(answer, dict) else []
        return [a for a in actions if isinstance(a, dict)]
