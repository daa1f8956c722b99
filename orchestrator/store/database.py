"""Where PostgreSQL comes from: `DATABASE_URL`, or an embedded server in a project folder.

The embedded server (`store/embedded.py`) runs PostgreSQL 16 from the `pgserver` wheel in a
git-ignored data folder, so `make run` and `make test` need nothing installed.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from orchestrator.errors import StoreUnavailable
from orchestrator.jsontext import loads

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    url: str
    embedded: bool
    server: Any = None  # pgserver.PostgresServer, kept alive while the target is in use

    @property
    def display(self) -> str:
        """The URL without its password, for logs."""
        if "@" not in self.url:
            return self.url
        scheme, rest = self.url.split("://", 1)
        creds, host = rest.split("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"


def start_embedded(data_dir: str | os.PathLike[str]) -> DatabaseTarget:
    """Start (or join) the embedded PostgreSQL in `data_dir`; stopped when the last user
    exits, even by `kill -9` (see `store/embedded.py`)."""
    from orchestrator.store.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path(data_dir))
    url = server.start()
    return DatabaseTarget(url=url, embedded=True, server=server)


def resolve(env: Mapping[str, str], data_dir: str) -> DatabaseTarget:
    url = env.get("DATABASE_URL")
    if url:
        return DatabaseTarget(url=url, embedded=False)
    return start_embedded(data_dir)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool release hook. asyncpg still rolls back open transactions and drops listeners;
    this skips its RESET ALL/UNLISTEN/advisory-unlock round trip on every release: our pooled
    connections never set session state (LISTEN uses its own connection), and that round
    trip was a measurable share of each webhook's cost."""


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_keep_session,
            command_timeout=30,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
    assert pool is not None
    return pool


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    await _init_connection(conn)
    try:
        yield conn
    finally:
        await conn.close()
