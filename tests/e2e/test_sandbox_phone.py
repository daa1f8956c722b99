"""The sandbox used as a person uses it: `orchestrator serve` started as a subprocess with the
shipped sandbox config, the simulator's /phone page driven in headless Chromium (Debian's
/usr/bin/chromium through the playwright package; never `playwright install`), the REST API
as the human agent, and `orchestrator sandbox say` from a terminal.

Everything talks to 127.0.0.1 only. Every wait is for a behaviour (a text on the page, a state
in the API, the process exiting); the bounds only stop a broken run from hanging.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orchestrator.config import load_config
from tests.conftest import ROOT, wait_for

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
# The machine's network is closed: without these flags Chromium hangs on background connections.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHIPPED_CONFIG = ROOT / "config" / "orchestrator.toml"
DISCLOSURE = "Hinweis: Sie schreiben mit einem automatisierten Assistenten."
GREETING = "Hallo! Ich beantworte gern Fragen zu Öffnungszeiten, Versand und Rückgabe."
ESCALATE = "Ich möchte mit einem Menschen sprechen"
API_KEY = "sandbox-SUPPORT_API_KEY"  # the placeholder the sandbox gives ${SUPPORT_API_KEY}
UI_TIMEOUT_MS = 20_000
START_TIMEOUT_S = 90.0  # an embedded PostgreSQL runs initdb on first start
STOP_TIMEOUT_S = 30.0


def _orchestrator_bin() -> str:
    beside = Path(sys.executable).with_name("orchestrator")  # .venv/bin/orchestrator
    found = str(beside) if beside.exists() else shutil.which("orchestrator")
    if not found:
        pytest.fail("the `orchestrator` command is not installed (pip install -e '.[dev]')")
    return found


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _browser_problem() -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture
def chromium() -> Path:
    problem = _browser_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test, but {problem}", pytrace=False)
        pytest.skip(f"no headless browser: {problem}")
    return CHROMIUM


class Service:
    """`orchestrator serve` in sandbox mode, as `make run` starts it, on free loopback ports."""

    def __init__(self, workdir: Path, *, database_url: str | None, data_dir: Path | None):
        self.port, self.sim_port = _free_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.log_path = workdir / "serve.log"
        text = SHIPPED_CONFIG.read_text(encoding="utf-8")
        # Ports through the environment, as an operator would (PORT, SIMULATOR_PORT); only
        # the embedded database folder, without DATABASE_URL, needs a copy of the config.
        if data_dir is not None:
            text = _sub(r"(?m)^\[service\]$", f'[service]\ndata_dir = "{data_dir}"', text)
        self.config_path = workdir / "orchestrator.toml"
        self.config_path.write_text(text, encoding="utf-8")
        # Secrets stay unset, so the sandbox uses its `sandbox-VAR` placeholders.
        secrets = set(re.findall(r"\$\{(\w+)\}", text))
        drop = secrets | {"ORCHESTRATOR_MODE", "ORCHESTRATOR_CONFIG", "PORT", "DATABASE_URL"}
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(
            PORT=str(self.port),
            SIMULATOR_PORT=str(self.sim_port),
            ORCHESTRATOR_CONFIG=str(self.config_path),
        )
        if database_url:
            self.env["DATABASE_URL"] = database_url
        config = load_config(self.config_path, self.env)
        assert config.sandbox and config.service.simulator_port == self.sim_port
        self.workers, self.dispatchers = config.service.workers, config.service.dispatchers
        self.proc: asyncio.subprocess.Process | None = None

    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def errors(self) -> list[str]:
        """Error-level log lines: a person's sandbox session must produce none."""
        return [line for line in self.log().splitlines() if '"level": "error"' in line]

    async def start(self) -> None:
        with self.log_path.open("wb") as out:  # the child keeps its own descriptor
            self.proc = await asyncio.create_subprocess_exec(
                _orchestrator_bin(), "serve", cwd=ROOT, env=self.env,
                stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            while True:
                if self.proc.returncode is not None:
                    pytest.fail(f"`orchestrator serve` exited with {self.proc.returncode}:\n"
                                f"{self.log()}")  # fmt: skip
                try:
                    async with http.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if loop.time() > deadline:
                    pytest.fail(f"/readyz not ready within {START_TIMEOUT_S}s:\n{self.log()}")
                await asyncio.sleep(0.1)
        assert "SANDBOX MODE" in self.log()

    async def stop(self) -> int:
        """Ctrl-C, as a person stops it; returns the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
                pytest.fail(f"no clean shutdown within {STOP_TIMEOUT_S}s:\n{self.log()}")
        assert self.proc.returncode is not None
        return self.proc.returncode

    def assert_clean_shutdown(self, code: int, *, embedded: bool) -> None:
        log = self.log()
        assert code == 0, f"`orchestrator serve` exited with {code} after SIGINT:\n{log}"
        assert "shutting_down" in log, log
        assert log.count('"worker_stopped"') == self.workers, log
        assert log.count('"dispatcher_stopped"') == self.dispatchers, log
        assert ("embedded_database_stopped" in log) is embedded, log
        assert "Traceback" not in log, log
        assert not self.errors(), "\n".join(self.errors())

    async def conversations(self) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            http.get(f"{self.url}/api/v1/conversations", headers=headers) as resp,
        ):
            assert resp.status == 200, await resp.text()
            return list((await resp.json())["conversations"])

    async def state_of(self, customer: str) -> str | None:
        rows = [c for c in await self.conversations() if c["customer_id"] == customer]
        return rows[0]["state"] if rows else None


def _sub(pattern: str, repl: str, text: str) -> str:
    new, n = re.subn(pattern, lambda _m: repl, text)
    assert n == 1, f"config/orchestrator.toml no longer has one line matching {pattern!r}"
    return new


@pytest.fixture
async def services() -> AsyncIterator[list[Service]]:
    """Started services; any still running after the test (it failed) are stopped."""
    started: list[Service] = []
    yield started
    for s in started:
        if s.errors():  # shown with a failing test's captured output
            print(f"errors logged by `orchestrator serve` ({s.log_path}):", *s.errors(), sep="\n")
        if s.proc is not None and s.proc.returncode is None:
            s.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(s.proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                s.proc.kill()
                await s.proc.wait()


async def test_phone_page_in_a_real_browser(
    chromium: Path, db_url: str, tmp_path: Path, services: list[Service]
) -> None:
    from playwright.async_api import async_playwright, expect

    service = Service(tmp_path, database_url=db_url, data_dir=None)
    services.append(service)
    await service.start()
    customer, second = "5550000000000101", "5550000000000102"
    problems: list[str] = []
    shot = Path(os.environ.get("PHONE_SCREENSHOT") or tmp_path / "phone.png")

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS, timeout=60_000
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        page.set_default_timeout(UI_TIMEOUT_MS)
        expect.set_options(timeout=UI_TIMEOUT_MS)  # the page polls; give it time, not 5 s
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

        def console(msg: Any) -> None:
            if msg.type == "error":  # e.g. a failed request the page did not handle
                problems.append(f"console error: {msg.text}")

        page.on("console", console)
        try:
            await page.goto(f"{service.sim_url}/phone")
            texts = page.locator("#chat .msg .text")
            owner = page.get_by_test_id("owner")

            # Choose a customer and say hello.
            await page.get_by_test_id("igsid").fill(customer)
            await page.get_by_test_id("open").click()
            await page.get_by_test_id("text").fill("Hallo")
            await page.get_by_test_id("send").click()
            # First the disclosure, then the bot's answer — and nothing else.
            await expect(texts).to_have_text(["Hallo", DISCLOSURE, re.compile("Öffnungszeiten")])
            await expect(owner).to_have_text("bot")
            await expect(page.get_by_test_id("window")).to_have_text("24h window open")
            await expect(page.get_by_test_id("text")).to_have_value("")

            # React to the bot's answer.
            await page.get_by_test_id("reaction").select_option("like")
            answer = page.locator(".msg.in", has_text="Öffnungszeiten")
            await answer.locator("[data-action=react]").click()
            await expect(answer.get_by_test_id("reaction")).to_have_attribute(
                "data-reaction", "like"
            )

            # Ask for a person: the page shows the message, the conversation waits for a human.
            await page.get_by_test_id("text").fill(ESCALATE)
            await page.get_by_test_id("send").click()
            mine = page.locator("#chat .msg.out .text")
            await expect(mine.nth(1)).to_have_text(ESCALATE)
            await expect(owner).to_have_text("support")

            async def pending(who: str = customer) -> bool:
                return await service.state_of(who) == "pending_human"

            await wait_for(pending, timeout=20)

            # Unsend my own first message: it stays in place, marked as unsent.
            hallo = page.locator(".msg.out").first
            mid = await hallo.get_attribute("data-mid")
            assert mid
            await hallo.locator("[data-action=unsend]").click()
            bubble = page.locator(f'.msg[data-mid="{mid}"]')
            await expect(bubble).to_have_class(re.compile(r"\bdeleted\b"))
            await expect(bubble.locator(".text")).to_have_text("Unsent message")
            await expect(bubble.locator("[data-action=unsend]")).to_have_count(0)
            await expect(page.get_by_test_id("status")).to_have_text("")
            await page.screenshot(path=str(shot))

            # Another customer: the bot does not understand and offers a person as a quick
            # reply, which must be tappable.
            await page.get_by_test_id("igsid").fill(second)
            await page.get_by_test_id("open").click()
            await expect(texts).to_have_count(0)
            await page.get_by_test_id("text").fill("Was kostet ein Einhorn?")
            await page.get_by_test_id("text").press("Enter")
            quick = page.get_by_test_id("quick-reply")
            await expect(quick).to_have_count(1)
            await expect(quick).to_be_enabled()
            title = await quick.inner_text()
            await quick.click()
            await expect(mine.last).to_have_text(title)  # sent as the customer's message
            await expect(quick).to_have_count(0)  # answered: the offer is gone
            await wait_for(lambda: pending(second), timeout=20)
            await expect(owner).to_have_text("support")
            await expect(page.get_by_test_id("status")).to_have_text("")

            # A Messenger customer (a PSID writing to the Page): same bot, same disclosure.
            psid = "7770000000000103"
            await page.get_by_test_id("igsid").fill(psid)
            await page.get_by_test_id("open").click()
            await expect(texts).to_have_count(0)
            await page.get_by_test_id("channel").select_option("messenger")
            await page.get_by_test_id("text").fill("Hallo")
            await page.get_by_test_id("send").click()
            await expect(texts).to_have_text(["Hallo", DISCLOSURE, re.compile("Öffnungszeiten")])
            await expect(page.get_by_test_id("channel")).to_have_value("messenger")
            await expect(page.get_by_test_id("channel")).to_be_disabled()
            [conv] = [c for c in await service.conversations() if c["customer_id"] == psid]
            assert conv["channel"] == "messenger"
        finally:
            try:
                await page.screenshot(path=str(tmp_path / "phone-last.png"))
            finally:
                await browser.close()

    assert not problems, problems
    service.assert_clean_shutdown(await service.stop(), embedded=False)


async def _cli(service: Service, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        _orchestrator_bin(), *args, cwd=ROOT, env=service.env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"`orchestrator {' '.join(args)}` did not finish within 60s")
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder: PostgreSQL's socket path (inside its data folder) is limited to ~100
    characters. Requested before `services`, so it is removed after they stopped."""
    path = Path(tempfile.mkdtemp(prefix="sbx-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_cli_sandbox_say(short_tmp: Path, services: list[Service]) -> None:
    # Without DATABASE_URL, as `make run` does: an embedded PostgreSQL in a fresh folder.
    service = Service(short_tmp, database_url=None, data_dir=short_tmp / "pg")
    services.append(service)
    await service.start()
    customer = "5550000000000201"

    code, out, err = await _cli(service, "sandbox", "say", "Hallo", "--customer", customer)
    assert code == 0, (out, err)
    assert out.splitlines()[:3] == ["you: Hallo", f"bot: {DISCLOSURE}", f"bot: {GREETING}"]
    assert "thread owner: bot" in out

    code, out, err = await _cli(service, "sandbox", "say", ESCALATE, "--customer", customer)
    assert code == 0, (out, err)
    assert out.splitlines()[0] == f"you: {ESCALATE}"
    assert "thread owner: support" in out
    assert await service.state_of(customer) == "pending_human"

    code, out, err = await _cli(service, "sandbox", "show", "--customer", customer)
    assert code == 0, (out, err)
    assert out.splitlines()[:4] == [
        "you: Hallo",
        f"bot: {DISCLOSURE}",
        f"bot: {GREETING}",
        f"you: {ESCALATE}",
    ]

    service.assert_clean_shutdown(await service.stop(), embedded=True)
