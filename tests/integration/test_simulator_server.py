"""The Meta simulator over real sockets on 127.0.0.1: Graph calls, control API, signed webhooks
to a recording receiver, faults, and the phone page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from orchestrator.sandbox.simulator import (
    DeliveryPolicy,
    Faults,
    SimApp,
    SimConfig,
    create_simulator_app,
    verify_signature,
)
from orchestrator.sandbox.simulator.world import DAY_S

ACCOUNT = "17841400000000001"
PAGE = "100000000000001"
BOT, AGENT = "1001", "2002"
SECRETS = {"bot": "bot-secret-\u00e9", "agent": "agent-secret"}
CUSTOMER = "9100000000000001"
VERIFY_TOKEN = "let-me-in"


@dataclass
class Received:
    app: str
    body: bytes
    headers: dict[str, str]
    signature_ok: bool

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Plays the orchestrator's webhook endpoints: verifies signatures, records every POST."""

    posts: list[Received] = field(default_factory=list)
    fail_next: dict[str, int] = field(default_factory=dict)  # app → how many 500s to answer

    def of(self, app: str) -> list[Received]:
        return [p for p in self.posts if p.app == app]

    def items(self, app: str) -> list[tuple[str, dict[str, Any]]]:
        """(channel, item) of every entry of every POST to `app`, in arrival order."""
        out: list[tuple[str, dict[str, Any]]] = []
        for post in self.of(app):
            for entry in post.json["entry"]:
                for channel in ("messaging", "standby", "changes"):
                    out.extend((channel, item) for item in entry.get(channel, []))
        return out

    async def handle(self, request: web.Request) -> web.Response:
        app = request.match_info["app"]
        if request.method == "GET":  # Meta's subscription check
            if request.query.get("hub.verify_token") != VERIFY_TOKEN:
                return web.Response(status=403)
            return web.Response(text=request.query["hub.challenge"])
        body = await request.read()
        ok = verify_signature(body, request.headers.get("X-Hub-Signature-256"), SECRETS[app])
        self.posts.append(Received(app, body, dict(request.headers), ok))
        if self.fail_next.get(app, 0) > 0:
            self.fail_next[app] -= 1
            return web.Response(status=500)
        return web.Response(text="EVENT_RECEIVED")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    rec = Receiver()
    app = web.Application()
    app.router.add_route("*", "/hooks/{app}", rec.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield rec, str(server.make_url("/hooks"))


def sim_config(base: str, **overrides: Any) -> SimConfig:
    apps = (
        SimApp("bot", BOT, SECRETS["bot"], "bot-token", f"{base}/bot", is_default=True),
        SimApp("agent", AGENT, SECRETS["agent"], "agent-token", f"{base}/agent", can_take=True),
    )
    return SimConfig(ACCOUNT, PAGE, apps, **overrides)


POLICY = DeliveryPolicy(timeout_s=2.0, retries=2, backoff_s=0.01)


async def start_sim(base: str, faults: Faults | None = None, **overrides: Any) -> TestClient:
    app = create_simulator_app(sim_config(base, **overrides), faults=faults, delivery=POLICY)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def sim(receiver: tuple[Receiver, str]) -> AsyncIterator[TestClient]:
    client = await start_sim(receiver[1])
    yield client
    await client.close()


async def say(client: TestClient, text: str, igsid: str = CUSTOMER) -> dict[str, Any]:
    resp = await client.post(f"/sim/customers/{igsid}/say", json={"text": text})
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def graph(
    client: TestClient, method: str, path: str, token: str = "bot-token", **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    params = dict(kwargs.pop("params", {}))
    params.setdefault("access_token", token)
    resp = await client.request(method, f"/v25.0/{path}", params=params, **kwargs)
    return resp.status, await resp.json()


async def set_faults(client: TestClient, **faults: Any) -> None:
    resp = await client.post("/sim/faults", json=faults)
    assert resp.status == 200, await resp.text()


# ---------------------------------------------------------------- webhooks


async def test_customer_message_is_signed_to_owner_and_standby_to_others(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    answer = await say(sim, "hi")
    assert answer["mid"].startswith("aWdf")
    assert {d["app"] for d in answer["deliveries"]} == {"bot", "agent"}
    assert all(p.signature_ok for p in rec.posts)
    bot_post = rec.of("bot")[0].json
    assert bot_post["object"] == "instagram"
    entry = bot_post["entry"][0]
    assert entry["id"] == ACCOUNT and entry["time"] > 10**12  # milliseconds
    assert entry["messaging"][0]["message"] == {"mid": answer["mid"], "text": "hi"}
    assert rec.items("agent") == [("standby", entry["messaging"][0])]


async def test_bodies_use_escaped_unicode_and_the_signature_covers_the_raw_bytes(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    await say(sim, "\u00e4\u00f6\u00e5")
    post = rec.of("bot")[0]
    assert b"\\u00e4\\u00f6\\u00e5" in post.body
    assert post.signature_ok
    assert post.headers["X-Hub-Signature-256"].startswith("sha256=")
    assert not verify_signature(
        post.body.replace(b"\\u00e4", b"\\u00e5"),
        post.headers["X-Hub-Signature-256"],
        SECRETS["bot"],
    )


async def test_comment_arrives_in_changes_with_seconds(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    resp = await sim.post(f"/sim/customers/{CUSTOMER}/comment", json={"text": "price?"})
    comment_id = (await resp.json())["comment_id"]
    entry = rec.of("agent")[0].json["entry"][0]
    assert entry["time"] < 10**11  # seconds on `changes`
    assert entry["changes"][0]["value"]["comment_id"] == comment_id


async def test_retries_until_the_receiver_answers_200(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    rec.fail_next["bot"] = 2
    answer = await say(sim, "hi")
    bot = [d for d in answer["deliveries"] if d["app"] == "bot"]
    assert [(d["attempt"], d["status"], d["ok"]) for d in bot] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert len({p.body for p in rec.of("bot")}) == 1  # the same body each time


async def test_unreachable_webhook_is_recorded_as_given_up(receiver: tuple[Receiver, str]) -> None:
    client = await start_sim("http://127.0.0.1:9/hooks")  # discard port: refused
    try:
        answer = await say(client, "hi")
        assert answer["deliveries"][-1]["ok"] is False
        resp = await client.get("/sim/log/webhooks", params={"app": "bot"})
        rows = (await resp.json())["data"]
        assert len(rows) == POLICY.retries + 1
        assert rows[-1]["gave_up"] is True and rows[-1]["status"] is None and rows[-1]["error"]
    finally:
        await client.close()


async def test_an_hour_of_failures_disables_webhooks_and_unsubscribes(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    rec.fail_next["bot"] = 100
    await say(sim, "hi")
    await sim.post("/sim/clock/advance", json={"seconds": 3600})
    await say(sim, "hello?")
    status, body = await graph(sim, "GET", f"{PAGE}/subscribed_apps")
    assert status == 200
    assert [a["id"] for a in body["data"]] == [AGENT]
    rec.fail_next["bot"] = 0
    status, _ = await graph(
        sim, "POST", f"{PAGE}/subscribed_apps", params={"subscribed_fields": "messages,standby"}
    )
    assert status == 200
    await say(sim, "back?")
    assert rec.of("bot")[-1].json["entry"][0]["messaging"][0]["message"]["text"] == "back?"


# ---------------------------------------------------------------- Graph API


async def test_send_by_a_non_owner_gets_the_not_owner_error(sim: TestClient) -> None:
    await say(sim, "hi")
    status, body = await graph(
        sim,
        "POST",
        "me/messages",
        token="agent-token",
        json={"recipient": {"id": CUSTOMER}, "message": {"text": "hello"}},
    )
    assert status == 400
    error = body["error"]
    assert error["code"] == 100 and error["error_subcode"] == 2534037
    assert error["type"] == "OAuthException" and error["fbtrace_id"]
    assert "not the owner of the thread" in error["message"]


async def test_owner_send_answers_ids_and_echoes_to_the_sender(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    await say(sim, "hi")
    resp = await sim.post(
        f"/v25.0/{PAGE}/messages",
        headers={"Authorization": "Bearer bot-token"},
        json={
            "recipient": {"id": CUSTOMER},
            "message": {"text": "Hello!"},
            "messaging_type": "RESPONSE",
        },
    )
    body = await resp.json()
    assert resp.status == 200 and body["recipient_id"] == CUSTOMER
    await sim.post("/sim/webhooks/flush")
    echo = rec.items("bot")[-1][1]["message"]
    assert echo == {"mid": body["message_id"], "text": "Hello!", "is_echo": True, "app_id": BOT}
    view = await (await sim.get(f"/sim/customers/{CUSTOMER}")).json()
    assert [m["text"] for m in view["received"]] == ["Hello!"]
    assert [m["text"] for m in view["sent"]] == ["hi"]


async def test_unknown_token_is_error_190(sim: TestClient) -> None:
    status, body = await graph(sim, "GET", f"{PAGE}/thread_owner", token="stolen")
    assert status == 400
    assert (
        body["error"]["code"] == 190 and body["error"]["message"] == "Invalid OAuth access token."
    )


async def test_thread_control_via_query_params_and_thread_owner(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    await say(sim, "hi")
    recipient = json.dumps({"id": CUSTOMER})
    status, body = await graph(
        sim,
        "POST",
        "me/pass_thread_control",
        params={"recipient": recipient, "target_app_id": AGENT, "metadata": "escalate"},
    )
    assert (status, body) == (200, {"success": True})
    status, owner = await graph(
        sim, "GET", f"{PAGE}/thread_owner", token="agent-token", params={"recipient": CUSTOMER}
    )
    assert owner["data"][0]["thread_owner"]["app_id"] == AGENT
    await sim.post("/sim/webhooks/flush")
    handover = rec.items("agent")[-1][1]["pass_thread_control"]
    assert handover == {
        "previous_owner_app_id": BOT,  # the customer's message gave the default app control
        "new_owner_app_id": AGENT,
        "metadata": "escalate",
    }
    status, body = await graph(
        sim, "POST", f"{PAGE}/release_thread_control", token="agent-token",
        json={"recipient": {"id": CUSTOMER}},
    )  # fmt: skip
    assert status == 200
    _, owner = await graph(sim, "GET", f"{PAGE}/thread_owner", params={"recipient": CUSTOMER})
    assert owner == {"data": []}


async def test_take_is_refused_without_routing(receiver: tuple[Receiver, str]) -> None:
    client = await start_sim(receiver[1], routing_enabled=False)
    try:
        await say(client, "hi")
        status, body = await graph(
            client, "POST", f"{PAGE}/take_thread_control", token="agent-token",
            json={"recipient": {"id": CUSTOMER}},
        )  # fmt: skip
        assert status == 400 and body["error"]["error_subcode"] == 2534123
    finally:
        await client.close()


async def test_window_closes_with_the_simulated_clock(sim: TestClient) -> None:
    await say(sim, "hi")
    await sim.post("/sim/clock/advance", json={"seconds": DAY_S + 1})
    message = {"recipient": {"id": CUSTOMER}, "message": {"text": "late"}}
    status, body = await graph(sim, "POST", "me/messages", json=message)
    assert status == 400 and body["error"]["error_subcode"] == 2534022


async def test_feature_status_conversations_and_rate_limit(receiver: tuple[Receiver, str]) -> None:
    client = await start_sim(receiver[1], rate_limit_per_s=3)
    try:
        await say(client, "hi")
        _, status_body = await graph(
            client, "GET", "me", params={"fields": "messaging_feature_status"}
        )
        assert status_body["messaging_feature_status"]["ig_multi_app"] is True
        _, convs = await graph(
            client,
            "GET",
            f"{PAGE}/conversations",
            params={"platform": "instagram", "user_id": CUSTOMER},
        )
        assert len(convs["data"]) == 1 and set(convs["data"][0]) == {"id", "updated_time"}
        status, body = await graph(
            client, "GET", f"{PAGE}/thread_owner", params={"recipient": CUSTOMER}
        )
        assert status == 200
        status, body = await graph(
            client, "GET", f"{PAGE}/thread_owner", params={"recipient": CUSTOMER}
        )
        assert status == 400 and body["error"]["code"] == 613
    finally:
        await client.close()


async def test_graph_log_records_calls_without_tokens(sim: TestClient) -> None:
    await graph(sim, "GET", f"{PAGE}/thread_owner", params={"recipient": CUSTOMER})
    await graph(sim, "GET", f"{PAGE}/thread_owner", token="nope", params={"recipient": CUSTOMER})
    resp = await sim.get("/sim/log/graph")
    text = await resp.text()
    assert "bot-token" not in text and "nope" not in text
    rows = json.loads(text)["data"]
    assert [(r["app"], r["status"], r["error_code"]) for r in rows] == [
        ("bot", 200, None),
        (None, 400, 190),
    ]


async def test_subscriptions_verify_the_callback_like_meta(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, base = receiver
    path = f"{BOT}/subscriptions"
    form = {"object": "instagram", "callback_url": f"{base}/agent", "fields": "messages"}
    status, body = await graph(
        sim, "POST", path, token=f"{BOT}|{SECRETS['bot']}", data={**form, "verify_token": "wrong"}
    )
    assert status == 400 and body["error"]["code"] == 2200
    status, body = await graph(
        sim,
        "POST",
        path,
        token=f"{BOT}|{SECRETS['bot']}",
        data={**form, "verify_token": VERIFY_TOKEN},
    )
    assert (status, body) == (200, {"success": True})
    await say(sim, "hi")
    assert rec.of("agent")[0].json["entry"][0]["messaging"][0]["message"]["text"] == "hi"
    assert not rec.of("agent")[0].signature_ok  # signed with the bot's secret, sent to /agent


# ---------------------------------------------------------------- faults


async def test_batch_fault_sends_several_entries_in_one_post(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    await set_faults(sim, batch=3)
    resp = await sim.post(f"/sim/customers/{CUSTOMER}/say", json={"texts": ["a", "b", "c", "d"]})
    assert resp.status == 200
    bot_posts = rec.of("bot")
    assert [len(p.json["entry"]) for p in bot_posts] == [3, 1]
    assert [i["message"]["text"] for _, i in rec.items("bot")] == ["a", "b", "c", "d"]
    assert all(p.signature_ok for p in rec.posts)


async def test_redeliver_fault_sends_every_post_twice(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    await set_faults(sim, redeliver=True)
    await say(sim, "hi")
    bodies = [p.body for p in rec.of("bot")]
    assert len(bodies) == 2 and bodies[0] == bodies[1]


async def test_out_of_order_fault_sends_later_items_first(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    await set_faults(sim, out_of_order=True)
    texts = ["1", "2", "3", "4", "5"]
    answer = await (await sim.post(f"/sim/customers/{CUSTOMER}/say", json={"texts": texts})).json()
    arrived = [i["message"]["mid"] for _, i in rec.items("bot")]
    assert sorted(arrived) == sorted(answer["mids"])
    assert arrived != answer["mids"]
    timestamps = [i["timestamp"] for _, i in rec.items("bot")]
    assert len(timestamps) == 5


async def test_graph_5xx_fault_is_seeded_and_deterministic(sim: TestClient) -> None:
    async def pattern() -> list[int]:
        await set_faults(sim, graph_5xx_rate=0.5, seed=7)
        statuses = []
        for _ in range(12):
            status, body = await graph(sim, "GET", "me")
            statuses.append(status)
            if status == 500:
                assert body["error"]["code"] == 2
                assert body["error"]["message"].startswith("An unexpected error has occurred")
        return statuses

    first = await pattern()
    assert set(first) == {200, 500}
    assert await pattern() == first
    await set_faults(sim, graph_5xx_rate=1.0)
    assert (await graph(sim, "GET", "me"))[0] == 500
    resp = await sim.post("/sim/faults", json={"graph_5xx_rate": 2})
    assert resp.status == 400


# ---------------------------------------------------------------- control API and phone


async def test_inbox_take_and_reply_reach_our_apps(
    sim: TestClient, receiver: tuple[Receiver, str]
) -> None:
    rec, _ = receiver
    await say(sim, "hi")  # the default app (bot) now controls the thread
    await sim.post(f"/sim/inbox/{CUSTOMER}/take")
    assert [c for c, _ in rec.items("bot")] == ["messaging", "messaging"]
    assert rec.items("bot")[-1][1]["take_thread_control"] == {
        "previous_owner_app_id": BOT,
        "new_owner_app_id": "1217981644879628",
    }
    await sim.post(f"/sim/inbox/{CUSTOMER}/pass", json={"target_app_id": BOT})
    assert rec.items("bot")[-1][1]["pass_thread_control"]["new_owner_app_id"] == BOT
    await sim.post(f"/sim/inbox/{CUSTOMER}/take", json={"metadata": "moved"})
    take = rec.items("bot")[-1][1]["take_thread_control"]
    assert take == {
        "previous_owner_app_id": BOT,
        "new_owner_app_id": "1217981644879628",
        "metadata": "moved",
    }
    resp = await sim.post(f"/sim/inbox/{CUSTOMER}/reply", json={"text": "Ana here"})
    assert resp.status == 200
    channel, echo = rec.items("agent")[-1]
    assert channel == "standby" and echo["message"]["is_echo"] is True


async def test_control_errors_are_json(sim: TestClient) -> None:
    resp = await sim.post(f"/sim/customers/{CUSTOMER}/react", json={"mid": "nope"})
    assert resp.status == 404 and "error" in await resp.json()
    resp = await sim.post(f"/sim/customers/{CUSTOMER}/say", json={})
    assert resp.status == 400
    resp = await sim.post("/sim/faults", json={"bogus": 1})
    assert resp.status == 400


async def test_reset_forgets_customers_logs_and_faults(sim: TestClient) -> None:
    await set_faults(sim, redeliver=True)
    await say(sim, "hi")
    resp = await sim.post("/sim/reset")
    assert resp.status == 200
    view = await (await sim.get(f"/sim/customers/{CUSTOMER}")).json()
    assert view["exists"] is False
    assert (await (await sim.get("/sim/log/webhooks")).json())["data"] == []
    assert (await (await sim.get("/sim/faults")).json())["redeliver"] is False


async def test_phone_page_is_self_contained_with_test_ids(sim: TestClient) -> None:
    resp = await sim.get("/phone")
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    for marker in (
        'id="igsid"', 'id="text"', 'id="send"', 'id="comment-text"', 'id="comment-send"',
        "msg ", "quick-reply", '"data-action": "react"', '"data-action": "unsend"',
    ):  # fmt: skip
        assert marker in html, marker
    assert "http://" not in html and "https://" not in html  # no external assets
