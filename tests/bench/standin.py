"""A recording stand-in for Meta's Graph API, for the benchmark.

It answers what the service calls (Send API, thread control, thread_owner, the start-up
conversations check, subscribed apps, the messaging feature status) after a configurable
latency, and records every Send API call with its arrival time *before* the latency is
spent: the end-to-end figure is "POST started → Graph call reached Meta".
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.bench.service import free_port

# Called with (arrival time, recipient id, text or None) for every Send API message.
OnSend = Callable[[float, str, str | None], None]

_CONTROL = ("pass", "take", "release", "request", "extend")


@dataclass
class GraphStandIn:
    primary_app_id: str
    on_send: OnSend
    latency_s: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _runner: web.AppRunner | None = None

    def reset(self, latency_s: float, on_send: OnSend) -> None:
        self.latency_s = latency_s
        self.on_send = on_send
        self.calls = Counter()

    async def start(self, host: str = "127.0.0.1", port: int | None = None) -> str:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        port = port or free_port()
        await web.TCPSite(self._runner, host, port).start()
        return f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        arrived = time.perf_counter()
        edge = request.path.rstrip("/").rsplit("/", 1)[-1]
        body: Any = None
        if request.method == "POST" and request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response(
                    {"error": {"message": "bad JSON", "type": "OAuthException", "code": 100}},
                    status=400,
                )
        answer = self._answer(request, edge, body, arrived)
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        return web.json_response(answer)

    def _answer(self, request: web.Request, edge: str, body: Any, arrived: float) -> Any:
        method = request.method
        if method == "POST" and edge == "messages" and isinstance(body, dict):
            recipient = str((body.get("recipient") or {}).get("id", ""))
            if "sender_action" in body:
                self.calls["sender_action"] += 1
                return {"recipient_id": recipient}
            self.calls["send_message"] += 1
            message = body.get("message") or {}
            text = message.get("text") if isinstance(message, dict) else None
            self.on_send(arrived, recipient, text if isinstance(text, str) else None)
            return {"recipient_id": recipient, "message_id": f"m_bench_{next(self._ids)}"}
        if method == "POST" and edge.endswith("_thread_control") and edge.startswith(_CONTROL):
            self.calls[edge] += 1
            return {"success": True}
        if edge == "thread_owner":
            self.calls["thread_owner"] += 1
            return {"data": [{"thread_owner": {"app_id": self.primary_app_id}}]}
        if edge == "conversations":
            self.calls["conversations"] += 1
            return {"data": []}
        if edge == "subscribed_apps":
            self.calls[f"subscribed_apps_{method.lower()}"] += 1
            return {"success": True} if method == "POST" else {"data": []}
        if "messaging_feature_status" in request.query.get("fields", ""):
            self.calls["messaging_feature_status"] += 1
            return {
                "messaging_feature_status": {
                    "hop_v2": True,
                    "ig_multi_app": True,
                    "msgr_multi_app": True,
                },
                "id": edge,
            }
        self.calls[f"other {method} {edge}"] += 1
        return {}
