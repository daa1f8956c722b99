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


async def serve(config: Config) -> int:
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
            config, database_url=target.url, graph_base_url=graph_base_url, clock=clock
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, config.service.host, config.service.port)
        await site.start()
        runners.insert(0, runner)
        s = config.service
        log.info(
            "listening",
            url=f"http://{s.host}:{s.port}",
            mode=s.mode,
            workers=s.workers,
            dispatchers=s.dispatchers,
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
