"""A stand-in for Meta's Graph API and for a sub-app vendor, on loopback, with faults.

Graph: every Send API call is recorded (recipient, text, order); thread-control calls and
reads answer plausibly. Faults are planned per Send API call number (`graph_faults`: a
transient 500 or a 613 throttle, Meta's error bodies).

Vendor: the primary app is an HTTP vendor at `/vendor` that echoes every customer message
(`echo: <text>`) as a reply action, remembers its answers per Idempotency-Key (as a vendor
that dedupes would), and can be down (`vendor_down`: 503).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TRANSIENT = {
    "error": {
        "message": "An unexpected error has occurred.",
        "type": "OAuthException",
        "code": 2,
        "is_transient": True,
        "fbtrace_id": "F",
    }
}
THROTTLED = {
    "error": {
        "message": "Calls to this api have exceeded the rate limit.",
        "type": "OAuthException",
        "code": 613,
        "fbtrace_id": "F",
    }
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class StandIn:
    graph_faults: dict[int, str] = field(default_factory=dict)  # send call number → fault
    vendor_down: bool = False
    sends: list[tuple[str, str]] = field(default_factory=list)  # (recipient, text) in order
    send_calls: int = 0
    graph_5xx_sent: int = 0
    graph_613_sent: int = 0
    vendor_503_sent: int = 0
    deliveries: Counter[str] = field(default_factory=Counter)
    _answers: dict[str, Any] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/vendor", self.vendor)
        app.router.add_post("/{version}/{node}/messages", self.messages)
        app.router.add_route("*", "/{tail:.*}", self.other)
        return app

    async def start(self) -> str:
        self.port = free_port()
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.url = f"http://127.0.0.1:{self.port}"
        return self.url

    async def stop(self) -> None:
        await self.runner.cleanup()

    # -- Graph ---------------------------------------------------------------------------

    async def messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        text = (body.get("message") or {}).get("text")
        recipient = str((body.get("recipient") or {}).get("id"))
        if text is None:  # sender actions, reactions
            return web.json_response({"recipient_id": recipient})
        self.send_calls += 1
        fault = self.graph_faults.get(self.send_calls)
        if fault == "5xx":
            self.graph_5xx_sent += 1
            return web.json_response(TRANSIENT, status=500)
        if fault == "613":
            self.graph_613_sent += 1
            return web.json_response(THROTTLED, status=400)
        self.sends.append((recipient, text))
        return web.json_response({"recipient_id": recipient, "message_id": f"m_{next(self._ids)}"})

    async def other(self, request: web.Request) -> web.Response:
        node = request.match_info["tail"].split("/")[-1]
        if request.method == "POST":
            return web.json_response({"success": True})
        return web.json_response({"id": node, "data": [], "username": "shop", "name": "shop"})

    # -- vendor --------------------------------------------------------------------------

    async def vendor(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key", "")
        if self.vendor_down:
            self.vendor_503_sent += 1
            return web.json_response({"error": "down for maintenance"}, status=503)
        self.deliveries[key] += 1
        if key in self._answers:
            return web.json_response(self._answers[key])
        delivery = json.loads(await request.read())
        event = delivery.get("event") or {}
        kind = event.get("type") or event.get("kind")
        answer: dict[str, Any] = {"actions": []}
        if kind == "message" and not delivery.get("standby") and event.get("text"):
            answer["actions"] = [{"type": "reply", "message": {"text": f"echo: {event['text']}"}}]
        self._answers[key] = answer
        await asyncio.sleep(0)
        return web.json_response(answer)

    # -- reading -------------------------------------------------------------------------

    def echoes(self) -> Counter[str]:
        return Counter(t.removeprefix("echo: ") for _, t in self.sends if t.startswith("echo: "))

    def echo_order(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for recipient, text in self.sends:
            if text.startswith("echo: "):
                out.setdefault(recipient, []).append(text.removeprefix("echo: "))
        return out
