"""A sub-app that waits on the network never holds back other conversations' replies
(issue 8: "no conversation starves another").

The bot here answers like an LLM would: only when the test opens the gate, for the customers
marked slow. It does not declare `inline = True` (orchestrator/engine/subapps.py, SubApp), so
its deliveries go through the outbox, concurrently across conversations. Before, every
in-process handler was called inside the worker's step: three slow conversations held both
workers, and a fourth customer got no answer until the slow ones had theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.engine.subapps import AppContext, Delivery
from orchestrator.sandbox.runner import Sandbox
from orchestrator.sandbox.simulator.server import RUNTIME_KEY
from tests.conftest import config_data, make_config, wait_for

SLOW = ("5550000000000301", "5550000000000302", "5550000000000303")
FAST = "5550000000000309"
_gate: dict[str, asyncio.Event] = {}


class GatedBot:
    """Replies "re: <text>"; for the SLOW customers only once the gate is open."""

    def __init__(self, ctx: AppContext | None = None) -> None:
        self.ctx = ctx

    async def handle(self, delivery: Delivery) -> Sequence[Mapping[str, Any]]:
        event = delivery.event
        if delivery.standby or event.get("type") != "message" or not event.get("text"):
            return []
        if delivery.conversation["customer_id"] in SLOW:
            await _gate["open"].wait()
        return [{"type": "reply", "message": {"text": f"re: {event['text']}"}}]


async def texts(sb: Sandbox, customer: str) -> list[str]:
    view = await sb.sim("GET", f"/sim/customers/{customer}")
    return [m["text"] for m in view["received"]]


async def say(sb: Sandbox, customer: str, text: str) -> None:
    await sb.sim("POST", f"/sim/customers/{customer}/say", {"text": text})
    await sb.sim_app[RUNTIME_KEY].dispatcher.flush()  # the webhook is delivered and acked


async def test_a_slow_answer_does_not_hold_back_another_conversations_reply(db_url: str) -> None:
    data = config_data()
    data["apps"][0]["handler"] = f"{__name__}:GatedBot"
    config = make_config(data)
    _gate["open"] = asyncio.Event()
    async with Sandbox(config, db_url) as sb:
        try:
            for customer in SLOW:  # more slow conversations than the service has workers
                await say(sb, customer, "Hallo")
            await say(sb, FAST, "Hallo")

            async def fast_answered() -> bool:
                return "re: Hallo" in await texts(sb, FAST)

            await wait_for(fast_answered, timeout=15)
            # Through the outbox as inline: told it is automation before the first reply.
            fast = await texts(sb, FAST)
            assert fast == ["Sie schreiben mit einem Bot.", "re: Hallo"]
            for customer in SLOW:
                assert "re: Hallo" not in await texts(sb, customer)  # still waiting

            _gate["open"].set()
            await sb.settle()
            for customer in SLOW:
                assert (await texts(sb, customer))[-1] == "re: Hallo"
        finally:
            _gate["open"].set()  # never leave a handler waiting behind the test


def test_only_handlers_that_declare_it_run_inline() -> None:
    from apps.echo_bot import EchoBot
    from apps.faq_bot import FaqBot
    from orchestrator.engine.subapps import runs_inline

    assert runs_inline(FaqBot()) and runs_inline(EchoBot())
    assert not runs_inline(GatedBot())  # silent: through the outbox, the safe way
    assert not runs_inline(None)


async def test_an_inline_handler_that_turns_out_slow_is_named_in_a_warning(
    monkeypatch: Any,
) -> None:
    """A handler may declare `inline = True` and still wait on something: the warning says
    which app and what to do (every conversation of the batch waited for it)."""
    from structlog.testing import capture_logs

    from orchestrator.engine import inline

    class Pondering:
        inline = True

        async def handle(self, delivery: Delivery) -> Sequence[Mapping[str, Any]]:
            await asyncio.sleep(0.01)
            return [{"type": "reply", "message": {"text": "hm"}}]

    monkeypatch.setattr(inline, "SLOW_S", 0.0)
    conversation = {"id": 1, "account_id": "a", "customer_id": "c", "state": "bot",
                    "owner_app": None, "view": {}}  # fmt: skip
    with capture_logs() as logs:
        outcome = await inline.call_inline(
            Pondering(), delivery_id=7, app="bot", conversation=conversation,
            event={"type": "message", "text": "?"}, standby=False,
        )  # fmt: skip
    assert outcome.actions == [{"type": "reply", "message": {"text": "hm"}}]
    [slow] = [e for e in logs if e["event"] == "inline_handler_slow"]
    assert slow["app"] == "bot" and slow["delivery_id"] == 7
    assert "inline = True" in slow["advice"]
