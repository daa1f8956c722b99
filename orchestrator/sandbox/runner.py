"""Sandbox: the orchestrator and the Meta simulator wired together in one process.

Used three ways: `make run` in sandbox mode (`start_simulator`), the end-to-end tests and the
QA scenario runner (`Sandbox`). Both sides read ONE clock — the simulator world's — so
"advance the clock 25 hours" moves Meta's window rules and our timers together.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from orchestrator.app import create_app
from orchestrator.config import Config
from orchestrator.sandbox.simulator import (
    WORLD_KEY,
    Faults,
    SimApp,
    SimConfig,
    World,
    create_simulator_app,
)
from orchestrator.sandbox.simulator.server import RUNTIME_KEY
from orchestrator.store.intake import action_row, store_rows
from orchestrator.store.queries import q
from orchestrator.typedefs import RUNTIME


class WorldClock:
    """The orchestrator's clock, reading the simulated world's time."""

    def __init__(self, world: World) -> None:
        self.world = world

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.world.now, UTC)


def sim_config(config: Config, orchestrator_url: str) -> SimConfig:
    account = config.accounts[0]
    return SimConfig(
        account_id=account.instagram_account_id,
        page_id=account.page_id or account.instagram_account_id,
        apps=tuple(
            SimApp(
                name=a.name,
                app_id=a.app_id,
                secret=a.app_secret.value,
                token=config.token(account, a).value,
                webhook_url=f"{orchestrator_url}/webhooks/{a.name}",
                is_default=a.role == "primary",
                can_take=a.can_take,
            )
            for a in config.apps
        ),
        api_version=config.service.graph_api_version,
    )


async def start_simulator(
    config: Config, *, faults: Faults | None = None, sock: socket.socket | None = None
) -> tuple[web.AppRunner, str, World]:
    """Serve the simulator on `service.simulator_port` (or on `sock`, already bound by
    `serve`); returns (runner, base URL, world)."""
    s = config.service
    app = create_simulator_app(sim_config(config, f"http://127.0.0.1:{s.port}"), faults=faults)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site: web.BaseSite = (
            web.SockSite(runner, sock)
            if sock is not None
            else web.TCPSite(runner, "127.0.0.1", s.simulator_port)
        )
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, f"http://127.0.0.1:{s.simulator_port}", app[WORLD_KEY]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Sandbox:
    """Orchestrator + simulator on loopback ports, for tests and scenarios.

    The world's clock is frozen at `start` and moves only with `advance()`, so every run is
    deterministic; `settle()` waits until nothing is left to do at the current time.
    """

    def __init__(
        self,
        config: Config,
        database_url: str,
        *,
        start: datetime | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.config = config
        self.database_url = database_url
        self.start_ts = (start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)).timestamp()
        self.faults = faults
        self._runners: list[web.AppRunner] = []
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Sandbox:
        # A free port can be taken by another process between the probe and the bind (a
        # shared machine): start again on fresh ports rather than fail the run.
        for attempt in range(5):
            try:
                return await self._start()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == 4:
                    raise
                await self.__aexit__()
        raise AssertionError("unreachable")

    async def _start(self) -> Sandbox:
        orch_port, sim_port = _free_port(), _free_port()
        self.url = f"http://127.0.0.1:{orch_port}"
        self.sim_url = f"http://127.0.0.1:{sim_port}"
        start_ts = self.start_ts
        self.sim_app = create_simulator_app(
            sim_config(self.config, self.url), faults=self.faults, clock=lambda: start_ts
        )
        self.world: World = self.sim_app[WORLD_KEY]
        self.clock = WorldClock(self.world)
        self.app = create_app(
            self.config,
            database_url=self.database_url,
            clock=self.clock,
            graph_base_url=self.sim_url,
            poll_interval=0.02,
        )
        for app, port in ((self.sim_app, sim_port), (self.app, orch_port)):
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self._runners.append(runner)
        self.http = aiohttp.ClientSession()
        self.pool: asyncpg.Pool = self.app[RUNTIME].pool
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.http:
            await self.http.close()
            self.http = None
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners = []

    # -- driving ---------------------------------------------------------------------------

    async def sim(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self.http is not None
        async with self.http.request(method, f"{self.sim_url}{path}", json=body) as resp:
            data = await resp.json()
            if resp.status >= 400:
                raise AssertionError(f"simulator {method} {path} → {resp.status}: {data}")
            return data

    async def api(
        self, method: str, path: str, app: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        assert self.http is not None
        key = self.config.app(app)
        token = key.api_key.value if key and key.api_key else ""
        async with self.http.request(
            method, f"{self.url}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            return resp.status, await resp.json()

    async def act_directly(
        self, app: str, customer_id: str, action: dict[str, Any]
    ) -> dict[str, Any] | None:
        """An app's action stored straight into the conversation's queue, as an in-process
        handler's are (for apps without an API key); settles and returns the decision."""
        key = f"action:sandbox:{uuid.uuid4().hex}"
        # The conversation's own key: the Instagram account, or the Page for Messenger.
        account = await self.pool.fetchval(
            "SELECT account_id FROM conversations WHERE customer_id = $1 ORDER BY id LIMIT 1",
            customer_id,
        )
        account = account or self.config.accounts[0].instagram_account_id
        row = action_row(account, customer_id, key, app, action, self.clock.now())
        async with self.pool.acquire() as conn, conn.transaction():
            await store_rows(conn, [row], app)
        self.app[RUNTIME].waker.poke()
        await self.settle()
        result = await self.pool.fetchval("SELECT result FROM events WHERE dedup_key = $1", key)
        return dict(result) if result else None

    async def advance(self, seconds: float) -> None:
        self.world.advance(seconds)
        await self.settle()

    async def settle(self, limit_s: float = 20.0) -> None:
        """Wait until the simulator has delivered everything and the orchestrator has nothing
        left to do at the current time (stable across two consecutive checks)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        quiet = 0
        while quiet < 2:
            await self.sim_app[RUNTIME_KEY].dispatcher.flush()
            busy = await self.pool.fetchval(q("quiescence"), self.clock.now())
            quiet = quiet + 1 if busy == 0 else 0
            if loop.time() > deadline:
                raise TimeoutError(
                    f"the sandbox did not settle within {limit_s}s: {await self._busy()}"
                )
            await asyncio.sleep(0.02)

    async def _busy(self) -> str:
        """What is still open, for a readable failure."""
        events = await self.pool.fetch(
            "SELECT id, kind, source FROM events WHERE status = 'pending' ORDER BY id LIMIT 5"
        )
        outbox = await self.pool.fetch(
            "SELECT id, kind, app, status, attempts, available_at, last_error FROM outbox"
            " WHERE status IN ('pending', 'doing') ORDER BY id LIMIT 5"
        )
        return (
            f"pending events {[dict(r) for r in events]}, open outbox {[dict(r) for r in outbox]}"
        )

    async def conversation(self, customer_id: str) -> Any:
        return await self.pool.fetchrow(
            "SELECT id, state, owner_app, view FROM conversations WHERE customer_id = $1",
            customer_id,
        )
