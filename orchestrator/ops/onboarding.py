"""Start-up check of every account through the Conversations API (docs/platform.md 8).

Meta gives no other cheap "can this app message this account?" probe: a refusal here (no
Advanced Access, "Allow access to messages" off, a bad token) would otherwise surface only
when the first customer writes. Each account gets one line: ready, or a warning that names
the account, Meta's code and what to check. It never blocks start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from orchestrator.engine.runtime import Runtime
from orchestrator.graph import GraphError, GraphUnreachable, InvalidToken, PermissionDenied

log = structlog.get_logger(__name__)

_HINTS = {
    InvalidToken: "the page_token is invalid or expired: create a new one",
    PermissionDenied: "the app lacks access: check App Review (Advanced Access for "
    "instagram_manage_messages), the Page task, and Instagram's 'Allow access to messages'",
    GraphUnreachable: "Meta could not be reached; the check is repeated at the next start",
}


@dataclass(frozen=True, slots=True)
class AccountCheck:
    account: str
    ok: bool
    detail: str


async def check_accounts(rt: Runtime) -> list[AccountCheck]:
    results = []
    for account in rt.config.accounts:
        target = rt.graph_target(account.instagram_account_id, rt.config.primary.name)
        try:
            answer = await rt.graph.conversations(target)
        except GraphError as exc:
            hint = next((h for cls, h in _HINTS.items() if isinstance(exc, cls)), None)
            detail = f"{exc}" + (f" — {hint}" if hint else " — messaging may not be available")
            log.warning(
                "account_check_failed",
                account=account.name,
                instagram_account_id=account.instagram_account_id,
                reason=detail,
            )
            results.append(AccountCheck(account.name, False, detail))
            continue
        count = len(answer.get("data", []))
        log.info("account_ready", account=account.name, conversations=count)
        results.append(AccountCheck(account.name, True, f"{count} conversation(s) visible"))
    return results
