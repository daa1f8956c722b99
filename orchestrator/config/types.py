"""The validated configuration as typed, frozen value objects: `Config` and its sections
(service, accounts, apps, handover, disclosure, rate limits) and the redacting `Secret`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

Channel = Literal["instagram", "messenger"]
CHANNELS: tuple[Channel, ...] = ("instagram", "messenger")


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value that never shows itself in logs, reprs or tracebacks."""

    value: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"Secret(<redacted from {self.source or 'config'}>)"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True, slots=True)
class AccountConfig:
    name: str
    instagram_account_id: str
    page_id: str | None
    locale: str
    market: str
    login: Literal["facebook", "instagram"]
    # The channels this account answers on: its Instagram account, and (login = "facebook"
    # only) its Facebook Page's Messenger conversations.
    channels: tuple[Channel, ...] = ("instagram",)
    # Per-app tokens for this account (`[accounts.tokens] bot = "${…}"`): a Page token
    # belongs to one Page, so every account of a several-account config names its own.
    tokens: Mapping[str, Secret] = field(default_factory=dict)

    @property
    def messenger(self) -> bool:
        return "messenger" in self.channels and self.page_id is not None

    def channel_of(self, account_id: str) -> Channel | None:
        """The channel of a conversation keyed under `account_id` (the id its events came
        under: the Instagram account id, or the Page id for Messenger), or None."""
        if account_id == self.instagram_account_id and "instagram" in self.channels:
            return "instagram"
        if self.messenger and account_id == self.page_id:
            return "messenger"
        return None


@dataclass(frozen=True, slots=True)
class AppConfig:
    name: str
    app_id: str
    role: Literal["primary", "secondary"]
    kind: Literal["bot", "human"]
    app_secret: Secret
    verify_token: Secret
    page_token: Secret
    api_key: Secret | None
    handler: str | None
    url: str | None
    signing_secret: Secret | None
    standby: bool
    can_take: bool
    options: Mapping[str, Any]
    # REST API reads: "own" = conversations it owns, owned or gets standby copies of; "all".
    can_read: Literal["own", "all"] = "own"


@dataclass(frozen=True, slots=True)
class HandoverConfig:
    pending_timeout: timedelta = timedelta(minutes=10)
    human_idle_timeout: timedelta = timedelta(hours=4)
    request_policy: Literal["grant", "ask_owner"] = "ask_owner"
    escalation_keywords: tuple[str, ...] = ()
    escalation_payloads: tuple[str, ...] = ("TALK_TO_HUMAN",)
    bot_failure_threshold: int = 3
    default_human_app: str | None = None


