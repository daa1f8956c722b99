"""The composition root: config → resources → sub-apps → routes → background work.

Nothing happens at import time. Every long-lived resource is a `cleanup_ctx` generator, so
its setup and teardown sit side by side and run in order (aiohttp docs, "Cleanup Context").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import structlog
from aiohttp import web

from orchestrator.api import rest as api
from orchestrator.api.pages import mount_pages
from orchestrator.clock import Clock, SystemClock
from orchestrator.config import Config
from orchestrator.engine.dispatcher import Dispatcher
from orchestrator.engine.maintenance import maintain
from orchestrator.engine.policy import build_policy
from orchestrator.engine.processing import ConversationProcessor
from orchestrator.engine.runtime import Runtime
from orchestrator.engine.subapps import AppContext, how_called, load_subapp
from orchestrator.engine.wakeup import (
    CHANNEL,
    LISTENER_NAME,
    OUTBOX_CHANNEL,
    Waker,
    watch_peers,
)
from orchestrator.engine.worker import EventWorker
from orchestrator.graph import CallRecord, GraphClient, Rate, RateLimiter, RateLimits, RetryPolicy
from orchestrator.ingress import webhooks
from orchestrator.ops import deadlines, health, logs
from orchestrator.ops.metrics import Metrics
from orchestrator.ops.onboarding import check_accounts
from orchestrator.store.database import create_pool
from orchestrator.store.intake import GroupCommit
from orchestrator.store.migrations import migrate
from orchestrator.typedefs import CLOCK, CONFIG, DB_URL, HTTP, INTAKE, METRICS, POOL, RUNTIME

log = structlog.get_logger(__name__)


def create_app(
    config: Config,
    *,
    database_url: str,
    clock: Clock | None = None,
    background: bool = True,
    graph_base_url: str | None = None,
    poll_interval: float = 0.5,
) -> web.Application:
    """Build the service. `background=False` serves HTTP only (tests drive workers by hand);
    `graph_base_url` points both Graph hosts at a simulator or test server."""
    app = web.Application(client_max_size=config.service.max_body_bytes)
    app[CONFIG] = config
    app[CLOCK] = clock or SystemClock()
    app[METRICS] = Metrics()
    app[DB_URL] = database_url
    app.cleanup_ctx.append(_pool_ctx)
    app.cleanup_ctx.append(_http_ctx)
    app.cleanup_ctx.append(_runtime_ctx(graph_base_url))
    if background:
        app.cleanup_ctx.append(_background_ctx(poll_interval))
    webhooks_routes = [
        web.get("/webhooks/{app}", webhooks.verify_subscription),
        web.post("/webhooks/{app}", webhooks.receive),
    ]
    app.add_routes(webhooks_routes + health.routes + api.routes)
    mount_pages(app, config)  # sub-apps with pages of their own (the agent inbox)
    app.middlewares.extend([logs.request_context, deadlines.body_deadline, api.error_middleware])
    return app


async def _pool_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = await create_pool(app[DB_URL], min_size=2, max_size=max(10, _needed(app[CONFIG])))
    async with pool.acquire() as conn:
        await migrate(conn)
    app[POOL] = pool
    app[INTAKE] = GroupCommit(pool)
    yield
    await pool.close()


def rate_limits(config: Config) -> RateLimits:
    """Per-process limits (docs/platform.md 6): with N processes, configure 1/N of Meta's budget."""
    c = config.rate_limits
    return RateLimits(
        send_text=Rate(c.send_text, 1.0),
        send_media=Rate(c.send_media, 1.0),
        private_reply=Rate(c.private_reply_per_hour, 3600.0),
        conversations=Rate(c.conversations, 1.0),
        thread_control=Rate(c.thread_control, 1.0),
    )


def _needed(config: Config) -> int:
    return config.service.workers + config.service.dispatchers + 6


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    # One ClientSession per process, created inside the running loop. Its connection limit
    # follows max_in_flight (aiohttp's default of 100 queued calls at 150 ms of Graph latency
    # and 500 messages/s), with room for the inbox's and the checks' own calls.
    limit = app[CONFIG].service.max_in_flight + 32
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) as session:
        app[HTTP] = session
        yield


