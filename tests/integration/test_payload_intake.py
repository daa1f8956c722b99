"""The payload corpus posted signed to the service over real HTTP and stored in a real
PostgreSQL: every kind is stored under the right conversation, and the odd shapes that cannot
be fully handled are reported in the response (issue 14)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from orchestrator.app import create_app
from orchestrator.config import Config
from tests.conftest import ACCOUNT_ID, PAGE_ID, config_data, make_config, signed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
CORPUS = sorted(
    f"{p.parent.name}/{p.stem}"
    for folder in ("instagram", "messenger")
    for p in (FIXTURES / folder).glob("*.json")
)
REPORTED = {"instagram/read_no_sender", "instagram/comments_username_only"}
SELF_IGSID = "1234567890999999"


@pytest.fixture
def config() -> Config:
    """The corpus's Messenger payloads are for the test account's Page: its channel is on."""
    data = config_data()
    data["accounts"][0]["channels"] = ["instagram", "messenger"]
    return make_config(data)


@pytest.fixture
async def client(config: Config, db_url: str) -> AsyncIterator[TestClient]:
    app = create_app(config, database_url=db_url, background=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def post(client: TestClient, name: str) -> dict[str, Any]:
    body, headers = signed(json.loads((FIXTURES / f"{name}.json").read_bytes()))
    resp = await client.post("/webhooks/bot", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def rows(db_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


@pytest.mark.parametrize("name", CORPUS)
async def test_every_corpus_payload_is_stored_and_odd_ones_are_reported(
    client: TestClient, db_url: str, name: str
) -> None:
    data = await post(client, name)

    assert data["stored"] == 1 and data["duplicates"] == 0
    assert bool(data["problems"]) == (name in REPORTED)
    [event] = await rows(db_url, "SELECT kind, payload FROM events")
    assert event["kind"] != "unknown"


async def test_redelivered_corpus_is_all_duplicates(client: TestClient) -> None:
    for name in CORPUS:
        await post(client, name)
    again = [await post(client, name) for name in CORPUS]

    assert [a["stored"] for a in again] == [0] * len(CORPUS)


async def test_self_postback_is_filed_under_the_account(client: TestClient, db_url: str) -> None:
    await post(client, "instagram/self_postback")

    [conversation] = await rows(db_url, "SELECT account_id, customer_id FROM conversations")
    assert (conversation["account_id"], conversation["customer_id"]) == (ACCOUNT_ID, SELF_IGSID)


async def test_read_without_sender_and_username_only_comment_have_no_conversation(
    client: TestClient, db_url: str
) -> None:
    read = await post(client, "instagram/read_no_sender")
    comment = await post(client, "instagram/comments_username_only")

    assert read["problems"] == [
        "entry[0].messaging[0]: no sender.id: the customer is unknown, kept without a conversation"
    ]
    assert comment["problems"] == [
        "entry[0].value.from: comment 17860000000000099 has username 'jane.doe' only "
        "(no from.id): kept without a conversation"
    ]
    stored = await rows(db_url, "SELECT kind, conversation_id, mid FROM events ORDER BY id")
    assert [(r["kind"], r["conversation_id"]) for r in stored] == [
        ("read", None),
        ("comment", None),
    ]
    assert stored[0]["mid"] is not None  # the read's mid is kept for matching it later


async def test_page_events_without_the_messenger_channel_are_reported_not_silently_kept(
    db_url: str,
) -> None:
    instagram_only = make_config()
    app = create_app(instagram_only, database_url=db_url, background=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        data = await post(c, "messenger/message")
        metrics = await (await c.get("/metrics")).text()

    assert data["stored"] == 1  # nothing acknowledged is lost
    assert data["problems"] == [
        f"item 1: Page {PAGE_ID} of account 'shop' has no Messenger channel: stored, not "
        'processed (add "messenger" to accounts[0].channels)'
    ]
    assert 'orchestrator_webhook_unknown_accounts_total{object="page"} 1.0' in metrics


async def test_events_of_an_account_not_in_the_config_are_reported(
    client: TestClient, db_url: str
) -> None:
    payload = json.loads((FIXTURES / "message_text.json").read_bytes())
    text = json.dumps(payload).replace(ACCOUNT_ID, "17841499999999999")
    body, headers = signed(json.loads(text))
    resp = await client.post("/webhooks/bot", data=body, headers=headers)
    data = await resp.json()
    metrics = await (await client.get("/metrics")).text()

    assert data["stored"] == 1
    assert data["problems"] == [
        "item 1: Instagram account 17841499999999999 is not in the config: stored, not "
        "processed (add it as an [[accounts]] instagram_account_id, or as the page_id of an "
        'account with channels = ["instagram", "messenger"])'
    ]
    assert 'orchestrator_webhook_unknown_accounts_total{object="instagram"} 1.0' in metrics
    # Stored whole as an event (no second copy of the bytes), with its conversation.
    assert await rows(db_url, "SELECT id FROM raw_deliveries") == []
    [event] = await rows(db_url, "SELECT account_id FROM events")
    assert event["account_id"] == "17841499999999999"


async def test_page_events_of_a_messenger_account_are_filed_under_the_page(
    client: TestClient, db_url: str
) -> None:
    data = await post(client, "messenger/message")

    assert data["problems"] == []
    [conversation] = await rows(db_url, "SELECT account_id FROM conversations")
    assert conversation["account_id"] == PAGE_ID
