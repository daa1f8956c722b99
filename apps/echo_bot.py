"""The smallest in-process sub-app: it answers every customer message with its own text.

Useful to see the contract in ten lines, to smoke-test a deployment, and as the bot of the
end-to-end benchmark (each reply can be matched to the message that caused it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.engine.subapps import AppContext, Delivery


class EchoBot:
    inline = True  # answers from memory: called inside the worker's step (subapps.SubApp)

    def __init__(self, ctx: AppContext | None = None) -> None:
        self.ctx = ctx

    async def handle(self, delivery: Delivery) -> Sequence[Mapping[str, Any]]:
        event = delivery.event
        if delivery.standby or event.get("type") != "message" or not event.get("text"):
            return []
        return [{"type": "reply", "message": {"text": event["text"]}}]
