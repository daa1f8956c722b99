"""The agent inbox over real HTTP against the sandbox (orchestrator + Meta simulator, real
PostgreSQL): sign-in and its limits, every route behind a session, assignment held by the
database, actions through the ordered path with the core's refusals, notes never sent, the
window rules, escaping, the live stream."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from orchestrator.sandbox.runner import Sandbox
from tests.conftest import wait_for
from tests.inbox_helpers import PASSWORD, AgentClient, make_agent, shipped_config

ESCALATE = "Ich möchte mit einem Menschen sprechen"
CUSTOMER = "5550000000000901"


@pytest.fixture
async def sb(db_url: str) -> AsyncIterator[Sandbox]:
    async with Sandbox(shipped_config(), db_url) as sandbox:
        await make_agent(sandbox.pool, "anna", name="Anna")
        await make_agent(sandbox.pool, "ben", name="Ben")
        await make_agent(sandbox.pool, "chef", role="admin", name="Chef")
        yield sandbox


@pytest.fixture
async def agents(sb: Sandbox) -> AsyncIterator[dict[str, AgentClient]]:
    clients = {name: AgentClient(sb.url) for name in ("anna", "ben", "chef")}
    for name, client in clients.items():
        assert await client.sign_in(name) == 303
    yield clients
    for client in clients.values():
        await client.close()


async def say(sb: Sandbox, text: str, customer: str = CUSTOMER) -> None:
    await sb.sim("POST", f"/sim/customers/{customer}/say", {"text": text})
    await sb.settle()


async def escalated(sb: Sandbox, customer: str = CUSTOMER) -> int:
    await say(sb, "Hallo", customer)
    await say(sb, ESCALATE, customer)
    row = await sb.conversation(customer)
    assert row["state"] == "pending_human"
    return int(row["id"])


async def received(sb: Sandbox, customer: str = CUSTOMER) -> list[str]:
    """What the customer's phone shows from the business, in order."""
    data = await sb.sim("GET", f"/sim/customers/{customer}")
    return [m.get("text") or "" for m in data["timeline"] if m.get("direction") == "in"]


async def graph_calls(sb: Sandbox) -> list[dict[str, Any]]:
    """Every Graph API call the simulator (standing in for Meta) received."""
    return list((await sb.sim("GET", "/sim/log/graph"))["data"])


def flash(html: str) -> str:
    match = re.search(r'data-testid="flash">([^<]*)<', html)
    return match.group(1) if match else ""


# --- sign-in and sessions -----------------------------------------------------------------


async def test_every_inbox_route_and_the_stream_refuse_without_a_session(sb: Sandbox) -> None:
    conv = await escalated(sb)
    paths = []
    for resource in sb.app.router.resources():
        info = resource.get_info()
        prefix = info.get("prefix")
        if prefix != "/inbox":
            continue
        for route in resource._app.router.routes():  # type: ignore[attr-defined]
            sub = route.resource.get_info()
            path = sub.get("path") or sub.get("formatter")
            paths.append((route.method, path))
    assert len(paths) >= 8, paths
    checked = 0
    async with aiohttp.ClientSession() as http:
        for method, path in paths:
            if path.startswith(("/inbox/login", "/inbox/static")):
                continue
            url = sb.url + path.format(conversation_id=conv, verb="reply")
            async with http.request(
                method, url, data={"text": "hi"}, allow_redirects=False
            ) as resp:
                body = await resp.text()
                if method in ("GET", "HEAD") and not path.endswith("/events"):
                    assert resp.status == 303, (path, resp.status)
                    assert resp.headers["Location"].startswith("/inbox/login"), path
                else:
                    assert resp.status == 401, (path, resp.status, body)
                assert ESCALATE not in body and "Hallo" not in body
                checked += 1
        async with http.get(f"{sb.url}/inbox", allow_redirects=False) as resp:
            assert resp.status == 301 and resp.headers["Location"] == "/inbox/"
        # A forged cookie is no session either.
        http.cookie_jar.update_cookies({"inbox_session": "forged"})
        async with http.get(f"{sb.url}/inbox/events") as resp:
            assert resp.status == 401
    assert checked >= 8
    assert await received(sb) and "hi" not in await received(sb)


