"""The benchmark's bot: answers every customer message with the same text.

Loaded like any in-process sub-app (`handler = "tests.bench.echo_bot:EchoBot"`). The load
generator puts a per-conversation sequence number and a unique id in each message, so the
Graph stand-in can match each reply to the POST that caused it. It does no work of its own:
the benchmark measures the orchestrator, not a bot.
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
        if delivery.standby:
            return []  # another app owns the thread: listen only
        event = delivery.event
        if (event.get("type") or event.get("kind")) != "message":
            return []
        text = event.get("text")
        if not isinstance(text, str) or not text:
            return []
        return [{"type": "reply", "message": {"text": text}}]
