"""`make bench`: throughput figures on loopback (prints numbers; asserts nothing).

1. Ingress: signed single-message webhooks POSTed with 64 concurrent connections to the real
   service (signature check, parse, one batched insert per request), workers off.
2. Processing: the stored events drained by the event workers (state machine + outbox rows).
3. Batches: POSTs of 50 items each, to show the per-item cost of one transaction.
Every loop is bounded by count; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web

from orchestrator.app import create_app
from orchestrator.clock import SystemClock
from orchestrator.engine.processing import ConversationProcessor
from orchestrator.engine.worker import EventWorker
from orchestrator.ingress.signature import sign
from orchestrator.ops.metrics import Metrics
from orchestrator.sandbox.runner import _free_port
from orchestrator.store.database import resolve
from orchestrator.typedefs import RUNTIME
from tests.conftest import ACCOUNT_ID, TEST_ENV, make_config

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "5000"))
CONCURRENCY = 64
CUSTOMERS = 200


def body(n: int, items: int = 1) -> bytes:
    messaging = [
        {
            "sender": {"id": f"77{(n * items + i) % CUSTOMERS:014d}"},
            "recipient": {"id": ACCOUNT_ID},
            "timestamp": 1764400000000 + n * items + i,
            "message": {"mid": f"aWdfYmVuY2g{uuid.uuid4().hex}", "text": "Hallo, Öffnungszeiten?"},
        }
        for i in range(items)
    ]
    entry = {"id": ACCOUNT_ID, "time": 1764400000000, "messaging": messaging}
    return json.dumps({"object": "instagram", "entry": [entry]}).encode()


async def post_all(url: str, bodies: list[bytes]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    secret = TEST_ENV["BOT_APP_SECRET"]
    conn = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def client() -> None:
            while not queue.empty():
                b = queue.get_nowait()
                t = time.perf_counter()
                async with session.post(
                    url, data=b, headers={"X-Hub-Signature-256": sign(secret, b)}
                ) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}")
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        return time.perf_counter() - start, latencies


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


async def main() -> int:
    from orchestrator.ops import logs

    # Info lines (one per webhook, one per event) go to a terminal here, not to a log
    # shipper: measure the pipeline, not the terminal.
    logs.configure(level="WARNING")
    target = resolve(os.environ, str(Path(".pgtest").resolve()))
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(target.url)
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    base, _, query = target.url.partition("?")
    db_url = f"{base.rpartition('/')[0]}/{name}" + (f"?{query}" if query else "")
    config = make_config()
    port = _free_port()
    # The service runs in its own process, as in production: the load generator must not
    # share its event loop (or its core) with the server it measures.
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.run", "--serve", db_url, str(port)
    )
    try:
        url = f"http://127.0.0.1:{port}/webhooks/bot"
        await _wait_ready(f"http://127.0.0.1:{port}/readyz")
        print(
            f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, "
            f"{'embedded' if target.embedded else 'external'} PostgreSQL"
        )
        await post_all(url, [body(i) for i in range(200)])  # warm-up
        elapsed, lat = await post_all(url, [body(i) for i in range(200, 200 + REQUESTS)])
        print(
            f"ingress, 1 item/POST:   {REQUESTS / elapsed:8.0f} req/s   p50 {pct(lat, 0.5):5.1f} ms"
            f"   p99 {pct(lat, 0.99):5.1f} ms   ({REQUESTS} requests, {CONCURRENCY} connections)"
        )
        n_batches = max(REQUESTS // 50, 20)
        elapsed, lat = await post_all(url, [body(10**6 + i, 50) for i in range(n_batches)])
        print(
            f"ingress, 50 items/POST: {n_batches * 50 / elapsed:8.0f} items/s "
            f"p50 {pct(lat, 0.5):5.1f} ms   p99 {pct(lat, 0.99):5.1f} ms"
        )
    finally:
        server.terminate()
        await server.wait()
    try:
        app = create_app(config, database_url=db_url, background=False)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        rt = app[RUNTIME]
        pending = await rt.pool.fetchval("SELECT count(*) FROM events WHERE status = 'pending'")
        processor = ConversationProcessor(rt)
        workers = [
            EventWorker(
                rt.pool, processor, clock=SystemClock(), metrics=Metrics(), name=f"bench-{i}"
            )
            for i in range(config.service.workers)
        ]

        async def drain(w: EventWorker) -> None:
            while await w.run_once():
                pass

        start = time.perf_counter()
        await asyncio.gather(*(drain(w) for w in workers))
        elapsed = time.perf_counter() - start
        done = await rt.pool.fetchval("SELECT count(*) FROM events WHERE status = 'done'")
        rows = await rt.pool.fetchval("SELECT count(*) FROM outbox")
        print(
            f"processing:             {done / elapsed:8.0f} events/s  ({pending} events, "
            f"{config.service.workers} workers, {rows} outbox rows written)"
        )
        await runner.cleanup()
    finally:
        admin = await asyncpg.connect(target.url)
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
        if target.server is not None:
            target.server.cleanup()
    return 0


async def _wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the service did not become ready at {url}")


def serve(db_url: str, port: int) -> None:
    from orchestrator.ops import logs

    logs.configure(level="WARNING")
    app = create_app(make_config(), database_url=db_url, background=False)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(asyncio.run(main()))
