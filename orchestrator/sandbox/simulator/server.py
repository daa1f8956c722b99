"""The Meta simulator's HTTP face: Graph endpoints, the `/sim/` control API and the phone page.

Graph requests are routed by path (`/{version}/{node}/{edge}`, version optional) and identified
by their token; the rules live in `world.py`, delivery in `webhooks.py`. Webhooks caused by Graph
calls are sent after answering (as Meta does); those caused by control calls are sent before
answering, so callers can rely on delivery having been attempted.

This module composes the app: the shared runtime (`runtime.py`), the Graph endpoints
(`graph_routes.py`), the control API and phone page (`control_routes.py`), the control error
middleware and the webhook delivery context.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from orchestrator.sandbox.simulator.config import SimConfig
from orchestrator.sandbox.simulator.control_routes import (
    app_webhook,
    apps_list,
    clock_advance,
    clock_get,
    customer_action,
    customer_view,
    customers,
    faults_get,
    faults_set,
    inbox_action,
    log_graph,
    log_webhooks,
    phone,
    reset,
    webhooks_flush,
)
from orchestrator.sandbox.simulator.errors import GraphError, SimError
from orchestrator.sandbox.simulator.graph_routes import _fbtrace_id, graph_handler
from orchestrator.sandbox.simulator.runtime import (
    RUNTIME_KEY,
    WORLD_KEY,
    ClientSessionFactory,
    SimRuntime,
)
from orchestrator.sandbox.simulator.webhooks import (
    DeliveryPolicy,
    Faults,
    FaultSwitch,
    Target,
    WebhookDispatcher,
)
from orchestrator.sandbox.simulator.world import World

__all__ = [
    "RUNTIME_KEY",
    "WORLD_KEY",
    "ClientSessionFactory",
    "SimRuntime",
    "control_errors",
    "create_simulator_app",
    "run_simulator",
]


@web.middleware
async def control_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except SimError as exc:
        return web.json_response({"error": str(exc)}, status=exc.status)
    except GraphError as exc:  # a world rule refused a control action
        return web.json_response(exc.body(_fbtrace_id()), status=409)


def create_simulator_app(
    config: SimConfig,
    *,
    faults: Faults | None = None,
    client_session_factory: ClientSessionFactory | None = None,
    delivery: DeliveryPolicy | None = None,
    clock: Callable[[], float] | None = None,
) -> web.Application:
    world = World(config, clock=clock) if clock is not None else World(config)
    initial = faults or Faults()
    switch = FaultSwitch(initial)

    def target(app_id: str) -> Target | None:
        app = world.apps.get(app_id)
        state = world.app_states.get(app_id)
        if app is None or state is None:
            return None
        return Target(app.app_id, app.name, state.webhook_url, app.secret)

    def disable_webhooks(app_id: str) -> None:
        world.unsubscribe(app_id)

    dispatcher = WebhookDispatcher(
        config.account_id,
        target,
        switch,
        delivery or DeliveryPolicy(),
        lambda: world.now,
        on_disable=disable_webhooks,
    )
    runtime = SimRuntime(
        world=world,
        switch=switch,
        dispatcher=dispatcher,
        initial_faults=initial,
        session_factory=client_session_factory or aiohttp.ClientSession,
        graph_log=deque(maxlen=10_000),
    )
    app = web.Application(middlewares=[control_errors])
    app[RUNTIME_KEY] = runtime
    app[WORLD_KEY] = world
    app.cleanup_ctx.append(_delivery_ctx)

    r = app.router
    r.add_get("/", _to_phone)  # a person opening the simulator's address finds the phone
    r.add_get("/phone", phone)
    r.add_post("/sim/customers/{igsid}/{action}", customer_action)
    r.add_get("/sim/customers/{igsid}", customer_view)
    r.add_get("/sim/customers", customers)
    r.add_post("/sim/inbox/{igsid}/{action}", inbox_action)
    r.add_get("/sim/clock", clock_get)
    r.add_post("/sim/clock/advance", clock_advance)
    r.add_get("/sim/faults", faults_get)
    r.add_post("/sim/faults", faults_set)
    r.add_get("/sim/log/graph", log_graph)
    r.add_get("/sim/log/webhooks", log_webhooks)
    r.add_post("/sim/webhooks/flush", webhooks_flush)
    r.add_get("/sim/apps", apps_list)
    r.add_post("/sim/apps/{app_id}/webhook", app_webhook)
    r.add_post("/sim/reset", reset)
    r.add_route("*", "/{path:.*}", graph_handler)  # everything else is the Graph API
    return app


async def _to_phone(request: web.Request) -> web.Response:
    raise web.HTTPFound("/phone")


async def _delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    """One ClientSession for webhook delivery, created inside the running loop."""
    rt = app[RUNTIME_KEY]
    rt.session = rt.session_factory()
    try:
        await rt.dispatcher.start(rt.session)
        yield
    finally:
        await rt.dispatcher.stop()
        await rt.session.close()
        rt.session = None


async def run_simulator(
    config: SimConfig, host: str = "127.0.0.1", port: int = 8090, *, faults: Faults | None = None
) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(create_simulator_app(config, faults=faults))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
