"""Which account each webhook item belongs to, checked at intake against the config.

Items of an account or Page that is not configured (or a Page whose account does not list the
Messenger channel) are stored like every other item (nothing acknowledged is lost), but they
would never be processed: intake reports them at once, in the webhook's `problems`, a metric
and one log line per id, instead of letting them sit silently in the event log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.config import Config
from orchestrator.ingress.events import Event, EventKind

# Kinds about the Page or account itself, not a conversation: never "unknown account" noise
# (an app_roles change names the Page even for an Instagram-only account).
ACCOUNT_LEVEL = frozenset({EventKind.APP_ROLES})


@dataclass(frozen=True, slots=True)
class UnknownAccount:
    account_id: str
    object: str
    items: tuple[int, ...]  # 1-based item numbers in the POST
    reason: str

    def problem(self) -> str:
        numbers = ", ".join(str(i) for i in self.items)
        return (
            f"item {numbers}: {self.reason}"
            if len(self.items) == 1
            else (f"items {numbers}: {self.reason}")
        )


def unknown_accounts(config: Config, events: Sequence[Event]) -> list[UnknownAccount]:
    """One entry per account id of this POST that no configured account and channel owns."""
    known = config.account_ids()
    found: dict[tuple[str, str], list[int]] = {}
    for i, event in enumerate(events, start=1):
        if event.kind in ACCOUNT_LEVEL or event.account_id in known:
            continue
        found.setdefault((event.account_id, event.object), []).append(i)
    return [
        UnknownAccount(acc, obj, tuple(items), config.unknown_account_reason(acc, obj))
        for (acc, obj), items in found.items()
    ]