def _runtime_ctx(graph_base_url: str | None):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config, metrics = app[CONFIG], app[METRICS]

        def on_call(record: CallRecord) -> None:
            metrics.graph_latency.labels(record.method).observe(record.duration_s)

        s = config.service
        graph = GraphClient(
            app[HTTP],
            api_version=s.graph_api_version,
            facebook_base_url=graph_base_url or s.facebook_graph_url,
            instagram_base_url=graph_base_url or s.instagram_graph_url,
            limiter=RateLimiter(rate_limits(config)),
            on_call=on_call,
        )
        subapps = {}
        for i, a in enumerate(config.apps):
            handler = load_subapp(i, a, AppContext(app=a, config=config, http=app[HTTP]))
            if handler is not None:
                subapps[a.name] = handler
                log.info("subapp_loaded", app=a.name, called=how_called(a, handler))
        app[RUNTIME] = Runtime(
            config=config,
            pool=app[POOL],
            clock=app[CLOCK],
            metrics=metrics,
            http=app[HTTP],
            graph=graph,
            policy=build_policy(config),
            retry_policy=RetryPolicy(max_attempts=s.outbox_max_attempts),
            waker=Waker(app[POOL]),
            subapps=subapps,
        )
        # Not awaited: Meta being slow or down must not delay start-up.
        check = asyncio.create_task(check_accounts(app[RUNTIME]), name="account-check")
        yield
        check.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await check
        await app[RUNTIME].waker.close()
        outbox_waker = app[RUNTIME].outbox_waker
        if outbox_waker is not None:
            await outbox_waker.close()

    return ctx


def _background_ctx(poll_interval: float):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async for _ in _background(app, poll_interval):
            yield

    return ctx


async def _background(app: web.Application, poll_interval: float) -> AsyncIterator[None]:
    """Workers, dispatchers and maintenance; LISTEN wakes them, polling guarantees progress."""
    rt, config = app[RUNTIME], app[CONFIG]
    s = config.service
    stop = asyncio.Event()
    assert rt.outbox_waker is not None
    event_wake, outbox_wake = rt.waker.local, rt.outbox_waker.local
    listener: asyncpg.Connection = await asyncpg.connect(
        app[DB_URL], server_settings={"application_name": LISTENER_NAME}
    )

    def on_notify(_c: object, _pid: int, channel: str, _payload: str) -> None:
        (event_wake if channel == CHANNEL else outbox_wake).set()

    await listener.add_listener(CHANNEL, on_notify)
    await listener.add_listener(OUTBOX_CHANNEL, on_notify)
    processor = ConversationProcessor(rt)
    dispatchers = [
        Dispatcher(
            rt,
            name=f"dispatcher-{i}",
            poll_interval=poll_interval,
            max_in_flight=max(1, s.max_in_flight // s.dispatchers),
            retry_budget_s=s.retry_budget.total_seconds(),
        )
        for i in range(s.dispatchers)
    ]
    # Each worker hands the rows it writes straight to a dispatcher of this process
    # (migrations/0010_handoff.sql); other processes find them by their claim query.
    tasks = [
        asyncio.create_task(
            EventWorker(
                rt.pool,
                processor,
                clock=rt.clock,
                metrics=rt.metrics,
                name=f"worker-{i}",
                poll_interval=poll_interval,
                on_outbox=rt.outbox_waker.poke,
                handoff=dispatchers[i % len(dispatchers)] if dispatchers else None,
            ).run(stop, event_wake.member()),
            name=f"worker-{i}",
        )
        for i in range(s.workers)
    ]
    workers = list(tasks)
    # Dispatchers stop after the workers: a worker finishing its last batch may still hand
    # them rows, which must be sent and recorded, not left leased until the lease expires.
    dispatch_stop = asyncio.Event()
    tasks += [
        asyncio.create_task(d.run(dispatch_stop, outbox_wake.member()), name=d.name)
        for d in dispatchers
    ]
    tasks.append(
        asyncio.create_task(
            watch_peers(rt.pool, listener.get_server_pid(), [rt.waker, rt.outbox_waker], stop),
            name="peers",
        )
    )
    tasks.append(
        asyncio.create_task(
            maintain(rt, dispatchers[0], stop, retention_s=s.retention.total_seconds()),
            name="maintenance",
        )
    )
    yield
    stop.set()
    # In-flight work finishes (its final writes are shielded); nothing is abandoned half-done.
    await asyncio.gather(*workers, return_exceptions=True)
    dispatch_stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await listener.close()
