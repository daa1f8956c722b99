"""A faithful local Meta: Graph API + webhook sender for one Instagram business account.

Point the orchestrator's Graph base URL at `create_simulator_app(...)` and drive customers,
the Instagram Inbox, the clock and faults through `/sim/...` or the `/phone` page.
"""

from orchestrator.sandbox.simulator.config import (
    INSTAGRAM_INBOX_APP_ID,
    PAGE_INBOX_APP_ID,
    SimApp,
    SimConfig,
)
from orchestrator.sandbox.simulator.errors import GraphError, SimError
from orchestrator.sandbox.simulator.model import Outcome, WebhookEvent
from orchestrator.sandbox.simulator.server import (
    RUNTIME_KEY,
    WORLD_KEY,
    SimRuntime,
    create_simulator_app,
    run_simulator,
)
from orchestrator.sandbox.simulator.webhooks import (
    DeliveryPolicy,
    Faults,
    encode_body,
    sign,
    verify_signature,
)
from orchestrator.sandbox.simulator.world import World

__all__ = [
    "INSTAGRAM_INBOX_APP_ID",
    "PAGE_INBOX_APP_ID",
    "RUNTIME_KEY",
    "WORLD_KEY",
    "DeliveryPolicy",
    "Faults",
    "GraphError",
    "Outcome",
    "SimApp",
    "SimConfig",
    "SimError",
    "SimRuntime",
    "WebhookEvent",
    "World",
    "create_simulator_app",
    "encode_body",
    "run_simulator",
    "sign",
    "verify_signature",
]
