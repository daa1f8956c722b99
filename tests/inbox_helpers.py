"""Shared helpers for the inbox tests: the shipped sandbox config, agents, signing in."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from apps.inbox.agents import add_agent
from orchestrator.config import Config, load_config
from tests.conftest import ROOT

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


def shipped_config() -> Config:
    """config/orchestrator.toml as `make run` uses it (sandbox placeholders for secrets)."""
    return load_config(ROOT / "config" / "orchestrator.toml", env={})


async def make_agent(pool: Any, login: str, role: str = "agent", name: str | None = None) -> int:
    # The cheap argon2 parameters of generated passwords keep the tests fast; the strong
    # ones are covered by the unit tests.
    return await add_agent(
        pool,
        login,
        PASSWORD,
        display_name=name or login.title(),
        role=role,
        generated=True,  # type: ignore[arg-type]
    )


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, html[:2000]
    return match.group(1)


class AgentClient:
    """One agent's browser-less session: a cookie jar, the CSRF token, form posts."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""

    async def close(self) -> None:
        await self.http.close()

    async def sign_in(self, login: str, password: str = PASSWORD) -> int:
        async with self.http.get(f"{self.base}/inbox/login") as resp:
            token = csrf_of(await resp.text())
        async with self.http.post(
            f"{self.base}/inbox/login",
            data={"csrf": token, "login": login, "password": password},
            allow_redirects=False,
        ) as resp:
            status = resp.status
        if status == 303:
            async with self.http.get(f"{self.base}/inbox/") as resp:
                self.csrf = csrf_of(await resp.text())
        return status

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(f"{self.base}{path}", allow_redirects=False) as resp:
            return resp.status, await resp.text()

    async def act(self, conversation_id: int, verb: str, **fields: str) -> tuple[int, str]:
        data = {"csrf": self.csrf, "nonce": fields.pop("nonce", ""), **fields}
        async with self.http.post(
            f"{self.base}/inbox/c/{conversation_id}/{verb}", data=data, allow_redirects=False
        ) as resp:
            if 300 <= resp.status < 400:
                return resp.status, resp.headers.get("Location", "")
            return resp.status, await resp.text()
