"""The agent inbox in a real browser (Debian's /usr/bin/chromium through playwright), against
the sandbox: the orchestrator with the shipped config and the Meta simulator's phone page.

The customer writes on the phone → asks for a person → the agent's queue shows it without a
reload → accept → reply → the phone shows it → a second agent sees it taken → a note never
reaches the phone → release → the phone shows the disclosure and the bot answers again.
Plus: customer markup is printed, never run; the reply box is disabled once the window has
closed; without a session there is nothing to see. Screenshots of the queue and of a
conversation (laptop and phone widths) are written for the README.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import aiohttp

from orchestrator.sandbox.runner import Sandbox
from tests.conftest import wait_for
from tests.e2e.test_sandbox_phone import (  # noqa: F401 (fixtures)
    CHROMIUM_ARGS,
    DISCLOSURE,
    ESCALATE,
    Service,
    chromium,
    services,
)
from tests.inbox_helpers import PASSWORD, make_agent, shipped_config

UI_TIMEOUT_MS = 20_000
CUSTOMER = "5550000000000301"
REPLY = "Hallo, hier ist Anna. Wie kann ich helfen?"
NOTE = "Stammkundin, bitte freundlich bleiben"
SCRIPT = '<script>window.pwned = 1</script><b onmouseover="x">fett</b>'


async def _sign_in(page: Any, base: str, login: str) -> None:
    await page.goto(f"{base}/inbox/")
    await page.get_by_test_id("login").fill(login)
    await page.get_by_test_id("password").fill(PASSWORD)
    await page.get_by_test_id("password").press("Enter")  # keyboard only
    await page.get_by_test_id("queue").wait_for()


async def test_inbox_flow_in_a_real_browser(
    chromium: Path,  # noqa: F811
    db_url: str,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    shots = Path(os.environ.get("INBOX_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    async with Sandbox(shipped_config(), db_url) as sb:
        await make_agent(sb.pool, "anna", name="Anna")
        await make_agent(sb.pool, "ben", name="Ben")
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(chromium), args=CHROMIUM_ARGS, timeout=60_000
            )
            expect.set_options(timeout=UI_TIMEOUT_MS)
            pages = []
            for _ in range(3):  # three people: the customer, Anna, Ben
                context = await browser.new_context(viewport={"width": 1280, "height": 800})
                page = await context.new_page()
                page.set_default_timeout(UI_TIMEOUT_MS)
                page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
                pages.append(page)
            phone, anna, ben = pages
            try:
                # Without a session: the sign-in page, nothing else.
                await anna.goto(f"{sb.url}/inbox/")
                await expect(anna).to_have_url(re.compile(r"/inbox/login"))
                await expect(anna.get_by_test_id("queue")).to_have_count(0)

                await _sign_in(anna, sb.url, "anna")
                await _sign_in(ben, sb.url, "ben")
                await expect(anna.get_by_test_id("live-status")).to_have_text("live")

                # The customer writes and asks for a person.
                await phone.goto(f"{sb.sim_url}/phone")
                texts = phone.locator("#chat .msg .text")
                await phone.get_by_test_id("igsid").fill(CUSTOMER)
                await phone.get_by_test_id("open").click()
                await phone.get_by_test_id("text").fill("Hallo")
                await phone.get_by_test_id("send").click()
                await expect(texts).to_have_text(
                    ["Hallo", DISCLOSURE, re.compile("Öffnungszeiten")]
                )
                await phone.get_by_test_id("text").fill(ESCALATE)
                await phone.get_by_test_id("send").click()

                # Anna's queue shows it as waiting, without a reload.
                pending = anna.get_by_test_id("section-pending").get_by_test_id("queue-item")
                await expect(pending).to_have_count(1)
                await expect(pending).to_contain_text(CUSTOMER)
                await expect(pending.get_by_test_id("unread")).to_have_text("2")
                await expect(pending.get_by_test_id("waiting")).to_have_text(re.compile(r"\d:\d\d"))
                await anna.screenshot(path=str(shots / "inbox-queue.png"))

                # Ben opens it too; Anna accepts it (keyboard: Tab to the link, Enter).
                conv = int((await sb.conversation(CUSTOMER))["id"])
                await ben.goto(f"{sb.url}/inbox/c/{conv}")
                await expect(ben.get_by_test_id("accept")).to_be_visible()
                await pending.locator("a").focus()
                await anna.keyboard.press("Enter")
                await expect(anna.get_by_test_id("conv-state")).to_have_text("Pending")
                await anna.get_by_test_id("accept").click()
                await expect(anna.get_by_test_id("flash")).to_have_text(
                    "You accepted the conversation."
                )
                await expect(anna.get_by_test_id("conv-assignee")).to_have_text("Anna")

                # Ben's page shows it taken at once: no accept button, reply box disabled.
                await expect(ben.get_by_test_id("conv-assignee")).to_have_text("Anna")
                await expect(ben.get_by_test_id("accept")).to_have_count(0)
                await expect(ben.get_by_test_id("reply-text")).to_be_disabled()
                await expect(ben.get_by_test_id("reply-rule")).to_have_text(
                    "Anna is answering this conversation."
                )

                # Anna replies (Enter sends); the phone shows it.
                box = anna.get_by_test_id("reply-text")
                await expect(box).to_be_enabled()
                await box.fill(REPLY)
                await box.press("Enter")
                await expect(anna.get_by_test_id("flash")).to_have_text("Reply sent.")
                await expect(texts.last).to_have_text(REPLY)
                mine = anna.locator('[data-testid="msg"][data-side="business"]').last
                await expect(mine.get_by_test_id("author")).to_have_text("Anna")

                # A note: in the page, never on the phone.
                await anna.get_by_test_id("note-text").fill(NOTE)
                await anna.get_by_test_id("add-note").click()
                await expect(anna.get_by_test_id("notes")).to_contain_text(NOTE)
                await expect(ben.get_by_test_id("notes")).to_contain_text(NOTE)  # live

                # The customer sends markup: printed as text in the inbox, never run.
                await phone.get_by_test_id("text").fill(SCRIPT)
                await phone.get_by_test_id("send").click()
                customer_said = anna.locator('[data-testid="msg"][data-side="customer"]').last
                await expect(customer_said.get_by_test_id("text")).to_have_text(SCRIPT)
                assert await anna.evaluate("typeof window.pwned") == "undefined"
                await anna.screenshot(path=str(shots / "inbox-conversation.png"), full_page=True)
                await anna.set_viewport_size({"width": 390, "height": 844})
                await anna.screenshot(path=str(shots / "inbox-conversation-phone.png"))
                await anna.set_viewport_size({"width": 1280, "height": 800})

                # Release with a reason: the phone shows the disclosure, the bot answers again.
                before = await texts.count()
                await anna.get_by_test_id("release-reason").fill("erledigt")
                await anna.get_by_test_id("release").click()
                await expect(anna.get_by_test_id("flash")).to_have_text("Released to the bot.")
                await expect(anna.get_by_test_id("conv-state")).to_have_text("Bot")
                await expect(texts.nth(before)).to_have_text(DISCLOSURE)
                await phone.get_by_test_id("text").fill("Wann habt ihr geöffnet? Öffnungszeiten")
                await phone.get_by_test_id("send").click()
                await expect(texts.last).to_have_text(re.compile("Uhr|Öffnungszeiten"))
                all_texts = await texts.all_inner_texts()
                assert NOTE not in " ".join(all_texts)
                assert all_texts.count(DISCLOSURE) == 2, all_texts

                # Eight days later the window has closed: the reply box is disabled.
                await sb.advance(8 * 86400)
                await anna.reload()
                await expect(anna.get_by_test_id("window")).to_have_attribute(
                    "data-window", "closed"
                )
                await expect(anna.get_by_test_id("reply-text")).to_be_disabled()
            finally:
                await anna.screenshot(path=str(tmp_path / "inbox-last.png"))
                await browser.close()

        # The stream, too, needs a session.
        async with aiohttp.ClientSession() as http, http.get(f"{sb.url}/inbox/events") as resp:
            assert resp.status == 401
        await wait_for(lambda: _none(problems))
    assert not problems, problems


async def _none(items: list[str]) -> bool:
    return not items


async def test_make_run_prints_the_demo_agent_who_can_sign_in(
    db_url: str,
    tmp_path: Path,
    services: list[Service],  # noqa: F811
) -> None:
    """`orchestrator serve` with the shipped config, as `make run` starts it: the inbox is
    on, the demo agent's sign-in is printed, and Ctrl-C stops cleanly with a stream open."""
    service = Service(tmp_path, database_url=db_url, data_dir=None)
    services.append(service)
    await service.start()
    match = re.search(r"INBOX: (\S+) sign in as (\S+) / (\S+) ", service.log())
    assert match, service.log()
    url, login, password = match.groups()
    assert url == f"{service.url}/inbox/"
    base = service.url
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}/inbox/login") as resp:
            token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert token
        async with http.post(
            f"{base}/inbox/login",
            data={"csrf": token.group(1), "login": login, "password": password},
        ) as resp:
            assert resp.status == 200 and 'data-testid="queue"' in await resp.text()
        async with http.get(f"{base}/inbox/events") as stream:
            assert stream.status == 200
            await stream.content.readline()
            code = await service.stop()  # with the stream still open
    service.assert_clean_shutdown(code, embedded=False)
