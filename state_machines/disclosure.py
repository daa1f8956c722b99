"""The automation-disclosure policy (docs/platform.md 9, invariant 5), pure.

The customer is told they are talking to automation:
- before the first automated message of the conversation (never disclosed yet),
- every time control moved from a human app to a bot app (`disclosure_due`),
- after a lapse: neither automation spoke nor a disclosure was sent for `disclosure_lapse`.

Once per occasion: sending it sets `disclosed_at` and clears `disclosure_due` (the caller does
that), so the next automated message needs none. Never for human-authored messages: callers
ask only for bot authors.
"""

from __future__ import annotations

from datetime import datetime

from state_machines.model import ConversationView, Policy

# Used only when the config has no text for the locale nor the default locale: disclosure is
# a legal duty in some markets, so it is never skipped for want of a text.
FALLBACK_DISCLOSURE = "You are chatting with an automated assistant."


def disclosure_needed(view: ConversationView, now: datetime, policy: Policy) -> bool:
    if view.disclosed_at is None or view.disclosure_due:
        return True
    last = max(t for t in (view.last_automated_at, view.disclosed_at) if t is not None)
    return now - last >= policy.disclosure_lapse


def disclosure_text(view: ConversationView, policy: Policy) -> str:
    """The configured text for the conversation's locale, falling back to its base
    language, then the default locale."""
    return policy.localized(policy.disclosure_text, view.locale) or FALLBACK_DISCLOSURE