async def test_session_cookie_is_httponly_and_samesite(sb: Sandbox) -> None:
    client = AgentClient(sb.url)
    try:
        async with client.http.get(f"{sb.url}/inbox/login") as resp:
            html = await resp.text()
        token = re.search(r'name="csrf" value="([^"]+)"', html)
        assert token
        async with client.http.post(
            f"{sb.url}/inbox/login",
            data={"csrf": token.group(1), "login": "anna", "password": PASSWORD},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 303
            cookie = next(
                v for k, v in resp.headers.items() if k == "Set-Cookie" and "inbox_session=" in v
            )
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/inbox" in cookie
        # The stored session is a hash, never the cookie's token.
        value = cookie.split(";")[0].split("=", 1)[1]
        stored = await sb.pool.fetchval("SELECT count(*) FROM inbox_sessions")
        assert stored == 1
        raw = await sb.pool.fetchval("SELECT token_hash FROM inbox_sessions")
        assert value.encode() not in bytes(raw)
    finally:
        await client.close()


async def test_wrong_password_and_rate_limit_even_for_the_right_password(sb: Sandbox) -> None:
    client = AgentClient(sb.url)
    try:
        for _ in range(5):
            assert await client.sign_in("anna", "wrong password!") == 401
        assert await client.sign_in("anna", PASSWORD) == 429
        # Another agent from the same address is still welcome (per-login limit first).
        assert await client.sign_in("ben", PASSWORD) == 303
    finally:
        await client.close()


async def test_sign_in_form_needs_its_csrf_cookie(sb: Sandbox) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{sb.url}/inbox/login",
            data={"csrf": "guess", "login": "anna", "password": PASSWORD},
            allow_redirects=False,
        ) as resp:
            assert resp.status == 403
            assert "inbox_session" not in resp.cookies


