"""`orchestrator doctor`: everything Meta needs before the first real message, checked.

For every account and every app it asks Meta (the Graph API calls and answers are listed in
docs/platform.md section 12) and prints a checklist; each failure carries its fix:

- the app token (`<app_id>|<app_secret>`) is accepted, and the app's `page_token` is valid,
  of the right kind (a Page token for `login = "facebook"`), belongs to this app and this
  Page, does not expire soon, and holds the permissions messaging needs;
- the Page is subscribed for the app with every webhook field we rely on;
- the app's own webhook (App Dashboard) points at `public_url/webhooks/<app>`;
- the Conversations API answers (error 36103: messaging not available for the account);
- Conversation Routing is on for Instagram;
- our webhook URL answers Meta's verify handshake over HTTPS from `public_url`.

Two settings cannot be read through the Graph API — which app is the routing default, and
which apps may "Take control of conversations" — so they are printed as manual steps with
the exact place to set them.
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp

from orchestrator.config import AccountConfig, AppConfig, Config
from orchestrator.graph import GraphClient, GraphError, GraphTarget
from orchestrator.graph.errors import GraphUnreachable, InvalidToken, PermissionDenied
from orchestrator.ops.subscriptions import FIELDS, MESSENGER_FIELDS, fields_for

Status = Literal["ok", "fail", "warn", "manual"]

# Permissions of a Page token for Instagram messaging with Facebook Login
# (docs/platform.md section 10).
REQUIRED_SCOPES = ("instagram_basic", "instagram_manage_messages", "pages_manage_metadata")
SOON_S = 7 * 86400
ROUTING_SETTING = "Page settings → Page setup → Instagram Conversation Routing"
TAKE_SETTING = "Page settings → Page setup → Advanced messaging → Take control of conversations"
ALLOW_MESSAGES = (
    "in the Instagram app: Settings → Messages and story replies → Message controls → "
    "Connected tools → Allow access to messages"
)


@dataclass(frozen=True, slots=True)
class Check:
    scope: str  # "account shop" or "account shop · app bot"
    name: str
    status: Status
    detail: str
    fix: str | None = None


def _graph_fix(exc: GraphError, what: str) -> str:
    if exc.code == 36103:
        return (
            "Meta says messaging is not available for this account (error 36103): it must "
            "be an Instagram professional account linked to the Page, with access for "
            f"connected tools allowed ({ALLOW_MESSAGES}); new accounts can take a while"
        )
    if isinstance(exc, InvalidToken):
        return f"{what} was refused as invalid or expired: create a new one and export it"
    if isinstance(exc, PermissionDenied):
        return (
            "the app lacks access: check App Review (Advanced Access for "
            "instagram_manage_messages), the person's task on the Page, and "
            f"'Allow access to messages' ({ALLOW_MESSAGES})"
        )
    if isinstance(exc, GraphUnreachable):
        return "Meta could not be reached from here: check the network, DNS or proxy"
    return f"Meta refused the call (code {exc.code}): see docs/platform.md section 7"


class Doctor:
    def __init__(
        self,
        config: Config,
        graph: GraphClient,
        http: aiohttp.ClientSession,
        *,
        ssl_context: ssl.SSLContext | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.graph = graph
        self.http = http
        self.ssl_context = ssl_context
        self.now = now
        self.checks: list[Check] = []

    def add(
        self, scope: str, name: str, status: Status, detail: str, fix: str | None = None
    ) -> None:
        self.checks.append(Check(scope, name, status, detail, fix))

    async def run(self) -> list[Check]:
        for account in self.config.accounts:
            await self._account(account)
        return self.checks

    # -- per account ---------------------------------------------------------------------------

    async def _account(self, account: AccountConfig) -> None:
        scope = f"account {account.name}"
        primary = self.config.primary
        several = len(self.config.apps) > 1
        if account.login == "facebook":
            try:
                answer = await self.graph.messaging_feature_status(self._target(account, primary))
                status = answer.get("messaging_feature_status") or {}
                if account.messenger and not status.get("msgr_multi_app") and several:
                    self.add(
                        scope,
                        "messenger routing",
                        "fail",
                        "Conversation Routing is not configured for Messenger "
                        "(messaging_feature_status.msgr_multi_app is false)",
                        f"Page settings → Messenger Conversation Routing: turn it on and choose "
                        f"{primary.name} (app id {primary.app_id}) as the default app",
                    )
                elif account.messenger:
                    self.add(scope, "messenger routing", "ok", "Conversation Routing is on")
                if status.get("ig_multi_app"):
                    self.add(scope, "routing", "ok", "Conversation Routing is on for Instagram")
                else:
                    self.add(
                        scope,
                        "routing",
                        "fail" if several else "warn",
                        "Conversation Routing is not configured for Instagram "
                        "(messaging_feature_status.ig_multi_app is false): every app gets every "
                        "message and take_thread_control is refused",
                        f"{ROUTING_SETTING}: turn it on and choose {primary.name} "
                        f"(app id {primary.app_id}) as the default app",
                    )
            except GraphError as exc:
                self.add(
                    scope,
                    "routing",
                    "fail",
                    f"cannot read the routing status: {exc}",
                    _graph_fix(exc, f"the page_token of {primary.name}"),
                )
        self.add(
            scope,
            "default app",
            "manual",
            "Meta does not expose the routing default app through the Graph API",
            f"{ROUTING_SETTING}: the default app must be {primary.name} "
            f"(app id {primary.app_id}), the app with role = 'primary'",
        )
        takers = [a for a in self.config.apps if a.can_take]
        others = [a for a in self.config.apps if not a.can_take]
        self.add(
            scope,
            "take control",
            "manual",
            "who may take control is a Page setting Meta does not expose: "
            f"can_take = true for {', '.join(a.name for a in takers) or 'no app'}",
            f"{TAKE_SETTING}: allow "
            + (", ".join(f"{a.name} ({a.app_id})" for a in takers) or "no app")
            + (f"; leave it off for {', '.join(a.name for a in others)}" if others else ""),
        )
        for app in self.config.apps:
            await self._app(account, app)

    # -- per app -------------------------------------------------------------------------------

    async def _app(self, account: AccountConfig, app: AppConfig) -> None:
        scope = f"account {account.name} · app {app.name}"
        target = self._target(account, app)
        if account.login == "facebook":
            await self._token(scope, account, app)
        else:
            await self._instagram_token(scope, account, app, target)
        await self._page_subscription(scope, account, app, target)
        await self._app_webhook(scope, account, app)
        await self._conversations(scope, app, target)
        await self._handshake(scope, app)

    async def _token(self, scope: str, account: AccountConfig, app: AppConfig) -> None:
        app_token = GraphTarget(
            account_id=account.instagram_account_id,
            page_id=account.page_id,
            login="facebook",
            token=f"{app.app_id}|{app.app_secret.value}",
        )
        try:
            answer = await self.graph.debug_token(app_token, self.config.token(account, app).value)
        except GraphError as exc:
            fix = (
                f"check apps.app_secret and app_id {app.app_id} (App Dashboard → App settings "
                "→ Basic → App secret)"
                if isinstance(exc, InvalidToken)
                else _graph_fix(exc, "the app token")
            )
            self.add(scope, "token", "fail", f"Meta refused the app token: {exc}", fix)
            return
        data = answer.get("data") or {}
        key = self.config.token_key(account, app)
        new_token = (
            "create a Page token for this app from a long-lived user token (it does not "
            "expire) of a person with the messaging task on the Page, and export it as "
            f"{key}"
        )
        if not data.get("is_valid"):
            reason = (data.get("error") or {}).get("message") or "is_valid is false"
            self.add(scope, "token", "fail", f"{key} is not valid: {reason}", new_token)
            return
        problems = []
        if str(data.get("app_id")) != app.app_id:
            problems.append(f"it belongs to app {data.get('app_id')}, not {app.app_id}")
        if data.get("type") != "PAGE":
            problems.append(f"it is a {data.get('type')} token, not a PAGE token")
        profile = data.get("profile_id")
        if profile is not None and account.page_id and str(profile) != account.page_id:
            problems.append(f"it is for Page {profile}, not {account.page_id}")
        if problems:
            self.add(scope, "token", "fail", f"{key}: " + "; ".join(problems), new_token)
        else:
            expires = int(data.get("expires_at") or 0)
            if expires and expires - self.now() < SOON_S:
                days = max(0.0, (expires - self.now()) / 86400)
                self.add(
                    scope,
                    "token",
                    "warn",
                    f"valid Page token, but it expires in {days:.1f} days",
                    new_token,
                )
            else:
                self.add(
                    scope,
                    "token",
                    "ok",
                    "valid Page token of this app for this Page"
                    + ("" if expires else ", does not expire"),
                )
        scopes = set(data.get("scopes") or [])
        missing = [s for s in REQUIRED_SCOPES if s not in scopes]
        if missing:
            self.add(
                scope,
                "permissions",
                "fail",
                f"{key} lacks {', '.join(missing)}",
                "grant these permissions when creating the token (and get Advanced Access in "
                "App Review to serve accounts without a role on the app)",
            )
        else:
            self.add(scope, "permissions", "ok", ", ".join(REQUIRED_SCOPES))

    async def _instagram_token(
        self, scope: str, account: AccountConfig, app: AppConfig, target: GraphTarget
    ) -> None:
        try:
            me = await self.graph.me(target, ["user_id", "username"])
        except GraphError as exc:
            self.add(
                scope,
                "token",
                "fail",
                f"the Instagram user token was refused: {exc}",
                _graph_fix(
                    exc,
                    f"{self.config.token_key(account, app)} (an Instagram user token with "
                    "login = 'instagram')",
                ),
            )
            return
        user = str(me.get("user_id") or me.get("id") or "")
        if user and user != account.instagram_account_id:
            self.add(
                scope,
                "token",
                "fail",
                f"the token is for Instagram account {user}, not {account.instagram_account_id}",
                "create the token while logged in to this account",
            )
        else:
            self.add(scope, "token", "ok", "valid Instagram user token for this account")

    async def _page_subscription(
        self, scope: str, account: AccountConfig, app: AppConfig, target: GraphTarget
    ) -> None:
        fix = (
            "run `orchestrator subscribe` (POST /{page-id}/subscribed_apps with this app's "
            "token); Meta also unsubscribes an app whose webhook failed for an hour"
        )
        try:
            answer = await self.graph.subscribed_apps(target)
        except GraphError as exc:
            self.add(
                scope,
                "page subscription",
                "fail",
                f"cannot read it: {exc}",
                _graph_fix(exc, "the page_token"),
            )
            return
        mine = next((a for a in answer.get("data", []) if str(a.get("id")) == app.app_id), None)
        if mine is None:
            self.add(scope, "page subscription", "fail", "the app is not subscribed", fix)
            return
        have = set(mine.get("subscribed_fields") or [])
        if "messaging_handovers" in have:
            have.add("messaging_handover")
        missing = [f for f in fields_for(account) if f not in have]
        if missing:
            detail = f"missing fields: {', '.join(missing)}"
            self.add(scope, "page subscription", "fail", detail, fix)
        else:
            self.add(scope, "page subscription", "ok", "every field we need is subscribed")

    async def _app_webhook(self, scope: str, account: AccountConfig, app: AppConfig) -> None:
        expected = f"{self.config.service.public_url}/webhooks/{app.name}"
        fix = (
            f"App Dashboard → Webhooks → Instagram: callback URL {expected}, verify token = "
            f"this app's verify_token, and subscribe the fields {', '.join(FIELDS)}"
        )
        app_token = GraphTarget(
            account_id=account.instagram_account_id,
            page_id=account.page_id,
            login="facebook",
            token=f"{app.app_id}|{app.app_secret.value}",
        )
        try:
            answer = await self.graph.app_subscriptions(app_token, app.app_id)
        except GraphError as exc:
            self.add(
                scope,
                "app webhook",
                "fail",
                f"cannot read it: {exc}",
                _graph_fix(exc, "the app token (app_id|app_secret)"),
            )
            return
        entry = next((e for e in answer.get("data", []) if e.get("object") == "instagram"), None)
        if entry is None:
            self.add(scope, "app webhook", "fail", "no Instagram webhook is set for the app", fix)
            return
        problems = []
        if entry.get("callback_url") != expected:
            problems.append(f"callback URL is {entry.get('callback_url')}, not {expected}")
        if entry.get("active") is False:
            problems.append("the subscription is not active")
        names = {f.get("name") if isinstance(f, dict) else f for f in entry.get("fields") or []}
        if "messaging_handovers" in names:
            names.add("messaging_handover")
        missing = [f for f in FIELDS if f not in names]
        if missing:
            problems.append(f"missing fields: {', '.join(missing)}")
        if problems:
            self.add(scope, "app webhook", "fail", "; ".join(problems), fix)
        else:
            self.add(scope, "app webhook", "ok", f"Meta calls {expected}")
        if account.messenger:
            self._page_webhook(scope, answer, expected)

    def _page_webhook(self, scope: str, answer: dict[str, Any], expected: str) -> None:
        """The Messenger channel: the app's dashboard webhook for the `page` object."""
        fields = ("messages", "messaging_postbacks", "messaging_handovers", "standby")
        fix = (
            f"App Dashboard → Webhooks → Page (Messenger): callback URL {expected}, verify "
            f"token = this app's verify_token, and subscribe the fields "
            f"{', '.join((*fields, *MESSENGER_FIELDS))}"
        )
        entry = next((e for e in answer.get("data", []) if e.get("object") == "page"), None)
        if entry is None:
            self.add(scope, "messenger webhook", "fail", "no Page webhook is set for the app", fix)
            return
        names = {f.get("name") if isinstance(f, dict) else f for f in entry.get("fields") or []}
        if "messaging_handover" in names:
            names.add("messaging_handovers")
        problems = []
        if entry.get("callback_url") != expected:
            problems.append(f"callback URL is {entry.get('callback_url')}, not {expected}")
        missing = [f for f in fields if f not in names]
        if missing:
            problems.append(f"missing fields: {', '.join(missing)}")
        if problems:
            self.add(scope, "messenger webhook", "fail", "; ".join(problems), fix)
        else:
            self.add(scope, "messenger webhook", "ok", f"Meta calls {expected} for the Page")

    async def _conversations(self, scope: str, app: AppConfig, target: GraphTarget) -> None:
        try:
            answer = await self.graph.conversations(target)
        except GraphError as exc:
            self.add(
                scope, "conversations API", "fail", str(exc), _graph_fix(exc, "the page_token")
            )
            return
        count = len(answer.get("data") or [])
        self.add(scope, "conversations API", "ok", f"answers ({count} conversation(s) visible)")

    async def _handshake(self, scope: str, app: AppConfig) -> None:
        url = f"{self.config.service.public_url}/webhooks/{app.name}"
        parts = urlsplit(url)
        if parts.scheme != "https" and not self.config.sandbox:
            self.add(
                scope,
                "webhook handshake",
                "fail",
                f"{url} is not HTTPS: Meta only calls HTTPS URLs with a valid certificate",
                "serve the orchestrator behind a TLS proxy and set service.public_url to its "
                "https:// address",
            )
            return
        challenge = str(secrets.randbelow(10**9))
        params = {
            "hub.mode": "subscribe",
            "hub.verify_token": app.verify_token.value,
            "hub.challenge": challenge,
        }
        try:
            async with self.http.get(
                url,
                params=params,
                ssl=self.ssl_context if self.ssl_context is not None else True,
                timeout=aiohttp.ClientTimeout(total=10),
                allow_redirects=False,
            ) as resp:
                body = (await resp.text())[:200]
                status = resp.status
        except aiohttp.ClientSSLError as exc:
            self.add(
                scope,
                "webhook handshake",
                "fail",
                f"TLS failed for {url}: {exc}",
                "install a certificate from a public authority (Meta refuses self-signed ones) "
                "for this host name",
            )
            return
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.add(
                scope,
                "webhook handshake",
                "fail",
                f"{url} is not reachable from here: {type(exc).__name__}: {exc}",
                "start the service, and check DNS, firewall and the proxy in front of it",
            )
            return
        if status == 200 and body == challenge:
            self.add(scope, "webhook handshake", "ok", f"{url} answered the verify challenge")
        elif status == 403:
            self.add(
                scope,
                "webhook handshake",
                "fail",
                f"{url} refused the verify token (403)",
                "the service behind public_url uses another verify_token for this app: "
                "deploy this config there",
            )
        else:
            self.add(
                scope,
                "webhook handshake",
                "fail",
                f"{url} answered {status} {body!r} instead of the challenge",
                "public_url must reach this orchestrator's /webhooks/<app> routes unchanged "
                "(check the proxy's path rewriting)",
            )

    def _target(self, account: AccountConfig, app: AppConfig) -> GraphTarget:
        """The (account, app) pair's own token (`[accounts.tokens]`, else `page_token`)."""
        return GraphTarget(
            account_id=account.instagram_account_id,
            page_id=account.page_id,
            login=account.login,
            token=self.config.token(account, app).value,
        )


MARKS = {"ok": "ok  ", "fail": "FAIL", "warn": "warn", "manual": "todo"}


def render(checks: Sequence[Check]) -> str:
    lines: list[str] = []
    scope = None
    for c in checks:
        if c.scope != scope:
            scope = c.scope
            lines.append(scope)
        lines.append(f"  [{MARKS[c.status]}] {c.name}: {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"         fix: {c.fix}")
    failed = sum(c.status == "fail" for c in checks)
    todo = sum(c.status == "manual" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines.append(
        f"{failed} failed, {warned} warning(s), {todo} manual step(s) to confirm, "
        f"{sum(c.status == 'ok' for c in checks)} ok"
    )
    return "\n".join(lines)
