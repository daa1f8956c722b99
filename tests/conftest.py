"""Shared fixtures: a real PostgreSQL (embedded, or DATABASE_URL), one fresh database per test
cloned from a migrated template, and a test configuration."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from orchestrator.config import Config, build_config
from orchestrator.ingress.signature import sign
from orchestrator.store.database import connect, start_embedded
from orchestrator.store.migrations import migrate

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
TEMPLATE = "orchestrator_template"

ACCOUNT_ID = "17841400000000001"
PAGE_ID = "100000000000001"
BOT_APP_ID = "1111111111"
SUPPORT_APP_ID = "2222222222"
TEST_ENV = {
    "BOT_APP_SECRET": "bot-secret-for-tests",
    "BOT_VERIFY_TOKEN": "bot-verify",
    "BOT_PAGE_TOKEN": "bot-page-token",
    "SUPPORT_APP_SECRET": "support-secret-for-tests",
    "SUPPORT_VERIFY_TOKEN": "support-verify",
    "SUPPORT_PAGE_TOKEN": "support-page-token",
    "SUPPORT_API_KEY": "support-api-key",
    "SUPPORT_SIGNING_SECRET": "support-signing-secret",
}


def config_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "service": {
            "mode": "live",
            "public_url": "https://orchestrator.example.com",
            "workers": 2,
            "dispatchers": 2,
        },
        "accounts": [
            {
                "name": "shop",
                "instagram_account_id": ACCOUNT_ID,
                "page_id": PAGE_ID,
                "locale": "de",
                "login": "facebook",
            }
        ],
        "apps": [
            {
                "name": "bot",
                "app_id": BOT_APP_ID,
                "role": "primary",
                "kind": "bot",
                "app_secret": "${BOT_APP_SECRET}",
                "verify_token": "${BOT_VERIFY_TOKEN}",
                "page_token": "${BOT_PAGE_TOKEN}",
                "handler": "apps.faq_bot:FaqBot",
            },
            {
                "name": "support",
                "app_id": SUPPORT_APP_ID,
                "role": "secondary",
                "kind": "human",
                "app_secret": "${SUPPORT_APP_SECRET}",
                "verify_token": "${SUPPORT_VERIFY_TOKEN}",
                "page_token": "${SUPPORT_PAGE_TOKEN}",
                "api_key": "${SUPPORT_API_KEY}",
                "standby": True,
            },
        ],
        "handover": {
            "pending_timeout": "10m",
            "human_idle_timeout": "4h",
            "escalation_keywords": {
                "de": ["mensch", "menschen", "mitarbeiter"],
                "en": ["human", "agent"],
            },
            "escalation_payloads": ["TALK_TO_HUMAN"],
        },
        "disclosure": {
            "lapse": "24h",
            "default_locale": "en",
            "text": {"de": "Sie schreiben mit einem Bot.", "en": "You are chatting with a bot."},
            "no_agent_text": {"de": "Niemand verfügbar.", "en": "No one is available."},
        },
    }
    for key, value in overrides.items():
        data[key] = value
    return data


def make_config(data: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Config:
    return build_config(data or config_data(), "test-config", env or TEST_ENV)


@pytest.fixture
def config() -> Config:
    return make_config()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    target = start_embedded(ROOT / ".pgtest")
    yield target.url
    target.server.cleanup()


def _with_database(url: str, name: str) -> str:
    """Same server, another database (works for TCP URLs and pgserver's socket URLs)."""
    base, _, query = url.partition("?")
    head, _, _db = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
async def template_url(pg_server_url: str) -> str:
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await admin.close()
    url = _with_database(pg_server_url, TEMPLATE)
    async with connect(url) as conn:
        await migrate(conn)
    return url


@pytest.fixture
async def db_url(pg_server_url: str, template_url: str) -> AsyncIterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    finally:
        await admin.close()
    yield _with_database(pg_server_url, name)
    admin = await asyncpg.connect(pg_server_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


def fixture_body(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def signed(
    body: bytes | dict[str, Any], secret: str = TEST_ENV["BOT_APP_SECRET"]
) -> tuple[bytes, dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return raw, {"X-Hub-Signature-256": sign(secret, raw), "Content-Type": "application/json"}


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll an async predicate until truthy (behaviour, not timing: the bound only stops a
    broken test from hanging)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {predicate}")
        await asyncio.sleep(interval)


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Every test starts with the service's default log set-up: CLI commands run in-process
    by other tests switch to quieter levels (e.g. `check-config` logs only criticals)."""
    from orchestrator.ops import logs

    logs.configure()


@contextlib.asynccontextmanager
async def engine_runtime(db_url: str, config: Config, now: datetime) -> AsyncIterator[Any]:
    """The engine's Runtime on a real database, a manual clock at `now`, Meta's hosts as in
    production (tests stand in for them with aioresponses) and the config's sub-apps loaded:
    what the integration tests of the dispatcher and of the decision paths run against."""
    import aiohttp

    from orchestrator.clock import ManualClock
    from orchestrator.engine.policy import build_policy
    from orchestrator.engine.runtime import Runtime
    from orchestrator.engine.subapps import AppContext, load_subapp
    from orchestrator.engine.wakeup import Waker
    from orchestrator.graph import GraphClient, RetryPolicy
    from orchestrator.ops.metrics import Metrics
    from orchestrator.store.database import create_pool

    pool = await create_pool(db_url, min_size=1, max_size=4)
    try:
        async with aiohttp.ClientSession() as http:
            rt = Runtime(
                config=config,
                pool=pool,
                clock=ManualClock(now),
                metrics=Metrics(),
                http=http,
                graph=GraphClient(http),
                policy=build_policy(config),
                retry_policy=RetryPolicy(max_attempts=3),
                waker=Waker(pool),
                subapps={},
            )
            for i, a in enumerate(config.apps):
                handler = load_subapp(i, a, AppContext(app=a, config=config, http=http))
                if handler is not None:
                    rt.subapps[a.name] = handler
            yield rt
    finally:
        await pool.close()
