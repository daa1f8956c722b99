"""Webhook ingress against a real PostgreSQL over real HTTP: verify, record, acknowledge."""

from __future__ import annotations

import io
import json
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
from tests.conftest import ACCOUNT_ID, TEST_ENV, fixture_body, signed, wait_for


@pytest.fixture
async def client(config: Config, db_url: str) -> AsyncIterator[TestClient]:
    app = create_app(config, database_url=db_url, background=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def count(db_url: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(db_url)
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def test_verification_handshake_echoes_challenge(client: TestClient) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": "bot-verify",
        "hub.challenge": "1158201444",
    }
    resp = await client.get("/webhooks/bot", params=params)
    assert resp.status == 200
    assert await resp.text() == "1158201444"


async def test_verification_with_wrong_token_is_forbidden(client: TestClient) -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    assert (await client.get("/webhooks/bot", params=params)).status == 403


async def test_signed_webhook_is_stored(client: TestClient, db_url: str) -> None:
    body, headers = signed(fixture_body("message_text"))
    resp = await client.post("/webhooks/bot", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["stored"] == 1
    assert await count(db_url, "SELECT count(*) FROM events WHERE kind = 'message'") == 1


async def test_non_ascii_body_is_verified_over_its_raw_bytes(
    client: TestClient, db_url: str
) -> None:
    # Meta signs its escaped-unicode form; we must HMAC the bytes as received, not re-encode.
    payload = fixture_body("non_ascii_text")
    for raw in (
        json.dumps(payload, ensure_ascii=True).encode(),
        json.dumps(payload, ensure_ascii=False).encode(),
    ):
        body, headers = signed(raw)
        resp = await client.post("/webhooks/bot", data=body, headers=headers)
        assert resp.status == 200, await resp.text()
    texts = await count(
        db_url,
        "SELECT count(*) FROM events WHERE payload::text LIKE '%ö%' OR payload::text LIKE '%ä%' OR payload::text LIKE '%ü%'",
    )
    assert texts >= 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "must be"),
        ({"X-Hub-Signature-256": "sha1=abc"}, "must be"),
    ],
)
async def test_bad_signature_is_rejected_and_nothing_stored(
    client: TestClient, db_url: str, headers: dict[str, str], reason: str
) -> None:
    body = json.dumps(fixture_body("message_text")).encode()
    resp = await client.post("/webhooks/bot", data=body, headers=headers)
    assert resp.status == 401
    assert reason in (await resp.json())["error"]["message"]
    assert await count(db_url, "SELECT count(*) FROM events") == 0


async def test_signature_of_another_app_is_rejected(client: TestClient) -> None:
    body, headers = signed(fixture_body("message_text"), secret=TEST_ENV["SUPPORT_APP_SECRET"])
    assert (await client.post("/webhooks/bot", data=body, headers=headers)).status == 401


async def test_unknown_app_is_404(client: TestClient) -> None:
    body, headers = signed(fixture_body("message_text"))
    resp = await client.post("/webhooks/nobody", data=body, headers=headers)
    assert resp.status == 404
    assert "nobody" in (await resp.json())["error"]["message"]


async def test_oversize_body_is_413(client: TestClient, db_url: str) -> None:
    body, headers = signed(
        b'{"object":"instagram","entry":[],"pad":"' + b"x" * (1024 * 1024) + b'"}'
    )
    resp = await client.post("/webhooks/bot", data=io.BytesIO(body), headers=headers)
    assert resp.status == 413
    assert await count(db_url, "SELECT count(*) FROM events") == 0


async def test_signed_invalid_json_is_kept_raw_and_acknowledged(
    client: TestClient, db_url: str
) -> None:
    # Signed bytes are what Meta sent (a truncated body fails the signature): a 400 would make
    # Meta retry the same bytes for an hour and then unsubscribe the app (issue 10).
    body, headers = signed(b'{"object": "instagram", "entry": [')
    resp = await client.post("/webhooks/bot", data=body, headers=headers)
    assert resp.status == 200
    answer = await resp.json()
    assert answer["raw_only"] is True and "JSON" in answer["problems"][0]
    assert (
        await count(db_url, "SELECT count(*) FROM raw_deliveries WHERE body_bytes = $1", body) == 1
    )


