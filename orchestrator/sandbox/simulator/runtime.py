"""The state the simulator's handlers share: one `SimRuntime` per simulator app, reached
through the typed application keys `RUNTIME_KEY` (and `WORLD_KEY` for the world alone)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from orchestrator.sandbox.simulator.webhooks import Faults, FaultSwitch, WebhookDispatcher
from orchestrator.sandbox.simulator.world import World

ClientSessionFactory = Callable[[], aiohttp.ClientSession]


@dataclass
class SimRuntime:
    """Everything the handlers share; one per simulator app."""

    world: World
    switch: FaultSwitch
    dispatcher: WebhookDispatcher
    initial_faults: Faults
    session_factory: ClientSessionFactory
    graph_log: deque[dict[str, Any]]
    session: aiohttp.ClientSession | None = None
    graph_seq: int = 0


RUNTIME_KEY = web.AppKey("simulator_runtime", SimRuntime)
WORLD_KEY = web.AppKey("simulator_world", World)
