"""The whole handover flow end to end: real HTTP on loopback, real PostgreSQL, the Meta
simulator standing in for Meta (signed webhooks, Graph API with Meta's rules)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator.config import Config
from orchestrator.sandbox.runner import Sandbox
from tests.conftest import BOT_APP_ID, SUPPORT_APP_ID, config_data, fixture_body, make_config

CUSTOMER = "5550000000000001"
DISCLOSURE_DE = "Sie schreiben mit einem Bot."
HOUR = 3600


@pytest.fixture
async def sandbox(config: Config, db_url: str) -> AsyncIterator[Sandbox]:
    async with Sandbox(config, db_url) as sb:
        yield sb


async def say(sb: Sandbox, text: str, **extra: Any) -> dict[str, Any]:
    result = await sb.sim("POST", f"/sim/customers/{CUSTOMER}/say", {"text": text, **extra})
    await sb.settle()
    return result


async def received(sb: Sandbox) -> list[dict[str, Any]]:
    view = await sb.sim("GET", f"/sim/customers/{CUSTOMER}")
    return view["received"]


async def graph_calls(sb: Sandbox, app: str, path_part: str = "/messages") -> list[dict[str, Any]]:
    log = await sb.sim("GET", f"/sim/log/graph?app={app}")
    return [c for c in log["data"] if c["method"] == "POST" and path_part in c["path"]]


async def state(sb: Sandbox) -> str:
    row = await sb.conversation(CUSTOMER)
    return row["state"]


async def conversation_id(sb: Sandbox) -> int:
    return (await sb.conversation(CUSTOMER))["id"]


async def support(sb: Sandbox, verb: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    cid = await conversation_id(sb)
    status, data = await sb.api(
        "POST", f"/api/v1/conversations/{cid}/{verb}", "support", body or {}
    )
    await sb.settle()
    return status, data


async def escalate(sb: Sandbox) -> None:
    await say(sb, "Hallo")
    await say(sb, "Ich möchte mit einem Menschen sprechen")


async def test_first_message_gets_disclosure_then_the_bots_answer(sandbox: Sandbox) -> None:
    await say(sandbox, "Hallo")
    texts = [m["text"] for m in await received(sandbox)]
    assert texts[0] == DISCLOSURE_DE
    assert len(texts) == 2 and "Öffnungszeiten" in texts[1]
    await say(sandbox, "Wann habt ihr Öffnungszeiten?")
    texts = [m["text"] for m in await received(sandbox)]
    assert texts.count(DISCLOSURE_DE) == 1  # once, not per message
    assert "Montag bis Freitag" in texts[-1]


async def test_german_request_for_a_person_passes_thread_to_support(sandbox: Sandbox) -> None:
    await escalate(sandbox)
    assert await state(sandbox) == "pending_human"
    passes = await graph_calls(sandbox, "bot", "pass_thread_control")
    assert len(passes) == 1
    assert passes[0]["params"]["target_app_id"] == SUPPORT_APP_ID
    assert passes[0]["params"].get("metadata")
    view = await sandbox.sim("GET", f"/sim/customers/{CUSTOMER}")
    assert view["owner_app_id"] == SUPPORT_APP_ID


async def test_human_accepts_replies_and_bot_stays_silent(sandbox: Sandbox) -> None:
    await escalate(sandbox)
    bot_sends_before = len(await graph_calls(sandbox, "bot"))
    status, data = await support(sandbox, "accept")
    assert status == 200, data
    assert await state(sandbox) == "human"
    status, data = await support(sandbox, "messages", {"text": "Hallo, hier ist Anna vom Support."})
    assert status == 200, data
    await say(sandbox, "Danke! Meine Bestellung 4711 fehlt.")
    await say(sandbox, "Hallo?")  # a greeting the bot would answer — it must not
    assert len(await graph_calls(sandbox, "bot")) == bot_sends_before
    texts = [m["text"] for m in await received(sandbox)]
    assert texts[-1] == "Hallo, hier ist Anna vom Support."
    deliveries = await sandbox.pool.fetch(
        "SELECT app, payload FROM outbox WHERE kind = 'deliver' AND payload->'event'->>'text' = 'Hallo?'"
    )
    owners = {r["app"] for r in deliveries if not r["payload"]["standby"]}
    assert owners == {"support"}


async def test_release_brings_bot_back_with_exactly_one_fresh_disclosure(sandbox: Sandbox) -> None:
    await escalate(sandbox)
    await support(sandbox, "accept")
    await support(sandbox, "messages", {"text": "Erledigt!"})
    status, data = await support(sandbox, "release", {"metadata": "solved"})
    assert status == 200, data
    assert await state(sandbox) == "bot"
    texts = [m["text"] for m in await received(sandbox)]
    after_human = texts[texts.index("Erledigt!") + 1 :]
    assert after_human.count(DISCLOSURE_DE) == 1
    await say(sandbox, "Wie lange dauert der Versand?")
    texts = [m["text"] for m in await received(sandbox)]
    after_human = texts[texts.index("Erledigt!") + 1 :]
    assert after_human.count(DISCLOSURE_DE) == 1
    assert "Werktage" in texts[-1]


async def test_pending_timeout_returns_to_bot_with_notice(sandbox: Sandbox) -> None:
    await escalate(sandbox)
    await sandbox.advance(11 * 60)
    assert await state(sandbox) == "bot"
    texts = [m["text"] for m in await received(sandbox)]
    assert "Niemand verfügbar." in texts
    view = await sandbox.sim("GET", f"/sim/customers/{CUSTOMER}")
    assert view["owner_app_id"] in (None, BOT_APP_ID)


async def test_instagram_inbox_take_makes_state_follow(sandbox: Sandbox) -> None:
    await say(sandbox, "Hallo")
    await sandbox.sim("POST", f"/sim/inbox/{CUSTOMER}/take", {"metadata": "agent_took_over"})
    await sandbox.settle()
    assert await state(sandbox) == "human"
    before = len(await graph_calls(sandbox, "bot"))
    await say(sandbox, "Hallo nochmal")
    assert len(await graph_calls(sandbox, "bot")) == before


async def test_bot_reply_25_hours_after_customer_is_refused_without_graph_call(
    sandbox: Sandbox,
) -> None:
    await say(sandbox, "Hallo")
    before = len(await graph_calls(sandbox, "bot"))
    await sandbox.advance(25 * HOUR)
    cid = await conversation_id(sandbox)
    # The bot acts through the same path an in-process handler does: an action event.
    action = {"type": "reply", "message": {"text": "Noch da?"}}
    result = await sandbox.act_directly("bot", CUSTOMER, action)
    assert result is not None
    assert result["refusal"]["code"] == "window_closed"
    assert len(await graph_calls(sandbox, "bot")) == before
    assert cid


async def test_human_message_at_3_days_carries_human_agent_tag_and_at_8_days_is_refused(
    db_url: str,
) -> None:
    data = config_data()
    data["handover"]["human_idle_timeout"] = "30d"  # the agent keeps the thread for the test
    async with Sandbox(make_config(data), db_url) as sandbox:
        await _human_agent_window(sandbox)


async def _human_agent_window(sandbox: Sandbox) -> None:
    await escalate(sandbox)
    await support(sandbox, "accept")
    await sandbox.sim("POST", f"/sim/customers/{CUSTOMER}/say", {"text": "Ich warte auf Antwort"})
    await sandbox.settle()
    await support(sandbox, "extend", {"duration_s": 7 * 24 * HOUR})
    await sandbox.advance(3 * 24 * HOUR)
    status, data = await support(sandbox, "messages", {"text": "Entschuldigung für die Wartezeit."})
    assert status == 200, data
    sent = (await graph_calls(sandbox, "support"))[-1]
    assert sent["params"].get("tag") == "HUMAN_AGENT"
    assert sent["params"].get("messaging_type") == "MESSAGE_TAG"
    # Control lasts at most 7 days from an extend: extend again so that at day 8 the agent
    # still owns the thread and only the HUMAN_AGENT window can refuse.
    await support(sandbox, "extend", {"duration_s": 7 * 24 * HOUR})
    await sandbox.advance(5 * 24 * HOUR)
    before = len(await graph_calls(sandbox, "support"))
    status, data = await support(sandbox, "messages", {"text": "Sind Sie noch da?"})
    assert status == 422, data
    assert data["error"]["code"] == "human_agent_window_closed"
    assert len(await graph_calls(sandbox, "support")) == before


async def test_api_errors_are_clear(sandbox: Sandbox) -> None:
    await say(sandbox, "Hallo")
    cid = await conversation_id(sandbox)
    status, data = await sandbox.api("GET", "/api/v1/conversations", "nobody")
    assert status == 401
    status, data = await sandbox.api("GET", "/api/v1/conversations/999999", "support")
    assert status == 404
    status, data = await sandbox.api(
        "POST", f"/api/v1/conversations/{cid}/messages", "support", {"text": "Hi"}
    )
    assert status == 409 and data["error"]["code"] == "not_owner"
    status, data = await sandbox.api(
        "POST", f"/api/v1/conversations/{cid}/actions", "support", {"type": "dance"}
    )
    assert status == 400
    status, data = await sandbox.api("GET", f"/api/v1/conversations/{cid}", "support")
    assert status == 200 and data["state"] == "bot" and data["transcript"][0]["text"] == "Hallo"
    assert data["window"]["automated_until"]


async def test_burst_of_events_for_one_conversation_is_handled_in_order(sandbox: Sandbox) -> None:
    texts = [f"Nachricht {i}" for i in range(30)]
    await sandbox.sim("POST", f"/sim/customers/{CUSTOMER}/say", {"texts": texts})
    await sandbox.settle()
    rows = await sandbox.pool.fetch(
        "SELECT text FROM messages WHERE direction = 'in' ORDER BY created_at, id"
    )
    assert [r["text"] for r in rows] == texts
    processed = await sandbox.pool.fetch(
        "SELECT payload->'message'->>'text' AS t FROM events WHERE kind = 'message' ORDER BY processed_at, id"
    )
    assert [r["t"] for r in processed] == texts


async def test_edit_updates_the_transcript_and_unsend_erases_it(sandbox: Sandbox) -> None:
    sent = await say(sandbox, "Ich heiße Mxa")
    await sandbox.sim(
        "POST", f"/sim/customers/{CUSTOMER}/edit", {"mid": sent["mid"], "text": "Ich heiße Max"}
    )
    await sandbox.settle()
    cid = await conversation_id(sandbox)
    _, data = await sandbox.api("GET", f"/api/v1/conversations/{cid}", "support")
    assert data["transcript"][0]["text"] == "Ich heiße Max"
    await sandbox.sim("POST", f"/sim/customers/{CUSTOMER}/unsend", {"mid": sent["mid"]})
    await sandbox.settle()
    _, data = await sandbox.api("GET", f"/api/v1/conversations/{cid}", "support")
    assert data["transcript"][0] == {**data["transcript"][0], "deleted": True}
    assert "text" not in data["transcript"][0]
    stored = await sandbox.pool.fetchval(
        "SELECT count(*) FROM events WHERE payload::text LIKE '%Max%' OR payload::text LIKE '%Mxa%'"
    )
    assert stored == 0


async def test_app_roles_that_disagree_with_the_config_are_warned_and_counted(
    sandbox: Sandbox,
) -> None:
    """Meta's app_roles webhook names another primary receiver than our config's: the event
    concerns no conversation, so it is compared with the config where it is recorded."""
    from orchestrator.ingress.signature import sign
    from orchestrator.typedefs import METRICS

    body = fixture_body("app_roles")
    raw = json.dumps(body).encode()
    secret = sandbox.config.app("bot").app_secret.value  # type: ignore[union-attr]
    assert sandbox.http is not None
    async with sandbox.http.post(
        f"{sandbox.url}/webhooks/bot",
        data=raw,
        headers={"X-Hub-Signature-256": sign(secret, raw), "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 200
    await sandbox.settle()
    metrics = sandbox.app[METRICS]
    assert metrics.app_roles_mismatch._value.get() == 1  # another app made primary receiver
