"""The customer's name and username from Meta's User Profile API, where Meta provides them.

Looked up in the background when an agent opens a conversation whose profile is missing or
older than a day; the page shows it on its next live refresh. A lookup Meta refuses (no
profile, no permission) is remembered for a day too, so a page view never waits for Meta and
never hammers it. Nothing of the profile is logged.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import asyncpg
import structlog

from apps.inbox.queries import q
from orchestrator.engine.runtime import Runtime
from orchestrator.graph import GraphError

log = structlog.get_logger(__name__)
LOOKUP_TIMEOUT_S = 10.0


class Profiles:
    def __init__(self) -> None:
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}

    def refresh(
        self, rt: Runtime, pool: asyncpg.Pool, app: str, conv: Any, fresh: bool | None
    ) -> None:
        """Start a lookup unless the stored profile is fresh or one is already running."""
        key = (conv["account_id"], conv["customer_id"])
        if fresh or key in self._running:
            return
        task = asyncio.create_task(self._lookup(rt, pool, app, conv), name="inbox-profile")
        self._running[key] = task
        task.add_done_callback(lambda _t: self._running.pop(key, None))

    async def _lookup(self, rt: Runtime, pool: asyncpg.Pool, app: str, conv: Any) -> None:
        account_id, customer_id = conv["account_id"], conv["customer_id"]
        name = username = None
        failed = False
        try:
            target = rt.graph_target(account_id, app)
            if target.channel == "messenger":
                # A PSID's profile (Messenger User Profile API) has names, no username.
                fields: tuple[str, ...] = ("first_name", "last_name")
            else:
                fields = ("name", "username")
            data = await asyncio.wait_for(
                rt.graph.user_profile(target, customer_id, fields), LOOKUP_TIMEOUT_S
            )
            parts = (_text(data.get("first_name")), _text(data.get("last_name")))
            name = _text(data.get("name")) or " ".join(p for p in parts if p) or None
            username = _text(data.get("username"))
        except (GraphError, LookupError, TimeoutError, ValueError, aiohttp.ClientError) as exc:
            failed = True
            log.info("inbox_profile_unavailable", conversation_id=conv["id"], reason=_why(exc))
        try:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    q("profile_store"), account_id, customer_id, name, username, failed
                )
                await conn.execute(q("notify_change"), str(conv["id"]))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("inbox_profile_not_stored", reason=type(exc).__name__)

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)


def _text(value: Any) -> str | None:
    return str(value)[:200] if isinstance(value, str) and value.strip() else None


def _why(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__}{f' {code}' if code else ''}"
