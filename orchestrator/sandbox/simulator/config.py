"""Simulator configuration: our apps (`SimApp`) and the account they serve (`SimConfig`), plus
the ids of Meta's own Inbox apps, which no app of ours may reuse."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INSTAGRAM_INBOX_APP_ID = "1217981644879628"
PAGE_INBOX_APP_ID = "263902037430900"
INBOX_APP_IDS = (INSTAGRAM_INBOX_APP_ID, PAGE_INBOX_APP_ID)


@dataclass(frozen=True)
class SimApp:
    name: str
    app_id: str
    secret: str
    token: str
    webhook_url: str | None
    is_default: bool = False
    can_take: bool = False
    subscribed: bool = True


@dataclass(frozen=True)
class SimConfig:
    account_id: str
    page_id: str
    apps: tuple[SimApp, ...]
    api_version: str = "v25.0"
    rate_limit_per_s: float = 100.0
    routing_enabled: bool = True
    # False: the Conversations API answers error 36103 ("messaging not available"), as for an
    # account whose Instagram setting "Allow access to messages" is off.
    messaging_available: bool = True

    def __post_init__(self) -> None:
        ids = [a.app_id for a in self.apps]
        if len(set(ids)) != len(ids):
            raise ValueError("SimConfig.apps: duplicate app_id")
        if set(ids) & set(INBOX_APP_IDS):
            raise ValueError("SimConfig.apps: app_id collides with an Inbox app id")
        tokens = [a.token for a in self.apps]
        if len(set(tokens)) != len(tokens) or "" in tokens:
            raise ValueError("SimConfig.apps: tokens must be non-empty and unique")
        if sum(a.is_default for a in self.apps) > 1:
            raise ValueError("SimConfig.apps: at most one app may be the default app")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SimConfig:
        """Build from plain data (YAML/JSON), e.g. `{"account_id":..., "apps":[{...}]}`."""
        apps = tuple(SimApp(**dict(a)) for a in data.get("apps", ()))
        rest = {k: v for k, v in data.items() if k != "apps"}
        return cls(apps=apps, **rest)
