"""`orchestrator serve` as a real process: a temporary live-mode config whose Graph hosts and
vendor point at the stand-in, its own database, JSON logs in a file; start, kill -9, stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from tests.faults.standin import free_port

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "17841400000000001"
PAGE_ID = "100000000000001"
BOT_SECRET = "fault-bot-secret"
ENV = {
    "FAULT_BOT_APP_SECRET": BOT_SECRET,
    "FAULT_BOT_VERIFY_TOKEN": "fault-bot-verify",
    "FAULT_BOT_PAGE_TOKEN": "fault-bot-page-token",
    "FAULT_BOT_SIGNING_SECRET": "fault-bot-signing",
    "FAULT_BOT_API_KEY": "fault-bot-api-key",
    "FAULT_SUPPORT_APP_SECRET": "fault-support-secret",
    "FAULT_SUPPORT_VERIFY_TOKEN": "fault-support-verify",
    "FAULT_SUPPORT_PAGE_TOKEN": "fault-support-page-token",
    "FAULT_SUPPORT_API_KEY": "fault-support-api-key",
}
DISCLOSURE = "You are chatting with an automated assistant."

CONFIG = """
[service]
mode = "live"
host = "127.0.0.1"
port = {port}
public_url = "https://orchestrator.example.test"
facebook_graph_url = "{graph}"
instagram_graph_url = "{graph}"
workers = 2

[[accounts]]
name = "shop"
instagram_account_id = "{account}"
page_id = "{page}"
locale = "en"
login = "facebook"

[[apps]]
name = "bot"
app_id = "1111111111"
role = "primary"
kind = "bot"
app_secret = "${{FAULT_BOT_APP_SECRET}}"
verify_token = "${{FAULT_BOT_VERIFY_TOKEN}}"
page_token = "${{FAULT_BOT_PAGE_TOKEN}}"
url = "{graph}/vendor"
signing_secret = "${{FAULT_BOT_SIGNING_SECRET}}"
api_key = "${{FAULT_BOT_API_KEY}}"

[[apps]]
name = "support"
app_id = "2222222222"
role = "secondary"
kind = "human"
app_secret = "${{FAULT_SUPPORT_APP_SECRET}}"
verify_token = "${{FAULT_SUPPORT_VERIFY_TOKEN}}"
page_token = "${{FAULT_SUPPORT_PAGE_TOKEN}}"
api_key = "${{FAULT_SUPPORT_API_KEY}}"

[handover.escalation_keywords]
en = ["human"]

[disclosure]
default_locale = "en"

[disclosure.text]
en = "{disclosure}"
"""


class Service:
    def __init__(self, database_url: str, graph_url: str, workdir: Path | None = None) -> None:
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="orchestrator-faults-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = self.dir / "orchestrator.toml"
        self.config.write_text(
            CONFIG.format(
                port=self.port,
                graph=graph_url,
                account=ACCOUNT_ID,
                page=PAGE_ID,
                disclosure=DISCLOSURE,
            ),
            encoding="utf-8",
        )
        self.database_url = database_url
        self.log = self.dir / "service.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self) -> None:
        env = {**os.environ, **ENV, "DATABASE_URL": self.database_url}
        env.pop("PORT", None)
        env.pop("ORCHESTRATOR_MODE", None)
        exe = Path(sys.executable).parent / "orchestrator"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(exe), "--config", str(self.config), "serve"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def start(self, timeout: float = 60.0) -> None:
        self._spawn()
        assert self.proc is not None
        self.starts += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"service exited with {self.proc.returncode}:\n{self.tail()}"
                    )
                try:
                    async with http.get(f"{self.url}/readyz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if loop.time() > deadline:
                    raise AssertionError(f"service not ready within {timeout}s:\n{self.tail()}")
                await asyncio.sleep(0.1)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    async def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines (structlog renders JSON when not on a terminal)."""
        out = []
        for line in self.log.read_text("utf-8", "replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def logged(self, event: str) -> int:
        return sum(1 for e in self.events() if e.get("event") == event)

    def tail(self, n: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-n:])
