"""Outbox dispatcher on real PostgreSQL, with aioresponses standing in for Meta and a real
loopback port for an unreachable vendor: order, backoff, dead letters, reconciliation."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from orchestrator.config import Config
from orchestrator.engine.dispatcher import LEASE_S, Dispatcher
from orchestrator.engine.outbox_rows import META_LANE, delivery_lane
from orchestrator.engine.runtime import Runtime
from orchestrator.graph import RetryPolicy
from orchestrator.sandbox.runner import _free_port
from orchestrator.store.queries import q
from state_machines import ConversationView
from tests.conftest import ACCOUNT_ID, config_data, engine_runtime, make_config
from tests.meta_mock import MetaMock

GRAPH = "https://graph.facebook.com"
SEND = re.compile(r"^https://graph\.facebook\.com/v25\.0/\d+/messages.*$")
OWNER = re.compile(r"^https://graph\.facebook\.com/v25\.0/\d+/thread_owner.*$")
CUSTOMER = "5550000000000009"


def vendor_config() -> Config:
    data = config_data()
    data["apps"][1]["url"] = f"http://127.0.0.1:{_free_port()}/unreachable"  # nothing listens
    data["apps"][1]["signing_secret"] = "${SUPPORT_SIGNING_SECRET}"
    return make_config(data)


@pytest.fixture
async def runtime(db_url: str) -> AsyncIterator[Runtime]:
    config = vendor_config()
    async with engine_runtime(db_url, config, datetime(2026, 11, 2, 9, tzinfo=UTC)) as rt:
        yield rt


async def add_rows(pool: asyncpg.Pool, rows: list[tuple[str, str, dict[str, Any]]]) -> int:
    cid = await pool.fetchval(
        "INSERT INTO conversations (account_id, customer_id) VALUES ($1, $2) "
        "ON CONFLICT (account_id, customer_id) DO UPDATE SET state = conversations.state RETURNING id",
        ACCOUNT_ID,
        CUSTOMER,
    )
    for kind, app, payload in rows:
        await pool.execute(
            "INSERT INTO outbox (conversation_id, account_id, kind, app, lane, payload,"
            " available_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, '-infinity')",
            cid,
            ACCOUNT_ID,
            kind,
            app,
            delivery_lane(app) if kind == "deliver" else META_LANE,
            payload,
        )
    return int(cid)


def send(text: str) -> tuple[str, str, dict[str, Any]]:
    return (
        "send_message",
        "bot",
        {"message": {"text": text}, "messaging_type": "RESPONSE", "tag": None, "purpose": "reply"},
    )


async def statuses(pool: asyncpg.Pool) -> list[tuple[str, int]]:
    return [
        (r["status"], r["attempts"])
        for r in await pool.fetch("SELECT status, attempts FROM outbox ORDER BY id")
    ]


async def test_rows_of_a_conversation_are_sent_in_order(runtime: Runtime) -> None:
    await add_rows(runtime.pool, [send("eins"), send("zwei"), send("drei")])
    with MetaMock() as meta:
        for i in range(3):
            meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": f"m{i}"})
        d = Dispatcher(runtime)
        while await d.run_once():
            pass
        bodies = [
            c.kwargs.get("json") or json.loads(c.kwargs["data"])
            for (_m, _u), cs in meta.requests.items()
            for c in cs
        ]
    assert [b["message"]["text"] for b in bodies] == ["eins", "zwei", "drei"]
    assert await statuses(runtime.pool) == [("done", 1)] * 3
    transcript = await runtime.pool.fetch("SELECT text, mid FROM messages ORDER BY id")
    assert [(r["text"], r["mid"]) for r in transcript] == [
        ("eins", "m0"),
        ("zwei", "m1"),
        ("drei", "m2"),
    ]


async def test_throttling_pauses_the_account_for_seconds_and_holds_order(
    runtime: Runtime,
) -> None:
    """A 613 pauses the account's sends for about a second (not a row parked for 30-120 s),
    is not counted as a failed attempt, and the order of the conversation holds."""
    await add_rows(runtime.pool, [send("eins"), send("zwei")])
    limited = {
        "error": {
            "message": "(#613) Calls to this api have exceeded the rate limit.",
            "type": "OAuthException",
            "code": 613,
            "fbtrace_id": "Ax",
        }
    }
    with MetaMock() as meta:
        meta.post(SEND, status=400, payload=limited)
        d = Dispatcher(runtime)
        assert await d.run_once()
        assert not await d.run_once()  # the account is paused; "zwei" waits behind "eins"
        row = await runtime.pool.fetchrow(
            "SELECT status, attempts, available_at, last_error FROM outbox ORDER BY id LIMIT 1"
        )
        assert row["status"] == "pending" and row["attempts"] == 0
        assert 0.5 <= (row["available_at"] - runtime.clock.now()).total_seconds() <= 2
        assert "613" in row["last_error"] and "paused" in row["last_error"]
        meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": "m1"})
        meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": "m2"})
        runtime.clock.advance(2)  # type: ignore[attr-defined]
        while await d.run_once():
            pass
        texts = [
            (c.kwargs.get("json") or json.loads(c.kwargs["data"]))["message"]["text"]
            for (_m, _u), cs in meta.requests.items()
            for c in cs
        ]
    assert texts == ["eins", "eins", "zwei"]
    assert await statuses(runtime.pool) == [("done", 1), ("done", 1)]


async def test_not_thread_owner_reconciles_instead_of_retrying(runtime: Runtime) -> None:
    await add_rows(runtime.pool, [send("eins")])
    not_owner = {
        "error": {
            "message": "(#100) This person is not the owner of the thread",
            "type": "OAuthException",
            "code": 100,
            "error_subcode": 2534037,
        }
    }
    with MetaMock() as meta:
        meta.post(SEND, status=400, payload=not_owner)
        meta.get(OWNER, payload={"data": [{"thread_owner": {"app_id": "1217981644879628"}}]})
        d = Dispatcher(runtime)
        await d.run_once()
        calls = [str(u) for (_m, u) in meta.requests]
    assert any("thread_owner" in c for c in calls)
    assert await statuses(runtime.pool) == [("dead", 1)]
    event = await runtime.pool.fetchrow(
        "SELECT kind, payload FROM events WHERE kind = 'owner_reconciled'"
    )
    assert event["payload"]["owner_app_id"] == "1217981644879628"


async def test_unreachable_vendor_never_holds_back_the_customers_replies(
    runtime: Runtime,
) -> None:
    """Deliveries to a sub-app have a lane of their own: a helpdesk that is down is retried
    in order and then dead-lettered, while the bot's reply behind it goes out at once."""
    delivery = (
        "deliver",
        "support",
        {"event": {"type": "message", "text": "hi"}, "standby": False},
    )
    second = ("deliver", "support", {"event": {"type": "message", "text": "2"}, "standby": False})
    await add_rows(runtime.pool, [delivery, send("reply"), second])
    d = Dispatcher(runtime)
    with MetaMock(passthrough=["http://127.0.0.1"]) as meta:
        meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": "m1"})
        assert await d.run_once() == 2  # the delivery (fails) and the reply (sent) together
        assert await statuses(runtime.pool) == [("pending", 1), ("done", 1), ("pending", 0)]
        assert not await d.run_once()  # the second delivery waits behind the first
        runtime.clock.advance(3600)  # type: ignore[attr-defined]
        assert await d.run_once()
        runtime.clock.advance(3600)  # type: ignore[attr-defined]
        assert await d.run_once()  # third attempt: the policy gives up
        assert (await statuses(runtime.pool))[0] == ("dead", 3)
        assert await d.run_once()  # the next delivery proceeds (and fails, retried later)
    assert [s for s, _ in await statuses(runtime.pool)] == ["dead", "done", "pending"]
    reason = await runtime.pool.fetchval("SELECT last_error FROM outbox ORDER BY id LIMIT 1")
    assert "unreachable" in reason