async def test_unexpected_shape_is_acknowledged_and_kept_raw(
    client: TestClient, db_url: str
) -> None:
    body, headers = signed({"hello": "world"})
    resp = await client.post("/webhooks/bot", data=body, headers=headers)
    assert resp.status == 200  # Meta must not keep retrying something that will never parse
    assert (await resp.json())["problems"]
    assert await count(db_url, "SELECT count(*) FROM raw_deliveries WHERE body LIKE '%hello%'") == 1


async def test_unknown_event_kind_is_stored_flagged(client: TestClient, db_url: str) -> None:
    body, headers = signed(fixture_body("unknown_kind"))
    resp = await client.post("/webhooks/bot", data=body, headers=headers)
    assert resp.status == 200
    assert await count(db_url, "SELECT count(*) FROM events WHERE kind = 'unknown'") >= 1


async def test_redelivered_post_is_stored_once(client: TestClient, db_url: str) -> None:
    body, headers = signed(fixture_body("batch"))
    first = await (await client.post("/webhooks/bot", data=body, headers=headers)).json()
    second = await (await client.post("/webhooks/bot", data=body, headers=headers)).json()
    assert first["stored"] > 1 and first["duplicates"] == 0
    assert second["stored"] == 0 and second["duplicates"] == first["stored"]
    assert await count(db_url, "SELECT count(*) FROM events") == first["stored"]


async def test_standby_copy_from_another_app_is_the_same_event(
    client: TestClient, db_url: str
) -> None:
    message = fixture_body("message_text")
    entry = message["entry"][0]
    standby = {
        "object": "instagram",
        "entry": [{"id": entry["id"], "time": entry["time"], "standby": entry["messaging"]}],
    }
    body, headers = signed(message)
    await client.post("/webhooks/bot", data=body, headers=headers)
    body, headers = signed(standby, secret=TEST_ENV["SUPPORT_APP_SECRET"])
    resp = await client.post("/webhooks/support", data=body, headers=headers)
    assert (await resp.json())["duplicates"] == 1
    assert await count(db_url, "SELECT count(*) FROM events") == 1


def many_entries(n_entries: int, items: int) -> dict[str, Any]:
    entries = []
    for e in range(n_entries):
        messaging = [
            {
                "sender": {"id": f"90000000000{e:03d}"},
                "recipient": {"id": ACCOUNT_ID},
                "timestamp": 1764400000000 + e * 1000 + i,
                "message": {"mid": f"aWdfbWFueV8{e}_{i}", "text": f"entry {e} item {i}"},
            }
            for i in range(items)
        ]
        entries.append({"id": ACCOUNT_ID, "time": 1764400000000, "messaging": messaging})
    return {"object": "instagram", "entry": entries}


async def test_every_entry_and_item_of_a_batch_is_stored(client: TestClient, db_url: str) -> None:
    body, headers = signed(many_entries(10, 5))
    resp = await client.post("/webhooks/bot", data=body, headers=headers)
    assert (await resp.json())["stored"] == 50
    assert await count(db_url, "SELECT count(DISTINCT conversation_id) FROM events") == 10


async def test_unsend_erases_stored_content_and_keeps_tombstone(
    client: TestClient, db_url: str
) -> None:
    body, headers = signed(fixture_body("message_text"))
    await client.post("/webhooks/bot", data=body, headers=headers)
    mid = fixture_body("message_text")["entry"][0]["messaging"][0]["message"]["mid"]
    deletion = fixture_body("message_text")
    item = deletion["entry"][0]["messaging"][0]
    item["message"] = {"mid": mid, "is_deleted": True}
    item["timestamp"] += 5000
    body, headers = signed(deletion)
    assert (await client.post("/webhooks/bot", data=body, headers=headers)).status == 200
    text = fixture_body("message_text")["entry"][0]["messaging"][0]["message"]["text"]
    assert (
        await count(db_url, "SELECT count(*) FROM events WHERE payload::text LIKE $1", f"%{text}%")
        == 0
    )
    assert await count(db_url, "SELECT count(*) FROM events WHERE kind = 'message' AND erased") == 1
    assert await count(db_url, "SELECT count(*) FROM events WHERE kind = 'message_deleted'") == 1


