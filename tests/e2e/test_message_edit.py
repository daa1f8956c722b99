"""An edit without text (Meta often sends only `mid` and `num_edit`) keeps the transcript's
text and records that an edit happened; an edit with text still replaces it (issue 14, 1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.config import Config
from orchestrator.sandbox.runner import Sandbox
from tests.conftest import ACCOUNT_ID, signed

CUSTOMER = "5550000000000001"


@pytest.fixture
async def sandbox(config: Config, db_url: str) -> AsyncIterator[Sandbox]:
    async with Sandbox(config, db_url) as sb:
        yield sb


async def say(sb: Sandbox, text: str) -> str:
    result = await sb.sim("POST", f"/sim/customers/{CUSTOMER}/say", {"text": text})
    await sb.settle()
    mid: str = result["mid"]
    return mid


async def post_edit(sb: Sandbox, edit: dict[str, Any]) -> dict[str, Any]:
    ms = int(sb.clock.now().timestamp() * 1000)
    body = {
        "object": "instagram",
        "entry": [
            {
                "id": ACCOUNT_ID,
                "time": ms,
                "messaging": [
                    {
                        "sender": {"id": CUSTOMER},
                        "recipient": {"id": ACCOUNT_ID},
                        "timestamp": ms,
                        "message_edit": edit,
                    }
                ],
            }
        ],
    }
    raw, headers = signed(body)
    assert sb.http is not None
    async with sb.http.post(f"{sb.url}/webhooks/bot", data=raw, headers=headers) as resp:
        assert resp.status == 200
        data: dict[str, Any] = await resp.json()
    await sb.settle()
    return data


async def transcript_row(sb: Sandbox, mid: str) -> Any:
    return await sb.pool.fetchrow("SELECT text, edited_at FROM messages WHERE mid = $1", mid)


async def test_edit_without_text_keeps_the_text_and_records_the_edit(sandbox: Sandbox) -> None:
    mid = await say(sandbox, "Do you ship to Graz?")

    answer = await post_edit(sandbox, {"mid": mid, "num_edit": 0})

    assert answer["stored"] == 1 and answer["problems"] == []
    row = await transcript_row(sandbox, mid)
    assert row["text"] == "Do you ship to Graz?"
    assert row["edited_at"] is not None
    status = await sandbox.pool.fetchval(
        "SELECT status FROM events WHERE kind = 'message_edit' AND mid = $1", mid
    )
    assert status == "done"


async def test_edit_with_text_replaces_it(sandbox: Sandbox) -> None:
    mid = await say(sandbox, "Do you ship to Gratz?")

    await post_edit(sandbox, {"mid": mid, "text": "Do you ship to Graz?", "num_edit": 0})

    row = await transcript_row(sandbox, mid)
    assert row["text"] == "Do you ship to Graz?" and row["edited_at"] is not None


async def test_edit_with_empty_text_is_an_edit_to_empty(sandbox: Sandbox) -> None:
    mid = await say(sandbox, "typo")

    await post_edit(sandbox, {"mid": mid, "text": "", "num_edit": 1})

    assert (await transcript_row(sandbox, mid))["text"] == ""