async def test_onboarding_check_warns_per_account_with_a_hint(runtime: Runtime) -> None:
    from orchestrator.ops.onboarding import check_accounts

    refused = {
        "error": {
            "message": "(#200) Requires instagram_manage_messages permission",
            "type": "OAuthException",
            "code": 200,
        }
    }
    with MetaMock() as meta:
        meta.get(
            re.compile(r"^https://graph\.facebook\.com/v25\.0/\d+/conversations.*$"),
            status=403,
            payload=refused,
        )
        (result,) = await check_accounts(runtime)
    assert not result.ok
    assert "200" in result.detail and "App Review" in result.detail
    with MetaMock() as meta:
        meta.get(
            re.compile(r"^https://graph\.facebook\.com/v25\.0/\d+/conversations.*$"),
            payload={"data": [{"id": "c1"}]},
        )
        (result,) = await check_accounts(runtime)
    assert result.ok and result.detail == "1 conversation(s) visible"


async def test_row_of_a_dispatcher_that_died_is_recovered_after_its_lease(
    runtime: Runtime,
) -> None:
    """The one documented at-least-once window: a dispatcher dies after claiming a row (maybe
    after Meta accepted the message). Its lease is not refreshed; once it expires (seconds,
    not minutes) the reaper returns the row and it is sent (again)."""
    await add_rows(runtime.pool, [send("eins")])
    claimed = await runtime.pool.fetchrow(
        "UPDATE outbox SET status = 'doing', attempts = 1, lease_token = gen_random_uuid(),"
        " lease_expires_at = now() + make_interval(secs => $1) RETURNING id",
        LEASE_S,
    )
    d = Dispatcher(runtime)
    assert not await d.run_once()  # in flight elsewhere: nothing else of this lane moves
    assert await d.reap() == 0  # the lease still runs: a slow dispatcher keeps its row
    await runtime.pool.execute(
        "UPDATE outbox SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        claimed["id"],
    )
    assert await d.reap() == 1
    with MetaMock() as meta:
        meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": "m1"})
        assert await d.run_once()
    row = await runtime.pool.fetchrow(
        "SELECT status, attempts FROM outbox WHERE id = $1", claimed["id"]
    )
    assert (row["status"], row["attempts"]) == ("done", 2)


