"""Issue 9.4: an automated message never reaches a customer whose due disclosure was not
delivered. Real PostgreSQL, the real worker and dispatcher, aioresponses standing in for
Meta: when the disclosure is dead-lettered (any path), the automated messages queued behind
it are held and the disclosure is re-armed for the next automated message."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from orchestrator.app import create_app
from orchestrator.config import Config
from orchestrator.engine.dispatcher import Dispatcher
from orchestrator.engine.outbox_rows import META_LANE
from orchestrator.engine.processing import ConversationProcessor
from orchestrator.engine.runtime import Runtime
from orchestrator.engine.worker import EventWorker
from orchestrator.store.intake import Row, store_rows
from orchestrator.store.queries import q
from orchestrator.typedefs import RUNTIME
from state_machines import ConversationView
from tests.conftest import ACCOUNT_ID, engine_runtime, make_config
from tests.meta_mock import MetaMock

SEND = re.compile(r"^https://graph\.facebook\.com/v25\.0/\d+/messages.*$")
CUSTOMER = "5550000000000044"
DISCLOSURE = "Sie schreiben mit einem Bot."
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)
INVALID = {
    "error": {
        "message": "(#100) Invalid parameter",
        "type": "OAuthException",
        "code": 100,
        "fbtrace_id": "x",
    }
}


@pytest.fixture
async def runtime(db_url: str) -> AsyncIterator[Runtime]:
    config = make_config()  # the FAQ bot in process (primary), support over the REST API
    async with engine_runtime(db_url, config, T0) as rt:
        yield rt


async def customer_says(rt: Runtime, n: int, text: str) -> None:
    at = rt.clock.now()
    item = {
        "sender": {"id": CUSTOMER},
        "recipient": {"id": ACCOUNT_ID},
        "timestamp": int(at.timestamp() * 1000),
        "message": {"mid": f"aWdf-disclosure-{n}", "text": text},
    }
    row = Row(ACCOUNT_ID, CUSTOMER, f"mid:{n}", "message", "messaging", f"aWdf-disclosure-{n}",
              at, item)  # fmt: skip
    async with rt.pool.acquire() as conn, conn.transaction():
        await store_rows(conn, [row], "bot")


async def decide_all(rt: Runtime) -> None:
    worker = EventWorker(rt.pool, ConversationProcessor(rt), clock=rt.clock, metrics=rt.metrics)
    while await worker.run_once():
        pass


async def dispatch_all(rt: Runtime) -> None:
    d = Dispatcher(rt)
    while await d.run_once():
        pass


def sent_texts(meta: MetaMock) -> list[str]:
    return [
        (c.kwargs.get("json") or json.loads(c.kwargs["data"]))["message"]["text"]
        for (method, url), calls in meta.requests.items()
        if method == "POST" and SEND.match(str(url))
        for c in calls
    ]


async def view_of(pool: asyncpg.Pool) -> ConversationView:
    raw = await pool.fetchval("SELECT view FROM conversations WHERE customer_id = $1", CUSTOMER)
    return ConversationView.from_json(raw)


async def test_bot_reply_behind_an_undelivered_disclosure_never_reaches_meta(
    runtime: Runtime,
) -> None:
    rt = runtime
    await customer_says(rt, 1, "Hallo")
    await decide_all(rt)
    queued = await rt.pool.fetch(
        "SELECT payload->>'purpose' AS purpose FROM outbox WHERE lane = $1 ORDER BY id", META_LANE
    )
    assert [r["purpose"] for r in queued] == ["disclosure", "reply"]

    with MetaMock() as meta:
        meta.post(SEND, status=400, payload=INVALID)  # Meta refuses the disclosure for good
        await dispatch_all(rt)
        assert sent_texts(meta) == [DISCLOSURE]  # the refused attempt only; no bot reply
    rows = await rt.pool.fetch(
        "SELECT payload->>'purpose' AS purpose, status, last_error FROM outbox"
        " WHERE lane = $1 ORDER BY id",
        META_LANE,
    )
    assert [(r["purpose"], r["status"]) for r in rows] == [
        ("disclosure", "dead"),
        ("reply", "dead"),
    ]
    assert rows[1]["last_error"].startswith("disclosure_undelivered:")

    # The re-arm event is decided: the disclosure is due again.
    await decide_all(rt)
    assert (await view_of(rt.pool)).disclosure_due
    outcome = await rt.pool.fetchrow(
        "SELECT status, result FROM events WHERE kind = 'disclosure_undelivered'"
    )
    assert outcome["status"] == "done"
    assert outcome["result"]["trigger"] == "disclosure_undelivered"

    # The next automated message gets a fresh disclosure first, which now arrives.
    rt.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    await customer_says(rt, 2, "Hallo nochmal")
    await decide_all(rt)
    with MetaMock() as meta:
        meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": "m-d"})
        meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": "m-r"})
        await dispatch_all(rt)
        texts = sent_texts(meta)
    assert texts[0] == DISCLOSURE and len(texts) == 2
    assert not (await view_of(rt.pool)).disclosure_due
    held = await rt.pool.fetchrow(q("disclosure_holds"))
    assert (held["disclosures"], held["held"]) == (1, 1)


async def add_row(pool: asyncpg.Pool, cid: int, app: str, payload: dict[str, Any],
                  kind: str = "send_message", status: str = "pending") -> int:  # fmt: skip
    return int(
        await pool.fetchval(
            "INSERT INTO outbox (conversation_id, account_id, kind, app, lane, payload, status,"
            " available_at) VALUES ($1, $2, $3, $4, 'meta', $5::jsonb, $6, $7) RETURNING id",
            cid,
            ACCOUNT_ID,
            kind,
            app,
            payload,
            status,
            T0,
        )
    )


def message(purpose: str, text: str, *, automated: bool) -> dict[str, Any]:
    p: dict[str, Any] = {"message": {"text": text}, "messaging_type": "RESPONSE", "tag": None,
                         "purpose": purpose}  # fmt: skip
    if automated:
        p["automated"] = True
    return p


async def conversation(pool: asyncpg.Pool) -> int:
    return int(
        await pool.fetchval(
            "INSERT INTO conversations (account_id, customer_id) VALUES ($1, $2) RETURNING id",
            ACCOUNT_ID,
            CUSTOMER,
        )
    )


async def test_only_automated_messages_up_to_the_next_disclosure_are_held(
    runtime: Runtime,
) -> None:
    """Human-app messages, reactions and thread control go on; what follows a newer
    disclosure depends on that one; no re-arm is needed when a newer one is queued."""
    pool = runtime.pool
    cid = await conversation(pool)
    d1 = await add_row(
        pool, cid, "bot", message("disclosure", "D1", automated=True), status="doing"
    )
    reply = await add_row(pool, cid, "bot", message("reply", "bot 1", automated=True))
    human = await add_row(pool, cid, "support", message("reply", "Anna", automated=False))
    react = await add_row(pool, cid, "bot", {"action": "react", "mid": "m1", "reaction": "love"},
                          kind="sender_action")  # fmt: skip
    notice = await add_row(pool, cid, "bot", message("notice", "bot 2", automated=True))
    d2 = await add_row(pool, cid, "bot", message("disclosure", "D2", automated=True))
    after = await add_row(pool, cid, "bot", message("reply", "bot 3", automated=True))
    await pool.execute("UPDATE outbox SET lease_token = gen_random_uuid() WHERE id = $1", d1)
    token = await pool.fetchval("SELECT lease_token FROM outbox WHERE id = $1", d1)

    assert await pool.fetchval(q("outbox_dead"), d1, token, "Graph error 551: not retried")
    status = {r["id"]: r["status"] for r in await pool.fetch("SELECT id, status FROM outbox")}
    assert status == {d1: "dead", reply: "dead", human: "pending", react: "pending",
                      notice: "dead", d2: "pending", after: "pending"}  # fmt: skip
    # D2 covers what follows it: nothing to re-arm.
    assert await pool.fetchval("SELECT count(*) FROM events") == 0


async def test_a_disclosure_given_up_by_the_lease_reaper_holds_its_reply_too(
    runtime: Runtime,
) -> None:
    """The reaper's path (the dispatcher died at the attempt limit) holds and re-arms like
    the dispatcher's; the re-arm event sorts before the conversation's waiting events, even
    one Meta delivered late with an old timestamp."""
    pool = runtime.pool
    cid = await conversation(pool)
    d1 = await add_row(pool, cid, "bot", message("disclosure", "D1", automated=True))
    reply = await add_row(pool, cid, "bot", message("reply", "bot 1", automated=True))
    await pool.execute(
        "UPDATE outbox SET status = 'doing', attempts = 3, lease_token = gen_random_uuid(),"
        " lease_expires_at = now() - interval '1 minute' WHERE id = $1",
        d1,
    )
    await pool.execute(
        "INSERT INTO events (conversation_id, account_id, dedup_key, kind, source, occurred_at,"
        " payload) VALUES ($1, $2, 'waiting', 'message', 'messaging', $3, '{}')",
        cid,
        ACCOUNT_ID,
        T0 - timedelta(days=5),
    )
    assert len(await pool.fetch(q("outbox_reap"), 3)) == 1
    assert await pool.fetchval("SELECT status FROM outbox WHERE id = $1", reply) == "dead"
    waiting = await pool.fetch(
        "SELECT kind, payload FROM events WHERE status = 'pending' ORDER BY occurred_at, id"
    )
    assert [r["kind"] for r in waiting] == ["disclosure_undelivered", "message"]
    assert waiting[0]["payload"]["held"] == 1


async def test_a_private_reply_led_by_the_disclosure_re_arms_it_when_it_dies(
    runtime: Runtime,
) -> None:
    """A bot's private reply carries the disclosure in its text (one reply per comment); when
    Meta never gets it, the disclosure was not delivered either: the automated message
    behind it is held and the disclosure is due again."""
    pool = runtime.pool
    cid = await conversation(pool)
    payload = {"comment_id": "c1", "message": {"text": "Bot.\n\nJa, in Blau."},
               "automated": True, "discloses": True}  # fmt: skip
    reply = await add_row(pool, cid, "bot", payload, kind="private_reply", status="doing")
    behind = await add_row(pool, cid, "bot", message("reply", "bot 1", automated=True))
    await pool.execute("UPDATE outbox SET lease_token = gen_random_uuid() WHERE id = $1", reply)
    token = await pool.fetchval("SELECT lease_token FROM outbox WHERE id = $1", reply)
    assert await pool.fetchval(q("outbox_dead"), reply, token, "code 2534025: not retried")
    assert await pool.fetchval("SELECT status FROM outbox WHERE id = $1", behind) == "dead"
    assert (
        await pool.fetchval("SELECT count(*) FROM events WHERE kind = 'disclosure_undelivered'")
        == 1
    )


async def test_metrics_expose_undelivered_disclosures_and_held_messages(
    config: Config, db_url: str
) -> None:
    app = create_app(config, database_url=db_url, background=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        pool = client.server.app[RUNTIME].pool
        cid = await conversation(pool)
        d1 = await add_row(pool, cid, "bot", message("disclosure", "D", automated=True))
        await add_row(pool, cid, "bot", message("reply", "bot 1", automated=True))
        await add_row(pool, cid, "bot", message("reply", "bot 2", automated=True))
        await pool.execute("UPDATE outbox SET status = 'dead' WHERE id = $1", d1)
        text = await (await client.get("/metrics")).text()
    assert "orchestrator_disclosures_undelivered 1.0" in text
    assert "orchestrator_automated_messages_held 2.0" in text
