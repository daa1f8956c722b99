"""Sign-in for agents: argon2 password hashes, server-side sessions, CSRF tokens and the
login rate limit.

- Passwords are hashed with argon2id (argon2-cffi); hashing runs in a thread, so a sign-in
  never stalls the event loop. An unknown login is checked against a dummy hash, so the
  answer takes as long as for a known one.
- A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure when the service
  is served over HTTPS); the database keeps only its SHA-256, with the session's CSRF token.
- Every form carries the CSRF token; the sign-in form, before any session exists, uses a
  double-submit cookie.
- Failed sign-ins are counted in the database per login name and per client address, so the
  limit holds across processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from apps.inbox.queries import q

SESSION_COOKIE = "inbox_session"
LOGIN_CSRF_COOKIE = "inbox_login_csrf"
SESSION_TTL = timedelta(hours=12)
FAILURE_WINDOW_S = 15 * 60
MAX_FAILURES_PER_LOGIN = 5
MAX_FAILURES_PER_CLIENT = 20
MIN_PASSWORD_CHARS = 10

_hasher = PasswordHasher()
# For generated passwords only (16 random URL-safe characters, ~96 bits): guessing is hopeless
# whatever the cost, so they get a cheap argon2id and the sandbox starts fast.
_light_hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    login: str
    display_name: str
    role: str
    locale: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class Session:
    agent: Agent
    csrf_token: str


class SignInRefused(Exception):
    """`code` is `rate_limited` or `bad_credentials` (never which of login/password)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def hash_password(password: str, *, generated: bool = False) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    return (_light_hasher if generated else _hasher).hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def same_token(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


async def sign_in(pool: asyncpg.Pool, login: str, password: str, client: str) -> tuple[str, Agent]:
    """Check the rate limit, then the password; returns (session token, agent)."""
    login = login.strip().lower()
    counts = await pool.fetchrow(q("login_failures_recent"), login, client, FAILURE_WINDOW_S)
    if (
        counts["by_login"] >= MAX_FAILURES_PER_LOGIN
        or counts["by_client"] >= MAX_FAILURES_PER_CLIENT
    ):
        raise SignInRefused("rate_limited")
    row = await pool.fetchrow(q("agent_by_login"), login)
    stored = row["password_hash"] if row is not None else _DUMMY_HASH
    ok = await asyncio.to_thread(check_password, stored, password)
    if row is None or not ok or row["disabled_at"] is not None:
        await pool.execute(q("login_failure_insert"), login, client)
        raise SignInRefused("bad_credentials")
    agent = _agent(row)
    token = new_token()
    expires = datetime.now(UTC) + SESSION_TTL
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(q("login_failures_forget"), login)
        await conn.execute(q("sessions_purge"))
        await conn.execute(q("session_insert"), token_hash(token), agent.id, new_token(), expires)
    return token, agent


async def session_for(pool: asyncpg.Pool, token: str | None) -> Session | None:
    if not token or len(token) > 200:
        return None
    row = await pool.fetchrow(q("session_lookup"), token_hash(token))
    if row is None:
        return None
    return Session(_agent(row), row["csrf_token"])


async def sign_out(pool: asyncpg.Pool, token: str | None) -> None:
    if token:
        await pool.execute(q("session_delete"), token_hash(token))


def _agent(row: Any) -> Agent:
    return Agent(row["id"], row["login"], row["display_name"], row["role"], row["locale"])
