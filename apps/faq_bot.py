"""Demo FAQ bot: rules from a TOML file, answers a few intents, offers a person.

It shows the contract every in-process sub-app follows: receive a `Delivery`, return
actions. It never decides about disclosure, windows or ownership — the orchestrator does
(the bot just says what it would say; the core refuses or prefixes as the rules require).
Escalation keywords ("Mensch", "agent", ...) are handled by the core before the bot sees
the message, so every bot gets them for free.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator.engine.subapps import AppContext, Delivery

# The demo rules ship inside the package (a wheel has no `config/` folder next to it).
DEFAULT_RULES = "faq.toml"


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    patterns: tuple[re.Pattern[str], ...]
    answer: Mapping[str, str]


class FaqBot:
    # Keyword rules in memory, no I/O per message: called inside the worker's step, so a
    # reply costs one transaction (orchestrator/engine/subapps.py, SubApp).
    inline = True

    def __init__(self, ctx: AppContext | None = None, rules_path: str | Path | None = None):
        options = dict(ctx.app.options) if ctx else {}
        chosen = rules_path or options.get("rules")
        if chosen:
            path: Any = Path(chosen)
        else:
            path = resources.files("apps") / DEFAULT_RULES
        rules = tomllib.loads(path.read_text(encoding="utf-8"))
        self.texts: dict[str, dict[str, str]] = rules.get("texts", {})
        self.escalation_payload = str(options.get("escalation_payload", "TALK_TO_HUMAN"))
        for locale, title in self.texts.get("talk_to_human", {}).items():
            if len(title) > 20:  # Meta cuts quick-reply titles after 20 characters
                raise ValueError(f"{path}: texts.talk_to_human.{locale} is over 20 characters")
        intents = []
        for raw in rules.get("intents", []):
            answer = raw.get("answer_text") or self.texts.get(raw.get("answer", ""), {})
            patterns = tuple(
                re.compile(rf"(?<!\w){re.escape(k.lower())}(?!\w)") for k in raw["keywords"]
            )
            intents.append(Intent(raw["name"], patterns, answer))
        self.intents = tuple(intents)

    def _text(self, key: str, locale: str) -> str:
        table = self.texts.get(key, {})
        return table.get(locale) or table.get("en") or next(iter(table.values()), "")

    def match(self, text: str) -> Intent | None:
        lowered = text.lower()
        return next((i for i in self.intents if any(p.search(lowered) for p in i.patterns)), None)

    async def handle(self, delivery: Delivery) -> Sequence[Mapping[str, Any]]:
        if delivery.standby:
            return []  # standby copies are for information only
        event = delivery.event
        locale = str(delivery.conversation.get("locale") or "en")
        kind = event.get("type") or event.get("kind")
        if kind == "handover_ended":
            if event.get("reason") == "pending_timeout":
                return []  # the customer was just told no one is available: no second notice
            return [_reply(self._text("back", locale))]
        if kind not in ("message", "postback"):
            return []
        text = event.get("text") or event.get("title") or ""
        if not text:
            return []
        intent = self.match(text)
        if intent is not None:
            answer = intent.answer.get(locale) or intent.answer.get("en") or ""
            return [_reply(answer)]
        offer = {
            "text": self._text("fallback", locale),
            "quick_replies": [
                {
                    "content_type": "text",
                    "title": self._text("talk_to_human", locale),
                    "payload": self.escalation_payload,
                }
            ],
        }
        return [{"type": "reply", "message": offer}, {"type": "bot_failure", "reason": "no intent"}]


def _reply(text: str) -> dict[str, Any]:
    return {"type": "reply", "message": {"text": text}}