async def test_unsend_arriving_before_the_message_still_erases_it(
    client: TestClient, db_url: str
) -> None:
    original = fixture_body("message_text")
    item = original["entry"][0]["messaging"][0]
    deletion = json.loads(json.dumps(original))
    deletion["entry"][0]["messaging"][0]["message"] = {
        "mid": item["message"]["mid"],
        "is_deleted": True,
    }
    for payload in (deletion, original):
        body, headers = signed(payload)
        assert (await client.post("/webhooks/bot", data=body, headers=headers)).status == 200
    # The request path only stores; the worker erases such a message before anything else.
    rt = client.server.app[RUNTIME]
    worker = EventWorker(rt.pool, ConversationProcessor(rt), clock=rt.clock, metrics=rt.metrics)
    while await worker.run_once():
        pass
    assert (
        await count(
            db_url,
            "SELECT count(*) FROM events WHERE payload::text LIKE $1",
            f"%{item['message']['text']}%",
        )
        == 0
    )
    assert (
        await count(
            db_url, "SELECT count(*) FROM messages WHERE text IS NULL AND deleted_at IS NOT NULL"
        )
        == 1
    )
    # Apps are told about the unsend, never given the erased text.
    assert (
        await count(
            db_url,
            "SELECT count(*) FROM outbox WHERE payload::text LIKE $1",
            f"%{item['message']['text']}%",
        )
        == 0
    )


async def test_database_down_answers_503_then_redelivery_succeeds(
    client: TestClient, db_url: str, pg_server_url: str
) -> None:
    name = db_url.partition("?")[0].rsplit("/", 1)[1]
    body, headers = signed(fixture_body("message_text"))
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )

        async def all_gone() -> bool:
            return not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name
            )

        await wait_for(all_gone)
        resp = await client.post("/webhooks/bot", data=body, headers=headers)
        assert resp.status == 503
    finally:
        await admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        await admin.close()
    resp = await client.post("/webhooks/bot", data=body, headers=headers)
    assert resp.status == 200
    assert (await resp.json())["stored"] == 1


async def test_health_ready_and_metrics(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["migrations"] == "current"
    body, headers = signed(fixture_body("message_text"))
    await client.post("/webhooks/bot", data=body, headers=headers)
    text = await (await client.get("/metrics")).text()
    assert 'orchestrator_webhooks_total{app="bot",outcome="stored"} 1.0' in text
    assert "orchestrator_queue_depth 1.0" in text


async def test_worker_erases_a_message_when_it_processes_its_unsend(
    client: TestClient, db_url: str
) -> None:
    """The guarantee behind intake's immediate erase: even if the transcript row was written
    after intake erased (a race between the two transactions), processing the deletion —
    always after its message, by per-conversation order — erases it."""
    original = fixture_body("message_text")
    item = original["entry"][0]["messaging"][0]
    body, headers = signed(original)
    assert (await client.post("/webhooks/bot", data=body, headers=headers)).status == 200
    rt = client.server.app[RUNTIME]
    worker = EventWorker(rt.pool, ConversationProcessor(rt), clock=rt.clock, metrics=rt.metrics)
    while await worker.run_once():
        pass
    assert (
        await count(
            db_url, "SELECT count(*) FROM messages WHERE text = $1", item["message"]["text"]
        )
        == 1
    )
    # The deletion is stored without intake's erase step, as if it had lost that race.
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO events (conversation_id, account_id, dedup_key, kind, source, mid, occurred_at, payload)"
            " SELECT conversation_id, account_id, 'del:' || mid, 'message_deleted', 'messaging', mid,"
            " occurred_at + interval '1 second', jsonb_build_object('message', jsonb_build_object('mid', mid, 'is_deleted', true),"
            " 'sender', payload->'sender', 'recipient', payload->'recipient', 'timestamp', (payload->>'timestamp')::bigint + 1000)"
            " FROM events WHERE kind = 'message'"
        )
    finally:
        await conn.close()
    while await worker.run_once():
        pass
    assert (
        await count(
            db_url, "SELECT count(*) FROM messages WHERE text IS NULL AND deleted_at IS NOT NULL"
        )
        == 1
    )
    assert (
        await count(
            db_url,
            "SELECT count(*) FROM events WHERE payload::text LIKE $1",
            f"%{item['message']['text']}%",
        )
        == 0
    )
