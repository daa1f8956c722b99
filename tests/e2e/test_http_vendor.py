"""A helpdesk vendor reached over HTTP: signed, ordered deliveries with idempotency keys, and
actions both in the delivery answer and through the REST API."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from orchestrator.ingress.signature import verify
from orchestrator.sandbox.runner import Sandbox
from tests.conftest import TEST_ENV, config_data, make_config

CUSTOMER = "5550000000000077"


class Vendor:
    """A minimal helpdesk: records deliveries, accepts every handover it is offered."""

    def __init__(self) -> None:
        self.deliveries: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.keys: list[str] = []

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not verify(
            TEST_ENV["SUPPORT_SIGNING_SECRET"],
            body,
            request.headers.get("X-Orchestrator-Signature"),
        ):
            self.bad_signatures += 1
            return web.Response(status=401)
        delivery = json.loads(body)
        self.deliveries.append(delivery)
        self.keys.append(request.headers["Idempotency-Key"])
        if delivery["event"].get("type") == "handover_requested":
            return web.json_response(
                {
                    "actions": [
                        {"type": "accept"},
                        {"type": "reply", "message": {"text": "Hallo, hier ist Ben vom Helpdesk."}},
                    ]
                }
            )
        return web.json_response({})


async def test_vendor_gets_signed_ordered_deliveries_and_acts_in_its_answer(db_url: str) -> None:
    vendor = Vendor()
    app = web.Application()
    app.router.add_post("/hook", vendor.hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        data = config_data()
        data["apps"][1]["url"] = str(server.make_url("/hook"))
        data["apps"][1]["signing_secret"] = "${SUPPORT_SIGNING_SECRET}"
        async with Sandbox(make_config(data), db_url) as sb:
            for text in ("Hallo", "Erste Frage", "Ich möchte mit einem Menschen sprechen"):
                await sb.sim("POST", f"/sim/customers/{CUSTOMER}/say", {"text": text})
                await sb.settle()
            row = await sb.conversation(CUSTOMER)
            assert row["state"] == "human" and row["owner_app"] == "support"
            view = await sb.sim("GET", f"/sim/customers/{CUSTOMER}")
            assert view["received"][-1]["text"] == "Hallo, hier ist Ben vom Helpdesk."
            await sb.sim("POST", f"/sim/customers/{CUSTOMER}/say", {"text": "Danke, Ben!"})
            await sb.settle()
    finally:
        await server.close()
    assert vendor.bad_signatures == 0
    kinds = [(d["event"].get("type"), d["standby"]) for d in vendor.deliveries]
    assert kinds == [
        ("message", True),  # standby copies while the bot owns the thread
        ("message", True),
        ("handover_requested", False),
        ("message", False),  # now it owns the thread
    ]
    assert [
        d["event"].get("text") for d in vendor.deliveries if d["event"].get("type") == "message"
    ] == ["Hallo", "Erste Frage", "Danke, Ben!"]
    assert len(set(vendor.keys)) == len(vendor.keys)  # one idempotency key per delivery
    assert all(
        k == f"delivery-{d['delivery_id']}"
        for k, d in zip(vendor.keys, vendor.deliveries, strict=True)
    )
