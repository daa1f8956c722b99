"""`orchestrator serve`: the service in the foreground until Ctrl-C.

Starts the embedded PostgreSQL unless DATABASE_URL is set; in sandbox mode also the Meta
simulator, with every app's webhook pointed at this service. On SIGINT/SIGTERM it stops
accepting requests, lets workers and dispatchers finish what they hold (claimed work is either
finished or rolled back and left claimable), then stops the embedded database.
"""

from __future__ import annotations

import asyncio
import os
import signal

import structlog
from aiohttp import web

from orchestrator.app import create_app
from orchestrator.config import Config
from orchestrator.store.database import resolve

log = structlog.get_logger("orchestrator")


async def serve(config: Config, *, role: str = "all") -> int:
    """`role`: "all" serves HTTP and runs the background work; "ingress" only HTTP (webhooks,
    REST API); "workers" only the background work (no port). Any mix of processes may share
    one database: ordering and exclusivity live there."""
    target = resolve(os.environ, config.service.data_dir)
    log.info(
        "database",
        url=target.display,
        embedded=target.embedded,
        hint=None if target.embedded else "DATABASE_URL is set",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        graph_base_url = None
        clock = None
        if config.sandbox:
            from orchestrator.sandbox.runner import WorldClock, start_simulator

            sim_runner, graph_base_url, world = await start_simulator(config)
            runners.append(sim_runner)
            clock = WorldClock(world)  # /sim/clock/advance moves Meta's rules and our timers
        app = create_app(
            config,
            database_url=target.url,
            graph_base_url=graph_base_url,
            clock=clock,
            background=role != "ingress",
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        runners.insert(0, runner)
        if role != "workers":
            site = web.TCPSite(runner, config.service.host, config.service.port)
            await site.start()
        s = config.service
        log.info(
            "listening" if role != "workers" else "working",
            url=f"http://{s.host}:{s.port}" if role != "workers" else None,
            role=role,
            mode=s.mode,
            workers=s.workers if role != "ingress" else 0,
            max_in_flight=s.max_in_flight if role != "ingress" else 0,
        )
        for acc in config.accounts:
            log.info(
                "account",
                name=acc.name,
                instagram_account_id=acc.instagram_account_id,
                page_id=acc.page_id,
                locale=acc.locale,
                login=acc.login,
            )
        for app_cfg in config.apps:
            log.info(
                "app",
                name=app_cfg.name,
                app_id=app_cfg.app_id,
                role=app_cfg.role,
                kind=app_cfg.kind,
                receives=app_cfg.handler or app_cfg.url or "REST API only",
                webhook=f"{s.public_url}/webhooks/{app_cfg.name}",
            )
        if config.sandbox:
            sim = f"http://127.0.0.1:{s.simulator_port}"
            log.info(
                "sandbox",
                message="SANDBOX MODE: a local Meta simulator stands in for Meta; "
                "no real credentials are used",
                phone=f"{sim}/phone",
                simulator=sim,
                placeholders=len(config.generated_secrets),
            )
        await stop.wait()
        log.info("shutting_down")
    finally:
        for r in runners:
            await r.cleanup()
        if target.server is not None:
            target.server.cleanup()
            log.info("embedded_database_stopped")
    return 0
