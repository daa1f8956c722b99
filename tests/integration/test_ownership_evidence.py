"""Issue 9.1 with several apps, on real PostgreSQL through intake and the worker: which copy
each app of ours received is ownership evidence even when intake dropped that copy as a
duplicate of another app's (Meta sends every app its own copy; only the first is stored)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from orchestrator.engine.processing import ConversationProcessor
from orchestrator.engine.runtime import Runtime
from orchestrator.engine.worker import EventWorker
from orchestrator.store.intake import Row, store_rows
from state_machines import INSTAGRAM_INBOX_APP_ID, ConversationView, State
from tests.conftest import ACCOUNT_ID, engine_runtime, make_config

CUSTOMER = "5550000000000091"
T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


@pytest.fixture
async def runtime(db_url: str) -> AsyncIterator[Runtime]:
    config = make_config()  # bot (primary, FAQ bot in process) and support (human, standby)
    async with engine_runtime(db_url, config, T0) as rt:
        yield rt


async def copy_to(rt: Runtime, app: str, source: str, text: str = "Versand?") -> None:
    """One app's copy of the customer's message (the same mid and time for every app)."""
    item = {
        "sender": {"id": CUSTOMER},
        "recipient": {"id": ACCOUNT_ID},
        "timestamp": int(T0.timestamp() * 1000),
        "message": {"mid": "aWdf-evidence-1", "text": text},
    }
    row = Row(ACCOUNT_ID, CUSTOMER, "mid:aWdf-evidence-1", "message", source, "aWdf-evidence-1",
              T0, item)  # fmt: skip
    async with rt.pool.acquire() as conn, conn.transaction():
        await store_rows(conn, [row], app)


async def believe(rt: Runtime, view: ConversationView) -> None:
    async with rt.pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO conversations (account_id, customer_id, state, owner_app, view)"
            " VALUES ($1, $2, $3, $4, $5::jsonb)",
            ACCOUNT_ID,
            CUSTOMER,
            str(view.state),
            view.owner_app,
            view.to_json(),
        )


async def decide_all(rt: Runtime) -> dict[str, Any]:
    worker = EventWorker(rt.pool, ConversationProcessor(rt), clock=rt.clock, metrics=rt.metrics)
    while await worker.run_once():
        pass
    result = await rt.pool.fetchval("SELECT result FROM events WHERE kind = 'message'")
    meta = await rt.pool.fetch("SELECT kind, app, payload FROM outbox WHERE lane = 'meta'")
    return {"trigger": result["trigger"], "meta": [(r["kind"], r["app"]) for r in meta]}


async def test_the_bot_s_dropped_standby_copy_stops_automation(runtime: Runtime) -> None:
    """We believe the bot holds the thread (idle: the primary speaks). Support's standby copy
    is stored first; the bot's own copy, a standby one too, is dropped as its duplicate. The
    bot is not the owner: it does not answer, Meta is asked."""
    await believe(runtime, ConversationView(state=State.BOT, last_customer_message_at=T0))
    await copy_to(runtime, "support", "standby")
    await copy_to(runtime, "bot", "standby")
    decided = await decide_all(runtime)
    assert decided["trigger"] == "customer_standby"
    assert decided["meta"] == [("thread_owner", "bot")]  # the default app asks; no send


async def test_the_bot_s_dropped_messaging_copy_lets_it_answer(runtime: Runtime) -> None:
    """Control: support's standby copy stored, the bot's copy was the messaging one."""
    await believe(runtime, ConversationView(state=State.BOT, last_customer_message_at=T0))
    await copy_to(runtime, "support", "standby")
    await copy_to(runtime, "bot", "messaging")
    decided = await decide_all(runtime)
    assert decided["trigger"] == "customer_message"
    assert ("send_message", "bot") in decided["meta"]


async def test_a_dropped_messaging_copy_while_an_inbox_is_believed_owner_is_checked(
    runtime: Runtime,
) -> None:
    """Bug 4a with the copies in the unlucky order: the Inbox released (no webhook), support's
    standby copy is stored first, the bot's messaging copy is the dropped duplicate. It is
    still the evidence: Meta is asked instead of leaving the bot silent until expiry."""
    inbox = f"foreign:{INSTAGRAM_INBOX_APP_ID}"
    view = ConversationView(state=State.HUMAN, owner_app=inbox, last_customer_message_at=T0)
    await believe(runtime, view)
    await copy_to(runtime, "support", "standby")
    await copy_to(runtime, "bot", "messaging")
    decided = await decide_all(runtime)
    assert decided["trigger"] == "customer_as_owner"
    assert decided["meta"] == [("thread_owner", "bot")]  # once, queued as the copy arrived


async def test_a_messaging_copy_arriving_after_the_decision_still_asks_meta(
    runtime: Runtime,
) -> None:
    """The unlucky timing: support's standby copy was decided on before the bot's messaging
    copy arrived. The evidence is acted on when it arrives: Meta is asked."""
    inbox = f"foreign:{INSTAGRAM_INBOX_APP_ID}"
    view = ConversationView(state=State.HUMAN, owner_app=inbox, last_customer_message_at=T0)
    await believe(runtime, view)
    await copy_to(runtime, "support", "standby")
    decided = await decide_all(runtime)
    assert decided["trigger"] == "customer_message" and decided["meta"] == []
    await copy_to(runtime, "bot", "messaging")  # dropped as a duplicate, still evidence
    meta = await runtime.pool.fetch("SELECT kind, app FROM outbox WHERE lane = 'meta'")
    assert [(r["kind"], r["app"]) for r in meta] == [("thread_owner", "bot")]


async def test_support_s_standby_copy_while_our_pass_is_on_its_way_is_routed_to_it(
    runtime: Runtime,
) -> None:
    """We passed to support a moment ago and the pass has not reached Meta yet: support's
    standby copy is expected then, not evidence; support gets the message as the targeted
    app."""
    view = ConversationView(state=State.PENDING_HUMAN, owner_app="support", human_app="support",
                            last_customer_message_at=T0)  # fmt: skip
    await believe(runtime, view)
    cid = await runtime.pool.fetchval("SELECT id FROM conversations")
    await runtime.pool.execute(
        "INSERT INTO outbox (conversation_id, account_id, kind, app, lane, payload)"
        " VALUES ($1, $2, 'thread_control', 'bot', 'meta', $3::jsonb)",
        cid,
        ACCOUNT_ID,
        {"action": "pass", "target_app_id": "2222222222"},
    )
    await copy_to(runtime, "support", "standby")
    decided = await decide_all(runtime)
    assert decided["trigger"] == "customer_message"
    delivered = await runtime.pool.fetch(
        "SELECT app, payload->>'standby' AS standby FROM outbox WHERE kind = 'deliver'"
    )
    assert ("support", "false") in [(r["app"], r["standby"]) for r in delivered]