async def test_a_completion_without_the_claims_token_is_refused(runtime: Runtime) -> None:
    """A dispatcher whose lease expired and whose row was claimed again cannot mark it:
    completions check the claim's token."""
    await add_rows(runtime.pool, [send("eins")])
    d = Dispatcher(runtime)
    [first] = await d._claim()
    await runtime.pool.execute("UPDATE outbox SET lease_expires_at = now() - interval '1 s'")
    assert await d.reap() == 1
    [second] = await d._claim()
    assert first["lease_token"] != second["lease_token"]
    none: list[Any] = []
    stale = await runtime.pool.fetch(
        q("outbox_done"),
        [first["id"]],
        [first["lease_token"]],
        ['{"stale": true}'],
        *([none] * 7),
        runtime.clock.now(),
    )
    assert stale == []
    fresh = await runtime.pool.fetch(
        q("outbox_done"),
        [second["id"]],
        [second["lease_token"]],
        ['{"ok": true}'],
        *([none] * 7),
        runtime.clock.now(),
    )
    assert [r["id"] for r in fresh] == [second["id"]]


async def test_a_send_meta_accepted_is_done_even_if_recording_it_fails(runtime: Runtime) -> None:
    """Meta answering a numeric message_id (or anything we cannot record) must not leave the
    row in flight to be sent again: the row is marked done whatever fails afterwards."""
    await add_rows(runtime.pool, [send("eins")])
    with MetaMock() as meta:
        meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": "m\u0000x"})
        d = Dispatcher(runtime)
        assert await d.run_once() == 1
        assert not await d.run_once()
        assert len([c for cs in meta.requests.values() for c in cs]) == 1
    assert await statuses(runtime.pool) == [("done", 1)]


