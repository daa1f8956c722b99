"""A Messenger customer end to end: the sandbox's simulator plays a PSID writing to the
account's Facebook Page (object "page" webhooks under the Page id), the orchestrator runs the
same handover over real HTTP and PostgreSQL, and the channel shows in the REST API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.config import Config
from orchestrator.sandbox.runner import Sandbox
from tests.conftest import ACCOUNT_ID, PAGE_ID, config_data, fixture_body, make_config, signed

PSID = "7770000000000001"
IGSID = "5550000000000001"
DISCLOSURE_DE = "Sie schreiben mit einem Bot."


@pytest.fixture
def config() -> Config:
    data = config_data()
    data["accounts"][0]["channels"] = ["instagram", "messenger"]
    return make_config(data)


@pytest.fixture
async def sandbox(config: Config, db_url: str) -> AsyncIterator[Sandbox]:
    async with Sandbox(config, db_url) as sb:
        yield sb


async def say(sb: Sandbox, customer: str, text: str, channel: str) -> None:
    await sb.sim("POST", f"/sim/customers/{customer}/say", {"text": text, "channel": channel})
    await sb.settle()


async def texts(sb: Sandbox, customer: str) -> list[str]:
    view = await sb.sim("GET", f"/sim/customers/{customer}")
    return [m["text"] for m in view["received"]]


async def support(sb: Sandbox, cid: int, verb: str, body: dict[str, Any]) -> int:
    status, _data = await sb.api("POST", f"/api/v1/conversations/{cid}/{verb}", "support", body)
    await sb.settle()
    return status


async def test_a_messenger_customer_goes_bot_pending_human_bot_with_a_fresh_disclosure(
    sandbox: Sandbox,
) -> None:
    await say(sandbox, PSID, "Hallo", "messenger")
    assert (await texts(sandbox, PSID))[0] == DISCLOSURE_DE

    await say(sandbox, PSID, "Ich möchte mit einem Menschen sprechen", "messenger")
    row = await sandbox.conversation(PSID)
    assert row["state"] == "pending_human"

    status, listed = await sandbox.api("GET", "/api/v1/conversations", "support")
    assert status == 200
    [item] = [c for c in listed["conversations"] if c["customer_id"] == PSID]
    assert (item["account_id"], item["channel"]) == (PAGE_ID, "messenger")

    assert await support(sandbox, row["id"], "accept", {}) == 200
    assert await support(sandbox, row["id"], "messages", {"text": "Hallo, hier ist Anna."}) == 200
    assert (await sandbox.conversation(PSID))["state"] == "human"
    assert await support(sandbox, row["id"], "release", {"metadata": "solved"}) == 200
    assert (await sandbox.conversation(PSID))["state"] == "bot"

    received = await texts(sandbox, PSID)
    assert "Hallo, hier ist Anna." in received
    assert received.count(DISCLOSURE_DE) == 2  # first contact, and again after the human
    assert received[-2] == DISCLOSURE_DE

    # Every call for this conversation went to the Page, without Instagram's parameter.
    log = await sandbox.sim("GET", "/sim/log/graph")
    calls = [c for c in log["data"] if c["method"] == "POST"]
    assert calls and all(f"/{PAGE_ID}/" in c["path"] for c in calls)
    assert all((c.get("params") or {}).get("platform") is None for c in calls)
    # Meta's webhooks for this customer came as object "page" under the Page id.
    hooks = await sandbox.sim("GET", "/sim/log/webhooks")
    bodies = [r["body"] for r in hooks["data"] if r.get("body")]
    assert bodies and {b["object"] for b in bodies} == {"page"}
    assert {e["id"] for b in bodies for e in b["entry"]} == {PAGE_ID}

    _status, detail = await sandbox.api("GET", f"/api/v1/conversations/{row['id']}", "support")
    assert detail["channel"] == "messenger"
    metrics = await (await sandbox.http.get(f"{sandbox.url}/metrics")).text()
    assert 'channel="messenger"' in metrics


async def test_instagram_and_messenger_customers_are_two_conversations_of_one_account(
    sandbox: Sandbox,
) -> None:
    await say(sandbox, IGSID, "Hallo", "instagram")
    await say(sandbox, PSID, "Hallo", "messenger")

    _status, listed = await sandbox.api("GET", "/api/v1/conversations", "support")
    channels = {c["customer_id"]: (c["account_id"], c["channel"]) for c in listed["conversations"]}
    assert channels == {IGSID: (ACCOUNT_ID, "instagram"), PSID: (PAGE_ID, "messenger")}
    assert (await texts(sandbox, IGSID))[0] == DISCLOSURE_DE
    assert (await texts(sandbox, PSID))[0] == DISCLOSURE_DE


async def test_messenger_only_events_reach_the_app_in_control_and_change_nothing(
    sandbox: Sandbox,
) -> None:
    """`delivery` and `account_linking` of a Messenger customer are delivered to the app in
    control (and standby copies to support) with `object: "page"`; the state stays."""
    await say(sandbox, PSID, "Hallo", "messenger")
    before = await sandbox.conversation(PSID)
    for name in ("delivery", "account_linking"):
        payload = fixture_body(f"messenger/{name}")
        text = json.dumps(payload).replace("2000000000000001", PSID)
        body, headers = signed(json.loads(text))
        assert sandbox.http is not None
        async with sandbox.http.post(
            f"{sandbox.url}/webhooks/bot", data=body, headers=headers
        ) as resp:
            answer = await resp.json()
        assert resp.status == 200 and answer["stored"] == 1 and answer["problems"] == []
    await sandbox.settle()

    rows = await sandbox.pool.fetch(
        "SELECT app, payload FROM outbox WHERE kind = 'deliver' ORDER BY id"
    )
    events = [(r["app"], r["payload"]["event"]) for r in rows]
    to_bot = [
        e for app, e in events if app == "bot" and e["type"] in ("delivery", "account_linking")
    ]
    # Meta's timestamps order them (the fixture's delivery has only the later entry time).
    assert sorted(e["type"] for e in to_bot) == ["account_linking", "delivery"]
    assert {e["object"] for e in to_bot} == {"page"}
    after = await sandbox.conversation(PSID)
    assert after["state"] == before["state"] == "bot"


async def test_an_agent_sends_a_messenger_button_template(sandbox: Sandbox) -> None:
    await say(sandbox, PSID, "Hallo", "messenger")
    await say(sandbox, PSID, "Ich möchte mit einem Menschen sprechen", "messenger")
    cid = (await sandbox.conversation(PSID))["id"]
    assert await support(sandbox, cid, "accept", {}) == 200
    template = {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": "Wie möchten Sie weitermachen?",
                "buttons": [{"type": "postback", "title": "Rückruf", "payload": "CALLBACK"}],
            },
        }
    }
    assert await support(sandbox, cid, "messages", {"message": template}) == 200
    view = await sandbox.sim("GET", f"/sim/customers/{PSID}")
    last = view["received"][-1]
    assert last["attachments"][0]["payload"]["template_type"] == "button"
