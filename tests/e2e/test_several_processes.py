"""Several `orchestrator serve` processes on one database: order and exactly-once.

Three real processes share a fresh database; signed webhooks for the same conversations are
posted to all three at once (as Meta would spread them over a load balancer), while a Graph
stand-in on loopback records every Send API call. Every customer message must be answered
exactly once, each conversation's answers in the order of its messages, and each
conversation must get exactly one disclosure, whichever process handled what.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from orchestrator.sandbox.runner import _free_port
from tests.conftest import ACCOUNT_ID, ROOT, TEST_ENV, signed, wait_for

PROCESSES = 3
CONVERSATIONS = 12
MESSAGES_EACH = 15


def _config(graph_url: str) -> str:
    return f"""
[service]
mode = "live"
public_url = "https://orchestrator.example.test"
facebook_graph_url = "{graph_url}"
instagram_graph_url = "{graph_url}"
workers = 2
max_in_flight = 64

[disclosure]
text = {{ en = "You are chatting with an automated assistant." }}

[rate_limits]
send_text = 10000
thread_control = 10000
conversations = 10000

[[accounts]]
name = "shop"
instagram_account_id = "{ACCOUNT_ID}"
page_id = "100000000000001"
locale = "en"
login = "facebook"

[[apps]]
name = "bot"
app_id = "1111111111"
role = "primary"
kind = "bot"
handler = "apps.echo_bot:EchoBot"
app_secret = "${{BOT_APP_SECRET}}"
verify_token = "${{BOT_VERIFY_TOKEN}}"
page_token = "${{BOT_PAGE_TOKEN}}"
"""


class GraphStandIn:
    """Records every Send API call; answers after a small random delay so that calls of
    different processes interleave."""

    def __init__(self) -> None:
        self.sends: list[tuple[str, str]] = []  # (recipient, text)
        self.rng = random.Random(3)

    async def messages(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(self.rng.random() / 100)
        self.sends.append((body["recipient"]["id"], body["message"].get("text", "")))
        return web.json_response(
            {"recipient_id": body["recipient"]["id"], "message_id": f"m{len(self.sends)}"}
        )

    async def anything(self, request: web.Request) -> web.Response:
        return web.json_response({"data": []})


@pytest.fixture
async def graph() -> AsyncIterator[tuple[GraphStandIn, str]]:
    stand_in = GraphStandIn()
    app = web.Application()
    app.router.add_post("/{version}/{page}/messages", stand_in.messages)
    app.router.add_route("*", "/{tail:.*}", stand_in.anything)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield stand_in, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def _body(customer: str, seq: int, base_ms: int) -> dict[str, Any]:
    return {
        "object": "instagram",
        "entry": [
            {
                "id": ACCOUNT_ID,
                "time": base_ms,
                "messaging": [
                    {
                        "sender": {"id": customer},
                        "recipient": {"id": ACCOUNT_ID},
                        "timestamp": base_ms + seq,
                        "message": {"mid": f"mid-{customer}-{seq}", "text": f"{customer}:{seq}"},
                    }
                ],
            }
        ],
    }


async def test_three_processes_answer_every_message_once_and_in_order(
    db_url: str, graph: tuple[GraphStandIn, str], tmp_path: Path
) -> None:
    stand_in, graph_url = graph
    config = tmp_path / "orchestrator.toml"
    config.write_text(_config(graph_url))
    ports = [_free_port() for _ in range(PROCESSES)]
    procs = []
    for port in ports:
        env = {
            **os.environ,
            **TEST_ENV,
            "ORCHESTRATOR_CONFIG": str(config),
            "DATABASE_URL": db_url,
            "PORT": str(port),
        }
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "orchestrator",
                "serve",
                cwd=ROOT,
                env=env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        )
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                for port in ports:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                            if resp.status != 200:
                                return False
                    except aiohttp.ClientError:
                        return False
                return True

            await wait_for(ready, timeout=60, interval=0.2)
            base_ms = int(time.time() * 1000)
            customers = [f"77{i:014d}" for i in range(CONVERSATIONS)]

            async def post(customer: str, seq: int) -> None:
                port = ports[(seq + int(customer[-3:])) % PROCESSES]
                raw, headers = signed(_body(customer, seq, base_ms))
                async with http.post(
                    f"http://127.0.0.1:{port}/webhooks/bot", data=raw, headers=headers
                ) as resp:
                    assert resp.status == 200, await resp.text()

            async def customer_writes(customer: str) -> None:
                # Each message is posted to a different process; consecutive messages of one
                # customer race through different processes, as Meta's would.
                for seq in range(MESSAGES_EACH):
                    await post(customer, seq)
                    # Meta redelivers now and then: duplicates must not be answered twice.
                    if seq % 5 == 0:
                        await post(customer, seq)

            await asyncio.gather(*(customer_writes(c) for c in customers))
            expected = CONVERSATIONS * (MESSAGES_EACH + 1)  # + one disclosure each

            async def all_answered() -> bool:
                return len(stand_in.sends) >= expected

            await wait_for(all_answered, timeout=120, interval=0.1)
            await asyncio.sleep(1.0)  # anything sent twice would arrive now
    finally:
        for p in procs:
            if p.returncode is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            await asyncio.wait_for(p.wait(), 30)

    by_customer: dict[str, list[str]] = {}
    for recipient, text in stand_in.sends:
        by_customer.setdefault(recipient, []).append(text)
    assert len(stand_in.sends) == expected, json.dumps(by_customer)[:2000]
    for customer in customers:
        texts = by_customer[customer]
        assert texts[0] == "You are chatting with an automated assistant."
        assert texts[1:] == [f"{customer}:{seq}" for seq in range(MESSAGES_EACH)], texts
