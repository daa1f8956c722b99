"""Agent accounts: add (or reset), list, disable. Used by `orchestrator agents …` and by the
sandbox's demo agent."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any, Literal

import asyncpg

from apps.inbox.auth import hash_password
from apps.inbox.queries import q

Role = Literal["agent", "admin"]
LOGIN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class AgentError(ValueError):
    pass


def generate_password() -> str:
    return secrets.token_urlsafe(12)  # 16 characters, 96 random bits


async def add_agent(
    conn: asyncpg.Connection | asyncpg.Pool,
    login: str,
    password: str,
    *,
    display_name: str | None = None,
    role: Role | None = None,
    reset: bool = False,
    generated: bool = False,
) -> int:
    """Create an agent (role `agent` unless given); with `reset`, an existing one gets the new
    password (and the role, when given) and is enabled again. Raises AgentError with a
    readable reason."""
    login = login.strip().lower()
    if not LOGIN.match(login):
        raise AgentError(f"login {login!r}: use 1-63 lowercase letters, digits, '.', '_' or '-'")
    if role not in (None, "agent", "admin"):
        raise AgentError(f"role {role!r}: use 'agent' or 'admin'")
    try:
        hashed = await asyncio.to_thread(hash_password, password, generated=generated)
    except ValueError as exc:
        raise AgentError(str(exc)) from None
    if reset:
        agent_id = await conn.fetchval(q("agent_set_password"), login, hashed, role)
        if agent_id is not None:
            return int(agent_id)
    try:
        return int(
            await conn.fetchval(
                q("agent_insert"), login, display_name or login, role or "agent", hashed
            )
        )
    except asyncpg.UniqueViolationError:
        raise AgentError(f"agent {login!r} exists (use --reset to set a new password)") from None


async def list_agents(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(q("agent_list"))]


async def disable_agent(conn: asyncpg.Connection | asyncpg.Pool, login: str) -> bool:
    """Disable an agent: signed out at once, its conversations free for others."""
    return await conn.fetchval(q("agent_disable"), login.strip().lower()) is not None
