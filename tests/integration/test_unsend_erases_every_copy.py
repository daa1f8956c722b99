"""Issue 9.7: an unsend erases every stored copy of the message. After the customer unsends,
no column of any table (text, jsonb, bytea) holds the text any more: not the event log,
the transcript, the sub-apps' deliveries, nor the raw webhook bodies kept for audit."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from orchestrator.app import create_app
from orchestrator.config import Config
from orchestrator.engine.processing import ConversationProcessor
from orchestrator.engine.worker import EventWorker
from orchestrator.typedefs import RUNTIME
from tests.conftest import ACCOUNT_ID, TEST_ENV, fixture_body, signed

SECRET_TEXT = "Meine IBAN: DE89 3704 0044 0532 0130 00 / Konto für Rückzahlung"
EDITED_TEXT = "Korrektur IBAN: DE89 3704 0044 0532 0130 01"
CUSTOMER = "1234567890123456"
MID = "aWdfZAG1faWQ6MTpJR01lc3NhZ2UnsendTest/erase+0001"


@pytest.fixture
async def client(config: Config, db_url: str) -> AsyncIterator[TestClient]:
    app = create_app(config, database_url=db_url, background=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


def flagged_post(field: str, item: dict[str, Any]) -> dict[str, Any]:
    """A POST intake keeps raw (its exact bytes in raw_deliveries): the item plus an event
    kind it does not know yet."""
    body = fixture_body("unknown_kind")
    body["entry"][0][field] = [item, *body["entry"][0].get(field, [])]
    if field != "messaging":
        body["entry"][0].setdefault("messaging", [])
    return body


def message_item(ts: int, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "sender": {"id": CUSTOMER},
        "recipient": {"id": ACCOUNT_ID},
        "timestamp": ts,
        "message": message,
    }


async def post(client: TestClient, app: str, body: dict[str, Any]) -> None:
    secret = TEST_ENV["BOT_APP_SECRET" if app == "bot" else "SUPPORT_APP_SECRET"]
    raw, headers = signed(body, secret)
    assert (await client.post(f"/webhooks/{app}", data=raw, headers=headers)).status == 200


async def process(client: TestClient) -> None:
    rt = client.server.app[RUNTIME]
    worker = EventWorker(rt.pool, ConversationProcessor(rt), clock=rt.clock, metrics=rt.metrics)
    while await worker.run_once():
        pass


async def copies_of(db_url: str, needle: str) -> list[str]:
    """Every (table.column) of the public schema whose value holds `needle`."""
    conn = await asyncpg.connect(db_url)
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'"
            " AND data_type IN ('text', 'jsonb', 'json', 'bytea', 'character varying')"
        )
        found = []
        for c in columns:
            table, column = c["table_name"], c["column_name"]
            if c["data_type"] == "bytea":
                where = f"position(convert_to($1, 'UTF8') IN \"{column}\") > 0"
            else:
                where = f'strpos("{column}"::text, $1) > 0'
            n = await conn.fetchval(f'SELECT count(*) FROM "{table}" WHERE {where}', needle)
            if n:
                found.append(f"{table}.{column}")
        return found
    finally:
        await conn.close()


async def test_after_an_unsend_no_table_holds_the_text(client: TestClient, db_url: str) -> None:
    # The message reaches the bot (owner) and support (standby copy), both POSTs kept raw.
    await post(client, "bot", flagged_post("messaging", message_item(1730000000000, {"mid": MID, "text": SECRET_TEXT})))  # fmt: skip
    await post(client, "support", flagged_post("standby", message_item(1730000000000, {"mid": MID, "text": SECRET_TEXT})))  # fmt: skip
    await process(client)
    # An edit (Meta's message_edit), also in a raw body.
    edit = message_item(1730000001000, {})
    del edit["message"]
    edit["message_edit"] = {"mid": MID, "text": EDITED_TEXT, "num_edit": 1}
    await post(client, "bot", flagged_post("messaging", edit))
    await process(client)
    short = "DE89 3704 0044 0532 0130"
    before = await copies_of(db_url, short)
    # Each kind of copy this test is about exists before the unsend.
    assert {"events.payload", "messages.text", "outbox.payload", "raw_deliveries.body",
            "raw_deliveries.body_bytes"} <= set(before), before  # fmt: skip

    unsend = message_item(1730000002000, {"mid": MID, "is_deleted": True})
    await post(client, "bot", {"object": "instagram", "entry": [{"id": ACCOUNT_ID, "time": 1730000002000, "messaging": [copy.deepcopy(unsend)]}]})  # fmt: skip
    await process(client)

    assert await copies_of(db_url, short) == []
    assert await copies_of(db_url, "Rückzahlung") == []
    conn = await asyncpg.connect(db_url)
    try:
        raws = await conn.fetch("SELECT body, problem FROM raw_deliveries ORDER BY id")
        tombstones = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE mid = $1 AND deleted_at IS NOT NULL", MID
        )
    finally:
        await conn.close()
    # The rest of each raw POST stays for audit; the unsent message is a tombstone in it.
    assert len(raws) == 3 and all("future_event" in (r["body"] or "") for r in raws)
    assert all("redacted" in r["problem"] for r in raws)
    assert tombstones == 1
