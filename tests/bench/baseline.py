"""The baseline: the least a durable webhook receiver does.

A bare aiohttp handler that verifies `X-Hub-Signature-256`, parses the body and commits one
INSERT per event (deduplicated on the message id) before answering 200, on the same kind of
PostgreSQL as the service. No state machine, no outbox, no reply: what the service does
beyond this is what the ratio in the benchmark's table shows.

Run by the benchmark as `python -m tests.bench.baseline PORT DATABASE_URL` with the app
secret in BASELINE_APP_SECRET.
"""

from __future__ import annotations

import json
import os
import sys

import asyncpg
from aiohttp import web

from orchestrator.ingress.signature import verify

SCHEMA = """
CREATE TABLE IF NOT EXISTS baseline_events (
    id bigserial PRIMARY KEY,
    dedup_key text NOT NULL UNIQUE,
    sender text NOT NULL,
    payload jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
)
"""
INSERT = """
INSERT INTO baseline_events (dedup_key, sender, payload) VALUES ($1, $2, $3::jsonb)
ON CONFLICT (dedup_key) DO NOTHING
"""

POOL = web.AppKey("pool", asyncpg.Pool)


def build(database_url: str, secret: str) -> web.Application:
    async def pool_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
        assert pool is not None
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA)
        app[POOL] = pool
        yield
        await pool.close()

    async def receive(request: web.Request) -> web.Response:
        raw = await request.read()
        if not verify(secret, raw, request.headers.get("X-Hub-Signature-256")):
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            body = json.loads(raw)
        except ValueError:
            return web.json_response({"error": "invalid JSON"}, status=400)
        rows = [
            (item["message"]["mid"], item["sender"]["id"], json.dumps(item))
            for entry in body.get("entry", [])
            for item in entry.get("messaging", [])
        ]
        async with request.app[POOL].acquire() as conn:
            if len(rows) == 1:
                await conn.execute(INSERT, *rows[0])  # one statement, one commit
            else:
                async with conn.transaction():
                    await conn.executemany(INSERT, rows)
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.cleanup_ctx.append(pool_ctx)
    app.add_routes([web.post("/webhooks/{app}", receive), web.get("/readyz", ready)])
    return app


if __name__ == "__main__":
    port, url = int(sys.argv[1]), sys.argv[2]
    web.run_app(
        build(url, os.environ["BASELINE_APP_SECRET"]),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
    )