async def test_forms_without_the_csrf_token_are_refused(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    conv = await escalated(sb)
    anna = agents["anna"]
    anna.csrf = "not-the-token"
    status, _ = await anna.act(conv, "accept")
    assert status == 403
    assert await sb.pool.fetchval("SELECT count(*) FROM inbox_assignments") == 0
    assert (await sb.conversation(CUSTOMER))["state"] == "pending_human"


async def test_disabled_agent_is_signed_out_at_once(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    from apps.inbox.agents import disable_agent

    assert (await agents["ben"].get("/inbox/"))[0] == 200
    assert await disable_agent(sb.pool, "ben")
    status, _ = await agents["ben"].get("/inbox/")
    assert status == 303
    assert await agents["ben"].sign_in("ben") == 401


# --- the flow ---------------------------------------------------------------------------


async def test_accept_reply_release_through_the_ordered_path(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    conv = await escalated(sb)
    anna = agents["anna"]
    status, html = await anna.get("/inbox/")
    assert status == 200 and 'data-testid="section-pending"' in html
    assert f'data-conversation="{conv}"' in html

    status, where = await anna.act(conv, "accept")
    assert status == 303 and "done=done_accept" in where
    assert (await sb.conversation(CUSTOMER))["state"] == "human"

    status, where = await anna.act(conv, "reply", text="Hallo, hier ist Anna.")
    assert status == 303, where
    await sb.settle()
    assert (await received(sb))[-1] == "Hallo, hier ist Anna."
    # Quick replies from the config, offered with a reply: the phone shows them.
    status, where = await anna.act(conv, "reply", text="Passt das so?", quick_replies="1")
    assert status == 303, where
    await sb.settle()
    timeline = (await sb.sim("GET", f"/sim/customers/{CUSTOMER}"))["timeline"]
    offered = [q["title"] for q in timeline[-1].get("quick_replies") or []]
    assert offered == ["Ja", "Nein", "Danke, alles klar"]
    # The action went through the same queue as everything else, marked with the agent.
    action = await sb.pool.fetchrow(
        "SELECT payload FROM events WHERE kind = 'action' AND dedup_key LIKE 'action:inbox:support:%'"
        " AND payload -> 'action' ->> 'type' = 'reply'"
    )
    assert action["payload"]["agent"]["login"] == "anna"
    _, page = await anna.get(f"/inbox/c/{conv}")
    assert '<span class="author" data-testid="author">Anna</span>' in page

    status, where = await anna.act(conv, "release", reason="erledigt")
    assert status == 303, where
    await sb.settle()
    row = await sb.conversation(CUSTOMER)
    assert row["state"] == "bot"
    assert await sb.pool.fetchval("SELECT count(*) FROM inbox_assignments") == 0
    # The bot got handover_ended with the reason; the customer the disclosure again.
    delivered = await sb.pool.fetch(
        "SELECT payload FROM outbox WHERE kind = 'deliver' AND app = 'bot' ORDER BY id"
    )
    ended = [
        d["payload"] for d in delivered if d["payload"]["event"].get("type") == "handover_ended"
    ]
    assert ended and ended[-1]["event"].get("metadata") == "erledigt"
    await say(sb, "Öffnungszeiten?")
    texts = await received(sb)
    assert "Hinweis: Sie schreiben mit einem automatisierten Assistenten." in texts[-3:]
    audit = await sb.pool.fetch("SELECT action, outcome FROM inbox_audit ORDER BY id")
    assert [(a["action"], a["outcome"]) for a in audit] == [
        ("accept", "accepted"),
        ("reply", "accepted"),
        ("reply", "accepted"),
        ("release", "accepted"),
    ]


async def test_two_agents_accepting_at_once_one_wins_in_the_database(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    conv = await escalated(sb)
    (s1, b1), (s2, b2) = await asyncio.gather(
        agents["anna"].act(conv, "accept"), agents["ben"].act(conv, "accept")
    )
    assert sorted([s1, s2]) == [303, 409], (s1, s2)
    loser = b2 if s1 == 303 else b1
    winner = "Anna" if s1 == 303 else "Ben"
    assert flash(loser) == f"{winner} has already taken this conversation."
    assert await sb.pool.fetchval("SELECT count(*) FROM inbox_assignments") == 1
    # The loser cannot answer the customer.
    other = agents["ben"] if winner == "Anna" else agents["anna"]
    status, html = await other.act(conv, "reply", text="Ich auch!")
    assert status == 409 and "has already taken" in flash(html)
    await sb.settle()
    assert "Ich auch!" not in await received(sb)


async def test_admin_takes_over_and_transfers_to_another_agent(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    conv = await escalated(sb)
    assert (await agents["anna"].act(conv, "accept"))[0] == 303
    # Ben is no admin: he may not take it away from Anna.
    status, html = await agents["ben"].act(conv, "transfer", target="agent:ben")
    assert status == 409 and flash(html) == "Anna has already taken this conversation."
    status, _ = await agents["anna"].act(conv, "transfer", target="agent:ben")
    assert status == 303
    holder = await sb.pool.fetchval("SELECT agent_id FROM inbox_assignments")
    assert holder == await sb.pool.fetchval("SELECT id FROM inbox_agents WHERE login = 'ben'")
    assert (await agents["ben"].act(conv, "reply", text="Ben hier."))[0] == 303
    # The admin takes over.
    assert (await agents["chef"].act(conv, "take"))[0] == 303
    holder = await sb.pool.fetchval("SELECT agent_id FROM inbox_assignments")
    assert holder == await sb.pool.fetchval("SELECT id FROM inbox_agents WHERE login = 'chef'")
    await sb.settle()
    assert "Ben hier." in await received(sb)


async def test_no_take_from_the_bot_unless_the_app_may_take(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    # The shipped config's support app may not take: no button, and posting anyway is
    # refused by the core.
    await say(sb, "Hallo")
    conv = int((await sb.conversation(CUSTOMER))["id"])
    _, html = await agents["anna"].get("/inbox/")
    assert 'data-testid="bot-owned"' in html
    _, html = await agents["anna"].get(f"/inbox/c/{conv}")
    assert 'data-testid="take"' not in html
    status, html = await agents["anna"].act(conv, "take")
    assert status == 409 and "not_allowed" in flash(html)


async def test_take_from_the_bot_when_the_app_may_take(db_url: str) -> None:
    config = shipped_config()
    apps = tuple(
        dataclasses.replace(a, can_take=True) if a.name == "support" else a for a in config.apps
    )
    async with Sandbox(dataclasses.replace(config, apps=apps), db_url) as sb2:
        await make_agent(sb2.pool, "dora", name="Dora")
        dora = AgentClient(sb2.url)
        try:
            assert await dora.sign_in("dora") == 303
            await say(sb2, "Hallo", "5550000000000999")
            conv = int((await sb2.conversation("5550000000000999"))["id"])
            _, html = await dora.get(f"/inbox/c/{conv}")
            assert 'data-testid="take"' in html
            status, where = await dora.act(conv, "take")
            assert status == 303, where
            await sb2.settle()
            row = await sb2.conversation("5550000000000999")
            assert row["state"] == "human" and row["owner_app"] == "support"
            assert (await dora.act(conv, "reply", text="Ich übernehme."))[0] == 303
            await sb2.settle()
            assert (await received(sb2, "5550000000000999"))[-1] == "Ich übernehme."
        finally:
            await dora.close()


async def test_refusal_from_the_core_shows_in_the_page(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    # Accepting a conversation the bot holds: the core refuses (not_allowed), shown as such,
    # and the assignment the inbox took for it is given back.
    await say(sb, "Hallo")
    conv = int((await sb.conversation(CUSTOMER))["id"])
    status, html = await agents["anna"].act(conv, "accept")
    assert status == 409
    assert flash(html).startswith("Refused:") and "not_allowed" in flash(html)
    assert await sb.pool.fetchval("SELECT count(*) FROM inbox_assignments") == 0
    outcome = await sb.pool.fetchval("SELECT outcome FROM inbox_audit")
    assert outcome == "refused"


async def test_note_is_stored_and_never_sent(sb: Sandbox, agents: dict[str, AgentClient]) -> None:
    conv = await escalated(sb)
    assert (await agents["anna"].act(conv, "accept"))[0] == 303
    graph_before = len(await graph_calls(sb))
    outbox_before = await sb.pool.fetchval("SELECT count(*) FROM outbox")
    status, _ = await agents["anna"].act(conv, "note", text="VIP-Kunde, nett sein <b>!</b>")
    assert status == 303
    await sb.settle()
    assert len(await graph_calls(sb)) == graph_before
    assert await sb.pool.fetchval("SELECT count(*) FROM outbox") == outbox_before
    assert not any("VIP" in t for t in await received(sb))
    _, page = await agents["ben"].get(f"/inbox/c/{conv}")
    assert "VIP-Kunde, nett sein &lt;b&gt;!&lt;/b&gt;" in page


async def test_customer_markup_is_printed_never_run(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    await say(sb, '<script>alert("x")</script><img src=x onerror=alert(1)>')
    conv = int((await sb.conversation(CUSTOMER))["id"])
    for path in ("/inbox/", f"/inbox/c/{conv}", "/inbox/?partial=1", f"/inbox/c/{conv}?partial=1"):
        status, html = await agents["anna"].get(path)
        assert status == 200
        assert "<script>alert" not in html and "<img src=x" not in html
    _, html = await agents["anna"].get(f"/inbox/c/{conv}")
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    status, _ = await agents["anna"].get("/inbox/")
    async with agents["anna"].http.get(f"{sb.url}/inbox/") as resp:
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]


async def test_window_closed_disables_the_reply_box_and_refuses(db_url: str) -> None:
    config = shipped_config()
    # An agent who keeps the thread for days: no idle release, control extended below.
    config = dataclasses.replace(
        config, handover=dataclasses.replace(config.handover, human_idle_timeout=timedelta(days=30))
    )
    async with Sandbox(config, db_url) as sb:
        await make_agent(sb.pool, "anna", name="Anna")
        anna = AgentClient(sb.url)
        try:
            assert await anna.sign_in("anna") == 303
            conv = await escalated(sb)
            assert (await anna.act(conv, "accept"))[0] == 303
            _, html = await anna.get(f"/inbox/c/{conv}")
            assert 'data-window="automated"' in html
            assert '<fieldset  data-testid="reply-box">' in html
            await sb.act_directly("support", CUSTOMER, {"type": "extend", "duration_s": 7 * 86400})

            # Two days later: humans only, with the HUMAN_AGENT tag.
            await sb.advance(2 * 86400)
            _, html = await anna.get(f"/inbox/c/{conv}")
            assert 'data-window="human"' in html
            assert "HUMAN_AGENT" in html.split('data-testid="reply-rule">')[1].split("</p>")[0]
            assert (await anna.act(conv, "reply", text="Noch da?"))[0] == 303
            await sb.settle()
            sent = [c for c in await graph_calls(sb) if "Noch da?" in str(c)]
            assert sent and "HUMAN_AGENT" in str(sent[-1])
            await sb.act_directly("support", CUSTOMER, {"type": "extend", "duration_s": 7 * 86400})

            # Past 7 days: closed. The agent still holds the thread, yet the reply box is
            # disabled and says which rule applies.
            await sb.advance(6 * 86400)
            assert (await sb.conversation(CUSTOMER))["state"] == "human"
            _, html = await anna.get(f"/inbox/c/{conv}")
            assert 'data-window="closed"' in html
            assert '<fieldset disabled data-testid="reply-box">' in html
            assert "7-day" in html.split('data-testid="reply-rule">')[1].split("</p>")[0]
            graph_before = len(await graph_calls(sb))
            # Posting anyway: the core refuses, the page names the rule, nothing reaches Meta.
            status, html = await anna.act(conv, "reply", text="Hallo?")
            assert status == 422, html
            assert flash(html).startswith("Refused, the message window is closed")
            await sb.settle()
            assert len(await graph_calls(sb)) == graph_before
        finally:
            await anna.close()


async def test_queue_sections_unread_filters_and_search(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    waiting = await escalated(sb, "5550000000000911")
    mine = await escalated(sb, "5550000000000912")
    await say(sb, "Gibt es Einhörner?", "5550000000000913")
    anna = agents["anna"]
    assert (await anna.act(mine, "accept"))[0] == 303
    _, html = await anna.get("/inbox/?partial=1")
    pending = html.split('data-testid="section-pending"')[1].split("</section>")[0]
    mine_section = html.split('data-testid="section-mine"')[1].split("</section>")[0]
    others = html.split('data-testid="section-all"')[1].split("</section>")[0]
    assert f'data-conversation="{waiting}"' in pending
    assert f'data-conversation="{mine}"' in mine_section
    assert "5550000000000913" in others and 'data-testid="bot-owned"' in others
    assert 'data-testid="unread"' in pending  # Anna has not opened it
    await anna.get(f"/inbox/c/{waiting}")
    _, html = await anna.get("/inbox/?partial=1")
    pending = html.split('data-testid="section-pending"')[1].split("</section>")[0]
    assert 'data-testid="unread"' not in pending
    _, html = await anna.get("/inbox/?partial=1&q=einhörner")
    assert "5550000000000913" in html and f'data-conversation="{waiting}"' not in html
    _, html = await anna.get("/inbox/?partial=1&assignee=@me")
    assert f'data-conversation="{mine}"' in html and f'data-conversation="{waiting}"' not in html
    _, html = await anna.get("/inbox/?partial=1&state=bot")
    assert "5550000000000913" in html and f'data-conversation="{mine}"' not in html
    _, html = await anna.get("/inbox/?partial=1&q=100%25_")  # wildcards are text, not patterns
    assert 'data-testid="queue-item"' not in html


async def test_replies_from_the_instagram_app_are_marked_as_outside(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    await say(sb, "Hallo")
    await sb.sim("POST", f"/sim/inbox/{CUSTOMER}/take", {"metadata": "agent_took_over"})
    await sb.sim("POST", f"/sim/inbox/{CUSTOMER}/reply", {"text": "Hier ist Lisa vom Handy."})
    await sb.settle()
    conv = int((await sb.conversation(CUSTOMER))["id"])
    _, html = await agents["anna"].get(f"/inbox/c/{conv}")
    lisa = html.split("Hier ist Lisa vom Handy.")[0].rsplit('<li class="msg', 1)[1]
    assert "Instagram app / Inbox (outside)" in lisa
    assert "Another app or inbox holds this conversation (instagram_inbox)" in html
    _, html = await agents["anna"].get("/inbox/?partial=1")
    assert "held by instagram_inbox" in html


async def test_customer_profile_where_meta_provides_it(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    await say(sb, "Hallo")
    conv = int((await sb.conversation(CUSTOMER))["id"])
    profile = await sb.sim("GET", f"/sim/customers/{CUSTOMER}")
    username = profile.get("username")
    assert username
    _, html = await agents["anna"].get(f"/inbox/c/{conv}")  # starts the lookup

    async def stored() -> Any:
        return await sb.pool.fetchrow("SELECT name, username, failed FROM inbox_profiles")

    row = await wait_for(stored)
    assert row["username"] == username and not row["failed"]
    _, html = await agents["anna"].get(f"/inbox/c/{conv}")
    assert f'<span class="username">@{username}</span>' in html
    _, html = await agents["anna"].get("/inbox/?partial=1")
    assert f"(@{username})" in html
    lookups = [c for c in await graph_calls(sb) if CUSTOMER in str(c.get("path"))]
    assert len(lookups) == 1  # fresh for a day: opening again asks Meta nothing


async def test_a_messenger_conversation_shows_its_channel_and_the_psids_name(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    psid = "7770000000000901"
    await sb.sim(
        "POST",
        f"/sim/customers/{psid}/say",
        {"text": "Hallo", "channel": "messenger", "username": "lena_meyer"},
    )
    await sb.settle()
    await say(sb, ESCALATE, psid)
    conv = int((await sb.conversation(psid))["id"])
    _, html = await agents["anna"].get("/inbox/?partial=1")
    item = html[html.index(f'data-conversation="{conv}"') :]
    assert 'data-testid="channel" data-channel="messenger">Messenger<' in item.split("</li>")[0]
    _, html = await agents["anna"].get(f"/inbox/c/{conv}")  # starts the profile lookup
    assert 'data-testid="conv-channel" data-channel="messenger"' in html

    async def stored() -> Any:
        return await sb.pool.fetchrow("SELECT name, failed FROM inbox_profiles")

    row = await wait_for(stored)
    assert (row["name"], row["failed"]) == ("Lena Meyer", False)


async def test_bad_input_gets_a_4xx(sb: Sandbox, agents: dict[str, AgentClient]) -> None:
    anna = agents["anna"]
    assert (await anna.get("/inbox/c/99999999999999999999999"))[0] == 404
    assert (await anna.get("/inbox/c/424242"))[0] == 404
    assert (await anna.act(424242, "reply", text="x"))[0] == 404
    assert (await agents["chef"].get("/inbox/audit?conversation=99999999999999999999999"))[0] == 200
    conv = await escalated(sb)
    assert (await anna.act(conv, "dance"))[0] == 404
    assert (await anna.act(conv, "accept"))[0] == 303
    assert (await anna.act(conv, "reply", text="   "))[0] == 400
    assert (await anna.act(conv, "reply", text="x" * 2001))[0] == 400
    assert (await anna.act(conv, "transfer", target="agent:nobody"))[0] == 400
    assert (await anna.act(conv, "transfer", target="moon:base"))[0] == 400
    status, html = await anna.act(conv, "react", mid="", reaction="love")
    assert status == 400 and "Invalid input" in flash(html)


async def test_german_ui(sb: Sandbox, agents: dict[str, AgentClient]) -> None:
    _, html = await agents["anna"].get("/inbox/?lang=de")
    assert "Wartet auf Mitarbeiter" in html and 'lang="de"' in html
    _, html = await agents["anna"].get("/inbox/")  # remembered in a cookie
    assert "Wartet auf Mitarbeiter" in html


async def test_audit_is_for_admins_and_queryable(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    conv = await escalated(sb)
    assert (await agents["anna"].act(conv, "accept"))[0] == 303
    assert (await agents["anna"].get("/inbox/audit"))[0] == 403
    status, html = await agents["chef"].get("/inbox/audit?agent=anna")
    assert status == 200 and "accept" in html and "Anna" in html
    _, html = await agents["chef"].get("/inbox/audit?agent=ben")
    assert "<td>accept</td>" not in html


# --- live -------------------------------------------------------------------------------


async def _next_change(resp: aiohttp.ClientResponse) -> str:
    event = ""
    while True:
        line = (await resp.content.readline()).decode()
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event == "changed":
            return line.split(":", 1)[1].strip()


async def test_live_stream_reports_changes_made_by_workers(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    await say(sb, "Hallo")
    conv = int((await sb.conversation(CUSTOMER))["id"])
    anna = agents["anna"]
    async with anna.http.get(f"{sb.url}/inbox/events") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert (await resp.content.readline()).startswith(b"retry:")

        async def changed_for(conv_id: int) -> None:
            while True:
                ids = await _next_change(resp)
                if ids == "*" or str(conv_id) in ids.split(","):
                    return

        waiter = asyncio.create_task(changed_for(conv))
        await say(sb, ESCALATE)
        await asyncio.wait_for(waiter, 10)  # bound for a broken build only


async def test_nobody_watching_means_no_notify(sb: Sandbox) -> None:
    listener = await __import__("asyncpg").connect(sb.database_url)
    got: list[Any] = []
    try:
        await listener.add_listener("inbox_changes", lambda *a: got.append(a))
        await say(sb, "Hallo")
        await sb.pool.execute("SELECT 1")
        await asyncio.sleep(0)  # let any notification arrive (none expected)
        assert got == []
        await sb.pool.execute("INSERT INTO inbox_watchers (process) VALUES ('test')")
        await say(sb, "Versand?")
        await wait_for(lambda: _truthy(got))
    finally:
        await listener.close()


async def _truthy(value: list[Any]) -> bool:
    return bool(value)


async def test_assignment_ends_when_the_conversation_leaves_the_inbox(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    conv = await escalated(sb)
    assert (await agents["anna"].act(conv, "accept"))[0] == 303
    # Released outside the inbox (a script with the app's API key): nobody holds it any more.
    status, body = await sb.api(
        "POST", f"/api/v1/conversations/{conv}/release", "support", {"metadata": "script"}
    )
    assert status == 200, body
    assert await sb.pool.fetchval("SELECT count(*) FROM inbox_assignments") == 0
    # Escalated again, accepted, then the agent stays silent: the human-idle timeout gives it
    # back to the bot, and the assignment ends with it.
    await say(sb, ESCALATE)
    assert (await agents["ben"].act(conv, "accept"))[0] == 303
    assert await sb.pool.fetchval("SELECT count(*) FROM inbox_assignments") == 1
    await sb.advance(5 * 3600)
    assert (await sb.conversation(CUSTOMER))["state"] == "bot"
    assert await sb.pool.fetchval("SELECT count(*) FROM inbox_assignments") == 0


async def test_comment_private_reply_and_reaction(
    sb: Sandbox, agents: dict[str, AgentClient]
) -> None:
    conv = await escalated(sb)
    anna = agents["anna"]
    _, html = await anna.get(f"/inbox/c/{conv}")
    assert f'action="/inbox/c/{conv}/react"' not in html  # nothing to do before accepting
    assert (await anna.act(conv, "accept"))[0] == 303
    await sb.sim(
        "POST",
        f"/sim/customers/{CUSTOMER}/comment",
        {"text": "Gibt es das in Blau?", "media_id": "17900000000000777", "username": "kundin"},
    )
    await sb.settle()
    _, html = await anna.get(f"/inbox/c/{conv}")
    comment = html.split("kind-comment")[1].split("</li>")[0]
    assert "Gibt es das in Blau?" in comment and "17900000000000777" in comment
    assert "kundin" in comment
    comment_id = re.search(r'name="comment_id" value="([^"]+)"', comment)
    assert comment_id
    status, where = await anna.act(
        conv, "private_reply", comment_id=comment_id.group(1), text="Ja, auch in Blau!"
    )
    assert status == 303, where
    await sb.settle()
    assert "Ja, auch in Blau!" in await received(sb)
    # One private reply per comment: the second is refused by the core, in words.
    status, html = await anna.act(
        conv, "private_reply", comment_id=comment_id.group(1), text="Nochmal"
    )
    assert status == 409 and "private_reply_used" in flash(html)

    mid = re.search(r'name="mid" value="([^"]+)"', html)
    assert mid
    status, where = await anna.act(conv, "react", mid=mid.group(1), reaction="love")
    assert status == 303, where
    await sb.settle()
    calls = await graph_calls(sb)
    assert any("react" in str(c.get("params")) for c in calls), calls[-3:]


async def test_transfer_to_another_human_app(db_url: str) -> None:
    config = shipped_config()
    support = next(a for a in config.apps if a.name == "support")
    billing = dataclasses.replace(
        support,
        name="billing",
        app_id="3333333333",
        app_secret=dataclasses.replace(support.app_secret, value="sandbox-BILLING_APP_SECRET"),
        page_token=dataclasses.replace(support.page_token, value="sandbox-BILLING_PAGE_TOKEN"),
        handler=None,
        api_key=None,
        options={},
    )
    async with Sandbox(dataclasses.replace(config, apps=(*config.apps, billing)), db_url) as sb:
        await make_agent(sb.pool, "anna", name="Anna")
        anna = AgentClient(sb.url)
        try:
            assert await anna.sign_in("anna") == 303
            conv = await escalated(sb)
            assert (await anna.act(conv, "accept"))[0] == 303
            _, html = await anna.get(f"/inbox/c/{conv}")
            assert '<option value="app:billing">billing</option>' in html
            status, where = await anna.act(conv, "transfer", target="app:billing")
            assert status == 303, where
            await sb.settle()
            row = await sb.conversation(CUSTOMER)
            assert row["state"] == "pending_human" and row["view"]["human_app"] == "billing"
            assert await sb.pool.fetchval("SELECT count(*) FROM inbox_assignments") == 0
            _, html = await anna.get(f"/inbox/c/{conv}")
            assert 'data-testid="accept"' not in html  # billing's to accept, not ours
            assert "Another app or inbox holds this conversation" in html
        finally:
            await anna.close()
