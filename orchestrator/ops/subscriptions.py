"""Webhook subscriptions: subscribe every app to every account, and check what Meta has.

Routing relies on every messaging app of the business being subscribed (docs/platform.md 10), and
Meta unsubscribes an app whose webhook failed for an hour (docs/platform.md 3): `orchestrator
subscribe` (re)subscribes; `orchestrator subscribe --check` only compares Meta's list with the
fields we need and names what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.config import AccountConfig, Config
from orchestrator.graph import GraphClient, GraphError, GraphTarget

# Page-level fields for Instagram messaging and handover (docs/platform.md 2 and 10).
FIELDS = (
    "messages",
    "messaging_postbacks",
    "messaging_seen",
    "message_reactions",
    "messaging_referral",
    "messaging_handover",
    "standby",
)
# Added for an account with the Messenger channel: Messenger-only events (docs/payloads.md).
MESSENGER_FIELDS = (
    "message_deliveries",
    "messaging_optins",
    "messaging_policy_enforcement",
    "messaging_account_linking",
)


def fields_for(account: AccountConfig) -> tuple[str, ...]:
    """The Page fields one account needs: Instagram's, plus Messenger's own when the account
    has the Messenger channel (one Page subscription carries both)."""
    return FIELDS + MESSENGER_FIELDS if account.messenger else FIELDS


@dataclass(frozen=True, slots=True)
class SubscriptionReport:
    account: str
    app: str
    ok: bool
    detail: str


async def subscribe_all(
    config: Config, graph: GraphClient, *, check_only: bool = False
) -> list[SubscriptionReport]:
    """Every (account, app) pair, each with that pair's own token."""
    reports = []
    for account in config.accounts:
        wanted = fields_for(account)
        for app in config.apps:
            target = GraphTarget(
                account_id=account.instagram_account_id,
                page_id=account.page_id,
                login=account.login,
                token=config.token(account, app).value,
            )
            try:
                if not check_only:
                    await graph.subscribe_app(target, list(wanted))
                answer = await graph.subscribed_apps(target)
            except GraphError as exc:
                reports.append(SubscriptionReport(account.name, app.name, False, str(exc)))
                continue
            mine = next((a for a in answer.get("data", []) if str(a.get("id")) == app.app_id), None)
            if mine is None:
                reports.append(
                    SubscriptionReport(account.name, app.name, False, "app is not subscribed")
                )
                continue
            have = set(mine.get("subscribed_fields") or [])
            # Meta accepts both spellings of the handover field (docs/platform.md 2.8).
            if "messaging_handovers" in have:
                have.add("messaging_handover")
            missing = [f for f in wanted if f not in have]
            detail = f"missing fields: {', '.join(missing)}" if missing else "all fields subscribed"
            reports.append(SubscriptionReport(account.name, app.name, not missing, detail))
    return reports
