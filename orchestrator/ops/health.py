"""/healthz (process alive), /readyz (database reachable, schema current), /metrics."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from orchestrator.ops.metrics import CONTENT_TYPE
from orchestrator.store.migrations import pending
from orchestrator.store.queries import q
from orchestrator.typedefs import METRICS, POOL


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with request.app[POOL].acquire(timeout=2) as conn:
            missing = await pending(conn)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return web.json_response(
            {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}"},
            status=503,
        )
    if missing:
        names = [f"{m.version:04d}_{m.name}" for m in missing]
        return web.json_response(
            {"status": "unavailable", "database": "ok", "migrations_pending": names}, status=503
        )
    return web.json_response({"status": "ready", "database": "ok", "migrations": "current"})


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    try:
        async with request.app[POOL].acquire(timeout=2) as conn:
            depth = await conn.fetchrow(q("queue_depth"))
            outbox = await conn.fetchrow(q("outbox_depth"))
            held = await conn.fetchrow(q("disclosure_holds"))
        m.queue_depth.set(depth["pending"])
        m.oldest_pending.set(depth["oldest_age_s"])
        m.outbox_depth.set(outbox["open"])
        m.dead_letters.set(outbox["dead"])
        m.disclosures_undelivered.set(held["disclosures"])
        m.held_automated.set(held["held"])
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        pass  # counters still render; gauges keep their last values
    return web.Response(body=m.render(), headers={"Content-Type": CONTENT_TYPE})


routes = [
    web.get("/healthz", healthz),
    web.get("/readyz", readyz),
    web.get("/metrics", metrics),
]
