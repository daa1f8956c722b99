"""The baseline: the least a durable webhook receiver does.

A bare aiohttp handler that verifies `X-Hub-Signature-256`, parses the body and commits one
INSERT per event (deduplicated on the message id) before answering 200, on the same kind of
PostgreSQL as the service. No state machine, no outbox, no reply: what the service does
beyond this is what the ratio in the benchmark's table shows.

Run by the benchmark as `python -m tests.bench.baseline PORT DATABASE_URL [GRAPH_URL]` with
the app secret in BASELINE_APP_SECRET. With GRAPH_URL it also echoes each message to the Send
API there after the commit (not durably): the `harness-ceiling` scenario, the most this
machine and harness can show for "one INSERT and one Graph call per message".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import aiohttp
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
HTTP = web.AppKey("http", aiohttp.ClientSession)


def build(database_url: str, secret: str, graph_url: str | None = None) -> web.Application:
    pending: set[asyncio.Task[None]] = set()

    async def pool_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        pool = await asyncpg.create_pool(database_url, min_size=2, max_size=10)
        assert pool is not None
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA)
        app[POOL] = pool
        async with aiohttp.ClientSession() as http:
            app[HTTP] = http
            yield
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        await pool.close()

    async def echo(http: aiohttp.ClientSession, item: dict[str, object]) -> None:
        message = item.get("message")
        sender = item.get("sender")
        if not isinstance(message, dict) or not isinstance(sender, dict):
            return
        body = {"recipient": {"id": sender.get("id")}, "message": {"text": message.get("text")}}
        async with http.post(f"{graph_url}/v25.0/me/messages", json=body) as r:
            await r.read()

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
        if graph_url:
            for entry in body.get("entry", []):
                for item in entry.get("messaging", []):
                    task = asyncio.create_task(echo(request.app[HTTP], item))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.cleanup_ctx.append(pool_ctx)
    app.add_routes([web.post("/webhooks/{app}", receive), web.get("/readyz", ready)])
    return app


if __name__ == "__main__":
    port, url = int(sys.argv[1]), sys.argv[2]
    graph = sys.argv[3] if len(sys.argv) > 3 else None
    web.run_app(
        build(url, os.environ["BASELINE_APP_SECRET"], graph),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
    )
