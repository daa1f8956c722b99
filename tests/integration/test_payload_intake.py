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
from tests.conftest import ACCOUNT_ID, signed

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"
CORPUS = sorted(
    f"{p.parent.name}/{p.stem}"
    for folder in ("instagram", "messenger")
    for p in (FIXTURES / folder).glob("*.json")
)
REPORTED = {"instagram/read_no_sender", "instagram/comments_username_only"}
SELF_IGSID = "1234567890999999"


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
