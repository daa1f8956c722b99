"""The messaging-window policy (docs/platform.md 4.5, invariant 6), pure.

- The window is anchored at the customer's last message (or window-opening activity).
- Automated (bot) messages: only within 24 h of it, as RESPONSE.
- Human-authored messages: within 24 h as RESPONSE without a tag; after 24 h and up to 7
  days as MESSAGE_TAG + HUMAN_AGENT (and only then); past 7 days nothing is sent.
- Boundaries are inclusive: exactly 24 h is still inside, exactly 7 days is still inside.
- A customer who never wrote gets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from state_machines.effects import MessagingType, Refusal
from state_machines.model import ConversationView, Policy
from state_machines.rules import AUTOMATED_WINDOW, HUMAN_AGENT_TAG, HUMAN_AGENT_WINDOW

RULE_NO_CONTACT = "messages only answer a customer who has written to us"
RULE_AUTOMATED_WINDOW = "automated messages only within 24 h of the customer's last message"
RULE_HUMAN_WINDOW = (
    "human agents may answer up to 7 days after the customer's last message (HUMAN_AGENT tag)"
)


@dataclass(frozen=True, slots=True)
class WindowVerdict:
    allowed: bool
    messaging_type: MessagingType | None = None
    tag: str | None = None
    refusal: Refusal | None = None


def window_deadlines(view: ConversationView) -> tuple[datetime | None, datetime | None]:
    """(automated_until, human_until): the last instants an automated / a human-authored
    message may be sent; both None when the customer never wrote."""
    last = view.last_customer_message_at
    if last is None:
        return None, None
    return last + AUTOMATED_WINDOW, last + HUMAN_AGENT_WINDOW


def check_send(
    view: ConversationView,
    now: datetime,
    *,
    author_kind: Literal["bot", "human"],
    policy: Policy,
) -> WindowVerdict:
    """May a message by an author of `author_kind` be sent now, and how is it typed?"""
    automated_until, human_until = window_deadlines(view)
    if automated_until is None or human_until is None:
        return _refused(
            "window_closed",
            "the customer has never written in this conversation, so nothing may be sent",
            RULE_NO_CONTACT,
        )
    if now <= automated_until:
        return WindowVerdict(True, "RESPONSE", None)
    ago = _ago(now - (view.last_customer_message_at or now))
    if author_kind == "bot":
        return _refused(
            "window_closed",
            f"the customer's last message was {ago} ago; automation may speak again only "
            "after the customer writes",
            RULE_AUTOMATED_WINDOW,
        )
    if now <= human_until:
        return WindowVerdict(True, "MESSAGE_TAG", HUMAN_AGENT_TAG)
    return _refused(
        "human_agent_window_closed",
        f"the customer's last message was {ago} ago, past the 7-day human-agent window; "
        "nothing may be sent until the customer writes",
        RULE_HUMAN_WINDOW,
    )


def _refused(
    code: Literal["window_closed", "human_agent_window_closed"], msg: str, rule: str
) -> WindowVerdict:
    return WindowVerdict(False, None, None, Refusal(code, msg, rule))


def _ago(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 48:
        return f"{hours:.0f} h"
    return f"{hours / 24:.1f} days"