async def test_transient_failures_are_retried_with_jitter_within_a_time_budget(
    runtime: Runtime,
) -> None:
    """Meta answering 500 is retried after a jittered delay while the row is younger than the
    retry budget, and dead-lettered with the budget named once it is older."""
    runtime.retry_policy = RetryPolicy(max_attempts=50)
    await add_rows(runtime.pool, [send("eins")])
    await add_rows(runtime.pool, [send("zwei")])
    # "zwei" shares the conversation's lane; make it a second conversation's row instead.
    other = await runtime.pool.fetchval(
        "INSERT INTO conversations (account_id, customer_id) VALUES ($1, 'other') RETURNING id",
        ACCOUNT_ID,
    )
    await runtime.pool.execute(
        "UPDATE outbox SET conversation_id = $1, created_at = now() - interval '20 minutes'"
        " WHERE payload->'message'->>'text' = 'zwei'",
        other,
    )
    failing = {
        "error": {"message": "An unknown error occurred", "type": "OAuthException", "code": 2}
    }
    with MetaMock() as meta:
        meta.post(SEND, status=500, payload=failing, repeat=True)
        d = Dispatcher(runtime, retry_budget_s=900)
        assert await d.run_once() == 2
    rows = {
        r["text"]: r
        for r in await runtime.pool.fetch(
            "SELECT payload->'message'->>'text' AS text, status, available_at, last_error"
            " FROM outbox"
        )
    }
    assert rows["eins"]["status"] == "pending"
    delay = (rows["eins"]["available_at"] - runtime.clock.now()).total_seconds()
    assert 0 < delay < 2 and delay != 1.0  # the first backoff, spread by jitter
    assert rows["zwei"]["status"] == "dead"
    assert "retry budget of 900s spent" in rows["zwei"]["last_error"]


async def test_a_graph_timeout_is_retried_the_second_documented_duplicate_window(
    runtime: Runtime,
) -> None:
    """Meta not answering in time may still have sent the message; the row is retried like
    any transient failure (README "Guarantees", window 2), so the customer may get it twice,
    and the retry is logged with the reason."""
    await add_rows(runtime.pool, [send("eins")])
    with MetaMock() as meta:
        meta.post(SEND, exception=TimeoutError())
        meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": "m1"})
        d = Dispatcher(runtime)
        assert await d.run_once() == 1
        row = await runtime.pool.fetchrow("SELECT status, last_error FROM outbox")
        assert row["status"] == "pending" and "unreachable" in row["last_error"].lower()
        runtime.clock.advance(5)  # type: ignore[attr-defined]
        assert await d.run_once() == 1
        calls = [c for cs in meta.requests.values() for c in cs]
    assert len(calls) == 2
    assert await statuses(runtime.pool) == [("done", 2)]


async def test_the_window_is_checked_again_at_send_time(runtime: Runtime) -> None:
    """Issue 9.5: a human reply decided inside 24 h but sent (after retries) past it goes out
    tagged HUMAN_AGENT; an automated one is not sent at all."""
    cid = await add_rows(runtime.pool, [])
    last = runtime.clock.now() - timedelta(hours=25)
    await runtime.pool.execute(
        "UPDATE conversations SET view = $2::jsonb WHERE id = $1",
        cid,
        json.dumps(
            {
                **ConversationView(locale="de").to_json(),
                "last_customer_message_at": last.isoformat(),
            }
        ),
    )
    human = (
        "send_message",
        "support",
        {
            "message": {"text": "Hallo"},
            "messaging_type": "RESPONSE",
            "tag": None,
            "purpose": "reply",
        },
    )
    await add_rows(runtime.pool, [human, send("bot too late")])
    with MetaMock() as meta:
        meta.post(SEND, payload={"recipient_id": CUSTOMER, "message_id": "m1"})
        d = Dispatcher(runtime)
        while await d.run_once():
            pass
        bodies = [
            c.kwargs.get("json") or json.loads(c.kwargs["data"])
            for (_m, _u), cs in meta.requests.items()
            for c in cs
        ]
    assert len(bodies) == 1
    assert bodies[0]["messaging_type"] == "MESSAGE_TAG" and bodies[0]["tag"] == "HUMAN_AGENT"
    rows = await runtime.pool.fetch("SELECT status, last_error FROM outbox ORDER BY id")
    assert rows[0]["status"] == "done"
    assert rows[1]["status"] == "dead" and "window closed at send time" in rows[1]["last_error"]
