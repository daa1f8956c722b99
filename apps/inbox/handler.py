"""The inbox as a sub-app: `handler = "apps.inbox.handler:Inbox"` on a `kind = "human"` app.

Deliveries need no answer: the inbox reads conversations from the database and its pages are
kept live by the change feed (live.py). Agents act through the ordered action path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from orchestrator.config import AppConfig, Config
from orchestrator.engine.subapps import AppContext, Delivery

PREFIX = "/inbox"


class Inbox:
    inline = True  # answers nothing, at once (subapps.SubApp)

    def __init__(self, ctx: AppContext) -> None:
        self.app = ctx.app

    async def handle(self, delivery: Delivery) -> Sequence[Mapping[str, Any]]:
        return []

    @staticmethod
    def pages(
        app_config: AppConfig, config: Config, service: web.Application
    ) -> tuple[str, web.Application]:
        from apps.inbox.web import create_inbox_app

        return PREFIX, create_inbox_app(app_config, config, service)