@dataclass(frozen=True, slots=True)
class DisclosureConfig:
    lapse: timedelta = timedelta(hours=24)
    text: Mapping[str, str] = field(default_factory=dict)
    no_agent_text: Mapping[str, str] = field(default_factory=dict)
    escalation_text: Mapping[str, str] = field(default_factory=dict)
    default_locale: str = "en"


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    mode: Literal["sandbox", "live"] = "live"
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = "http://127.0.0.1:8080"
    graph_api_version: str = "v25.0"
    facebook_graph_url: str = "https://graph.facebook.com"
    instagram_graph_url: str = "https://graph.instagram.com"
    # Event workers per process: each claims many conversations per transaction. One is the
    # default: inline handlers answer from memory (subapps.SubApp), so a batch is CPU work
    # and one event loop runs one batch at a time anyway; a second worker split the batches
    # and claimed what the first had just taken (README "Performance", stop 18).
    workers: int = 1
    # Dispatcher loops per process; each keeps many rows in flight (max_in_flight in total).
    dispatchers: int = 1
    # Graph calls and vendor deliveries in flight at once per process (one per lane).
    max_in_flight: int = 256
    max_body_bytes: int = 1024 * 1024
    outbox_max_attempts: int = 12
    # Transient failures are retried (jittered backoff) until this much time has passed.
    retry_budget: timedelta = timedelta(minutes=15)
    # Processed events and done outbox rows are deleted after this age.
    retention: timedelta = timedelta(days=3)
    # A reply whose text needs more Send API messages than this is refused (422).
    max_reply_parts: int = 5
    simulator_port: int = 8081
    data_dir: str = ".pgdata"
    # A client must send its request headers within `header_timeout` and its body within
    # `body_timeout`; a stalled connection is closed (slowloris-style clients hold nothing).
    header_timeout: timedelta = timedelta(seconds=10)
    body_timeout: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    """Calls per second (private replies: per hour) per account, per Graph bucket."""

    send_text: float = 100.0
    send_media: float = 10.0
    private_reply_per_hour: float = 750.0
    conversations: float = 2.0
    thread_control: float = 100.0


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    service: ServiceConfig
    accounts: tuple[AccountConfig, ...]
    apps: tuple[AppConfig, ...]
    handover: HandoverConfig
    disclosure: DisclosureConfig
    rate_limits: RateLimitConfig = RateLimitConfig()
    generated_secrets: tuple[str, ...] = ()
    # Conversation key (Instagram account id, or Page id of a Messenger account) → account:
    # every event's lookup is one dict access, whatever the number of accounts.
    _by_id: Mapping[str, AccountConfig] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _ids: frozenset[str] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, AccountConfig] = {}
        for acc in self.accounts:
            if "instagram" in acc.channels:
                index.setdefault(acc.instagram_account_id, acc)
            if acc.messenger and acc.page_id:
                index.setdefault(acc.page_id, acc)
        object.__setattr__(self, "_by_id", index)
        object.__setattr__(self, "_ids", frozenset(index))

    @property
    def sandbox(self) -> bool:
        return self.service.mode == "sandbox"

    @property
    def primary(self) -> AppConfig:
        return next(a for a in self.apps if a.role == "primary")

    def app(self, name: str) -> AppConfig | None:
        return next((a for a in self.apps if a.name == name), None)

    def app_by_id(self, app_id: str) -> AppConfig | None:
        return next((a for a in self.apps if a.app_id == app_id), None)

    def account(self, account_id: str) -> AccountConfig | None:
        """The account a conversation key belongs to: its Instagram account id, or its Page id
        when the account has the Messenger channel."""
        return self._by_id.get(account_id)

    def channel_of(self, account_id: str) -> Channel | None:
        """The channel ("instagram" or "messenger") of a configured conversation key, or None."""
        account = self.account(account_id)
        return account.channel_of(account_id) if account else None

    def unknown_account_reason(self, account_id: str, obj: str | None = None) -> str:
        """Why events under `account_id` are not processed, with what to add to the config;
        intake and the worker say the same."""
        for i, acc in enumerate(self.accounts):
            if acc.instagram_account_id == account_id and "instagram" not in acc.channels:
                return (
                    f"Instagram account {account_id} of account {acc.name!r} has no Instagram "
                    f'channel: stored, not processed (add "instagram" to accounts[{i}].channels)'
                )
            if acc.page_id == account_id and not acc.messenger:
                return (
                    f"Page {account_id} of account {acc.name!r} has no Messenger channel: "
                    f'stored, not processed (add "messenger" to accounts[{i}].channels)'
                )
        what = {"page": "Page", "instagram": "Instagram account"}.get(obj or "", "account")
        return (
            f"{what} {account_id} is not in the config: stored, not processed (add it as "
            "an [[accounts]] instagram_account_id, or as the page_id of an account with "
            'channels = ["instagram", "messenger"])'
        )

    def account_ids(self) -> frozenset[str]:
        """Every id events of a configured account and channel come under."""
        return self._ids

    def token(self, account: AccountConfig, app: AppConfig) -> Secret:
        """The token `app` uses for `account`: the account's own (`[accounts.tokens]`), else
        the app's `page_token` (the single-account default). Validation makes sure one is set."""
        return account.tokens.get(app.name) or app.page_token

    def token_key(self, account: AccountConfig, app: AppConfig) -> str:
        """Where that token is set in the config file, for messages that say what to fix."""
        if app.name in account.tokens:
            return f"accounts[{self.accounts.index(account)}].tokens.{app.name}"
        return f"apps[{self.apps.index(app)}].page_token"

    def app_by_api_key(self, key: str) -> AppConfig | None:
        import hmac

        for app in self.apps:
            if app.api_key and hmac.compare_digest(app.api_key.value.encode(), key.encode()):
                return app
        return None
