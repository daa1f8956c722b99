"""The resources every worker, dispatcher and view shares, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
import asyncpg

from orchestrator.clock import Clock
from orchestrator.config import Config
from orchestrator.engine.subapps import SubApp
from orchestrator.engine.wakeup import OUTBOX_CHANNEL, Waker
from orchestrator.graph import GraphClient, GraphTarget, RetryPolicy
from orchestrator.ops.metrics import Metrics
from state_machines import Policy


@dataclass
class Runtime:
    config: Config
    pool: asyncpg.Pool
    clock: Clock
    metrics: Metrics
    http: aiohttp.ClientSession
    graph: GraphClient
    policy: Policy
    retry_policy: RetryPolicy
    waker: Waker  # new events stored: wakes event workers (here at once, NOTIFY elsewhere)
    subapps: dict[str, SubApp] = field(default_factory=dict)
    outbox_waker: Waker | None = None  # new outbox rows committed: wakes dispatchers

    def __post_init__(self) -> None:
        if self.outbox_waker is None:
            self.outbox_waker = Waker(self.pool, channel=OUTBOX_CHANNEL)

    def graph_target(self, account_id: str, app_name: str) -> GraphTarget:
        """Which host, channel and token to use when `app_name` acts on `account_id`'s behalf
        (`account_id` is a conversation's key: the Instagram account id, or the Page id of a
        Messenger conversation). The token is the (account, app) pair's own."""
        return graph_target(self.config, account_id, app_name)


def graph_target(config: Config, account_id: str, app_name: str) -> GraphTarget:
    account = config.account(account_id)
    app = config.app(app_name) or config.primary
    if account is None:
        raise LookupError(f"account {account_id} is not registered in the config")
    channel = account.channel_of(account_id) or "instagram"
    return GraphTarget(
        account_id=account_id,
        page_id=account.page_id,
        login=account.login,
        token=config.token(account, app).value,
        channel=channel,
    )
