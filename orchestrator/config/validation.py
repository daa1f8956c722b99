"""Validating readers: raw TOML tables → config sections, each problem collected with its key
path by `_Reader` (which also resolves `${ENV}` secret references), plus `parse_duration`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from orchestrator.config.types import (
    CHANNELS,
    AccountConfig,
    AppConfig,
    DisclosureConfig,
    HandoverConfig,
    RateLimitConfig,
    Secret,
    ServiceConfig,
)

_ENV_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})?$")
_HANDLER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_VERSION = re.compile(r"^v\d+\.\d+$")

# Every key each table accepts. A key or section not listed here is a mistake (a typo such as
# `locle` or `pending_timout` would otherwise be ignored silently and its default used).
TOP_KEYS = ("service", "accounts", "apps", "handover", "disclosure", "rate_limits")
SERVICE_KEYS = (
    "mode",
    "host",
    "port",
    "public_url",
    "graph_api_version",
    "facebook_graph_url",
    "instagram_graph_url",
    "workers",
    "dispatchers",
    "max_in_flight",
    "retry_budget",
    "retention",
    "max_body_bytes",
    "outbox_max_attempts",
    "max_reply_parts",
    "simulator_port",
    "data_dir",
    "header_timeout",
    "body_timeout",
)
ACCOUNT_KEYS = (
    "name",
    "instagram_account_id",
    "page_id",
    "locale",
    "market",
    "login",
    "channels",
    "tokens",
)
APP_KEYS = (
    "name",
    "app_id",
    "role",
    "kind",
    "app_secret",
    "verify_token",
    "page_token",
    "api_key",
    "handler",
    "url",
    "signing_secret",
    "standby",
    "can_take",
    "can_read",
    "options",
)
HANDOVER_KEYS = (
    "pending_timeout",
    "human_idle_timeout",
    "request_policy",
    "escalation_keywords",
    "escalation_payloads",
    "bot_failure_threshold",
    "default_human_app",
)
DISCLOSURE_KEYS = ("lapse", "text", "no_agent_text", "escalation_text", "default_locale")
RATE_LIMIT_KEYS = (
    "send_text",
    "send_media",
    "private_reply_per_hour",
    "conversations",
    "thread_control",
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def suggest(word: str, known: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for a near miss, else a list of what is accepted."""
    known = list(known)
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"expected one of {', '.join(known)}"


def parse_duration(value: Any) -> timedelta:
    """`"10m"`, `"4h"`, `"7d"`, `"250ms"` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '10m', '4h' or '7d'")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    raise ValueError(f"{value!r} is not a duration; write e.g. '30s', '10m', '4h' or '7d'")


class _Reader:
    """Collects every problem with its key path instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str], sandbox: bool) -> None:
        self.env = env
        self.sandbox = sandbox
        self.problems: list[str] = []
        self.generated: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def table(self, value: Any, path: str) -> Mapping[str, Any]:
        """A TOML table, or {} with a problem when something else stands there."""
        if isinstance(value, dict):
            return value
        self.fail(path, f"expected a table ([{path}]), got {value!r}")
        return {}

    def keys(self, table: Mapping[str, Any], path: str, known: Iterable[str]) -> None:
        known = tuple(known)
        for key in table:
            if key not in known:
                where = f"{path}.{key}" if path else str(key)
                what = "section" if isinstance(table[key], dict | list) else "key"
                self.fail(where, f"unknown {what}; {suggest(str(key), known)}")

    def number(
        self,
        table: Mapping[str, Any],
        path: str,
        key: str,
        default: Any,
        *,
        low: float,
        high: float | None = None,
        kind: type = int,
    ) -> Any:
        if key not in table:
            return default
        value = self.get(table, path, key, kind, default)
        if value is None or value is default:
            return default
        if value < low or (high is not None and value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            self.fail(f"{path}.{key}", f"must be {bound}, got {value!r}")
            return default
        return value

    def url(self, path: str, value: str | None, *, https: bool, what: str = "URL") -> str | None:
        """An absolute http(s) URL with a host; `https` also refuses plain http (but allows
        loopback hosts, which never leave the machine)."""
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            self.fail(path, f"{value!r} is not a valid {what}: {exc}")
            return None
        if parts.scheme not in ("http", "https") or not host:
            self.fail(path, f"{value!r}: expected an absolute {what} such as https://host/path")
            return None
        if https and parts.scheme != "https" and host not in LOOPBACK_HOSTS:
            self.fail(path, f"{value!r}: must use https:// in live mode")
            return None
        return value

    def get(
        self,
        table: Mapping[str, Any],
        path: str,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
    ) -> Any:
        if key not in table:
            if default is ...:
                self.fail(f"{path}.{key}" if path else key, "is required")
                return None
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.fail(f"{path}.{key}" if path else key, f"expected {names}, got {value!r}")
            return None if default is ... else default
        return value

    def secret(
        self, table: Mapping[str, Any], path: str, key: str, required: bool
    ) -> Secret | None:
        where = f"{path}.{key}"
        if key not in table:
            if required:
                if self.sandbox:
                    self.generated.append(where)
                    return Secret(f"sandbox-{where}", "sandbox placeholder")
                self.fail(where, "is required; write it as an ${ENV_VAR} reference")
            return None
        raw = table[key]
        match = _ENV_REF.match(raw) if isinstance(raw, str) else None
        if not match:
            self.fail(
                where,
                "secrets are not written in config files; use an environment reference "
                'such as "${MY_APP_SECRET}"',
            )
            return None
        var = match.group(1)
        value = self.env.get(var, "")
        if not value:
            if self.sandbox:
                self.generated.append(where)
                return Secret(f"sandbox-{var}", "sandbox placeholder")
            self.fail(where, f"environment variable {var} is not set; export {var}=<value>")
            return None
        return Secret(value, f"${{{var}}}")


def _duration(
    r: _Reader,
    t: Mapping[str, Any],
    path: str,
    key: str,
    default: timedelta,
    *,
    low: timedelta = timedelta(seconds=1),
    high: timedelta | None = None,
) -> timedelta:
    if key not in t:
        return default
    try:
        value = parse_duration(t[key])
    except ValueError as exc:
        r.fail(f"{path}.{key}", str(exc))
        return default
    if value < low or (high is not None and value > high):
        span = f"between {_human(low)} and {_human(high)}" if high else f"at least {_human(low)}"
        r.fail(f"{path}.{key}", f"must be {span}, got {t[key]!r}")
        return default
    return value


def _human(d: timedelta) -> str:
    seconds = d.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _env_port(r: _Reader, name: str, value: int) -> int:
    raw = r.env.get(name)
    if not raw:
        return value
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 65535:
        return int(raw)
    r.fail(name, f"environment variable {name} must be a port number (1-65535), got {raw!r}")
    return value


def _service(r: _Reader, t: Mapping[str, Any], mode: str) -> ServiceConfig:
    d = ServiceConfig()
    p = "service"
    r.keys(t, p, SERVICE_KEYS)
    live = mode == "live"
    port = _env_port(r, "PORT", r.number(t, p, "port", d.port, low=1, high=65535))
    host = r.get(t, p, "host", str, d.host)
    if not host:
        r.fail(f"{p}.host", "must not be empty (e.g. 127.0.0.1, or 0.0.0.0 for every interface)")
        host = d.host
    public_url = r.get(t, p, "public_url", str, None)
    if public_url is None:
        if live:
            r.fail(
                f"{p}.public_url",
                "is required in live mode: the https:// address Meta calls "
                '(e.g. public_url = "https://orchestrator.example.com")',
            )
        public_url = f"http://{host}:{port}"
    else:
        checked = r.url(f"{p}.public_url", public_url, https=False)
        if checked is not None and live and urlsplit(checked).scheme != "https":
            r.fail(
                f"{p}.public_url",
                f"{public_url!r}: Meta only calls webhooks over HTTPS with a valid certificate; "
                "use the https:// address of your proxy or load balancer",
            )
    simulator_port = _env_port(
        r, "SIMULATOR_PORT", r.number(t, p, "simulator_port", d.simulator_port, low=1, high=65535)
    )
    if mode == "sandbox" and simulator_port == port:
        r.fail(f"{p}.simulator_port", f"{simulator_port} is also the service port; pick another")
    version = r.get(t, p, "graph_api_version", str, d.graph_api_version)
    if not _VERSION.match(version or ""):
        r.fail(f"{p}.graph_api_version", f"{version!r}: expected a version such as 'v25.0'")
        version = d.graph_api_version
    fb_url = r.get(t, p, "facebook_graph_url", str, d.facebook_graph_url)
    ig_url = r.get(t, p, "instagram_graph_url", str, d.instagram_graph_url)
    r.url(f"{p}.facebook_graph_url", fb_url, https=live)
    r.url(f"{p}.instagram_graph_url", ig_url, https=live)
    data_dir = r.get(t, p, "data_dir", str, d.data_dir)
    if not data_dir:
        r.fail(f"{p}.data_dir", "must not be empty")
        data_dir = d.data_dir
    return ServiceConfig(
        mode=mode if mode in ("sandbox", "live") else "live",  # type: ignore[arg-type]
        host=host,
        port=port,
        public_url=public_url.rstrip("/"),
        graph_api_version=version,
        facebook_graph_url=fb_url.rstrip("/"),
        instagram_graph_url=ig_url.rstrip("/"),
        workers=r.number(t, p, "workers", d.workers, low=1, high=256),
        dispatchers=r.number(t, p, "dispatchers", d.dispatchers, low=1, high=256),
        max_in_flight=r.number(t, p, "max_in_flight", d.max_in_flight, low=1, high=10000),
        retry_budget=_duration(r, t, p, "retry_budget", d.retry_budget, high=timedelta(days=7)),
        retention=_duration(r, t, p, "retention", d.retention, high=timedelta(days=3650)),
        max_body_bytes=r.number(t, p, "max_body_bytes", d.max_body_bytes, low=1024, high=2**30),
        outbox_max_attempts=r.number(
            t, p, "outbox_max_attempts", d.outbox_max_attempts, low=1, high=100
        ),
        max_reply_parts=r.number(t, p, "max_reply_parts", d.max_reply_parts, low=1, high=50),
        simulator_port=simulator_port,
        data_dir=data_dir,
        header_timeout=_duration(
            r, t, p, "header_timeout", d.header_timeout, high=timedelta(minutes=10)
        ),
        body_timeout=_duration(r, t, p, "body_timeout", d.body_timeout, high=timedelta(hours=1)),
    )


def _locale(r: _Reader, path: str, value: Any) -> str | None:
    if not isinstance(value, str) or not _LOCALE.match(value):
        r.fail(path, f"{value!r}: expected a language code such as 'de', 'en' or 'pt_BR'")
        return None
    return value


def _accounts(r: _Reader, raw: Any) -> tuple[AccountConfig, ...]:
    if not isinstance(raw, list) or not raw:
        r.fail("accounts", "at least one [[accounts]] table is required")
        return ()
    out: list[AccountConfig] = []
    seen: set[str] = set()
    for i, t in enumerate(raw):
        p = f"accounts[{i}]"
        if not isinstance(t, dict):
            r.fail(p, "expected a table")
            continue
        r.keys(t, p, ACCOUNT_KEYS)
        ig_id = _id(r, t, p, "instagram_account_id")
        page_id = _id(r, t, p, "page_id", required=False)
        login = r.get(t, p, "login", str, "facebook")
        if login not in ("facebook", "instagram"):
            r.fail(f"{p}.login", f"must be 'facebook' or 'instagram', got {login!r}")
        if login == "facebook" and page_id is None:
            r.fail(f"{p}.page_id", "is required with login = 'facebook' (thread control uses it)")
        if ig_id and ig_id in seen:
            r.fail(f"{p}.instagram_account_id", f"{ig_id} is registered twice")
        seen.add(ig_id or "")
        locale = r.get(t, p, "locale", str, "en")
        if locale is not None and _locale(r, f"{p}.locale", locale) is None:
            locale = "en"
        market = r.get(t, p, "market", str, "")
        if market and not re.match(r"^[A-Z]{2}$", market):
            r.fail(f"{p}.market", f"{market!r}: expected a two-letter country code such as 'DE'")
        name = r.get(t, p, "name", str, f"account{i}")
        channels = _channels(r, t, p, login, page_id)
        if page_id and "messenger" in channels:
            if page_id in seen:
                r.fail(f"{p}.page_id", f"{page_id} is registered twice")
            seen.add(page_id)
        out.append(
            AccountConfig(
                name=name or f"account{i}",
                instagram_account_id=ig_id or "",
                page_id=page_id,
                locale=locale or "en",
                market=market or "",
                login=login,
                channels=channels,
                tokens=_tokens(r, t, p),
            )
        )
    return tuple(out)


def _channels(
    r: _Reader, t: Mapping[str, Any], p: str, login: str, page_id: str | None
) -> tuple[Any, ...]:
    """`channels = ["instagram", "messenger"]`; Messenger is the account's Facebook Page, so
    it needs login = "facebook" and a page_id."""
    raw = r.get(t, p, "channels", list, ["instagram"])
    if raw is None:
        return ("instagram",)
    out: list[str] = []
    for j, value in enumerate(raw):
        if value not in CHANNELS:
            r.fail(f"{p}.channels[{j}]", f"{value!r}: {suggest(str(value), CHANNELS)}")
        elif value not in out:
            out.append(value)
    if not out:
        r.fail(f"{p}.channels", "name at least one channel: 'instagram' and/or 'messenger'")
        return ("instagram",)
    if "messenger" in out and login != "facebook":
        r.fail(
            f"{p}.channels",
            "'messenger' needs login = 'facebook': Messenger conversations belong to the "
            "account's Facebook Page (an Instagram-login account has no Page)",
        )
        out.remove("messenger")
    elif "messenger" in out and page_id is None:
        r.fail(f"{p}.channels", "'messenger' needs the account's page_id (the Page's id)")
        out.remove("messenger")
    return tuple(out) or ("instagram",)


def _tokens(r: _Reader, t: Mapping[str, Any], p: str) -> dict[str, Secret]:
    """`[accounts.tokens]`: app name → `${ENV}` token of that app for this account. App names
    are checked against [[apps]] once both are read (`token_problems`)."""
    raw = r.get(t, p, "tokens", dict, {})
    out: dict[str, Secret] = {}
    for app_name in raw or {}:
        secret = r.secret(raw, f"{p}.tokens", app_name, True)
        if secret is not None:
            out[str(app_name)] = secret
    return out


def resolve_tokens(
    r: _Reader,
    raw_apps: Any,
    accounts: tuple[AccountConfig, ...],
    apps: tuple[AppConfig, ...],
) -> tuple[tuple[AccountConfig, ...], tuple[AppConfig, ...]]:
    """Every (account, app) pair needs a token. With one account the app's `page_token` is the
    token (the single-account set-up); with several, each account names its own under
    `[accounts.tokens]`, since a Page token belongs to one Page and one app-level token would
    send every account's messages with the first Page's token. Tokens for unknown apps are
    mistakes. Returns the sections with sandbox placeholders filled in where allowed."""
    names = [a.name for a in apps]
    single = len(accounts) == 1
    out_apps = []
    for i, app in enumerate(apps):
        raw_app = raw_apps[i] if isinstance(raw_apps, list) and i < len(raw_apps) else {}
        raw_app = raw_app if isinstance(raw_app, dict) else {}
        if single and app.name not in accounts[0].tokens and not app.page_token:
            if "page_token" not in raw_app:  # a given-but-unset variable is reported already
                secret = r.secret(raw_app, f"apps[{i}]", "page_token", True)
                app = replace(app, page_token=secret or Secret(""))
        out_apps.append(app)
    out_accounts = []
    for j, acc in enumerate(accounts):
        tokens = dict(acc.tokens)
        for app_name in acc.tokens:
            if app_name not in names:
                r.fail(
                    f"accounts[{j}].tokens.{app_name}",
                    f"no app named {app_name!r}; {suggest(app_name, names)}",
                )
        if not single:
            for i, app in enumerate(apps):
                if app.name in tokens:
                    continue
                where = f"accounts[{j}].tokens.{app.name}"
                if r.sandbox:
                    r.generated.append(where)
                    tokens[app.name] = Secret(f"sandbox-{where}", "sandbox placeholder")
                    continue
                var = re.sub(r"[^A-Z0-9]+", "_", f"{acc.name}_{app.name}_TOKEN".upper())
                also = (
                    f"apps[{i}].page_token is used only when there is a single account"
                    if app.page_token
                    else f"apps[{i}].page_token is not set either"
                )
                r.fail(
                    where,
                    f"is required: app {app.name!r} has no token for account {acc.name!r} "
                    f'({also}); add {app.name} = "${{{var}}}" under [accounts.tokens] of '
                    f"accounts[{j}]",
                )
        out_accounts.append(replace(acc, tokens=tokens))
    return tuple(out_accounts), tuple(out_apps)


def _id(r: _Reader, t: Mapping[str, Any], p: str, key: str, required: bool = True) -> str | None:
    value = t.get(key)
    if value is None:
        if required:
            r.fail(f"{p}.{key}", "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        r.fail(f"{p}.{key}", f"expected an id (digits), got {value!r}")
        return None
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 30:
        r.fail(f"{p}.{key}", f"expected digits only, got {text!r}")
        return None
    return text


def _apps(r: _Reader, raw: Any) -> tuple[AppConfig, ...]:
    if not isinstance(raw, list) or not raw:
        r.fail("apps", "at least one [[apps]] table is required (exactly one with role='primary')")
        return ()
    out: list[AppConfig] = []
    names: dict[str, int] = {}
    ids: dict[str, int] = {}
    for i, t in enumerate(raw):
        p = f"apps[{i}]"
        if not isinstance(t, dict):
            r.fail(p, "expected a table")
            continue
        r.keys(t, p, APP_KEYS)
        name = r.get(t, p, "name", str) or f"app{i}"
        if not _NAME.match(name):
            r.fail(f"{p}.name", f"{name!r}: use lowercase letters, digits, '-' or '_' (≤ 40)")
        if name in names:
            r.fail(f"{p}.name", f"{name!r} is already used by apps[{names[name]}]")
        names.setdefault(name, i)
        app_id = _id(r, t, p, "app_id") or ""
        if app_id and app_id in ids:
            r.fail(f"{p}.app_id", f"{app_id} is already used by apps[{ids[app_id]}]")
        ids.setdefault(app_id, i)
        role = r.get(t, p, "role", str, "secondary")
        if role not in ("primary", "secondary"):
            r.fail(f"{p}.role", f"must be 'primary' or 'secondary', got {role!r}")
        kind = r.get(t, p, "kind", str, "bot")
        if kind not in ("bot", "human"):
            r.fail(f"{p}.kind", f"must be 'bot' or 'human', got {kind!r}")
        handler = r.get(t, p, "handler", str, None)
        url = r.get(t, p, "url", str, None)
        if handler and url:
            r.fail(p, "set either 'handler' (in-process) or 'url' (HTTP vendor), not both")
        if handler is not None and not _HANDLER.match(handler):
            r.fail(f"{p}.handler", f"{handler!r}: expected a dotted path 'package.module:Class'")
            handler = None
        if url is not None:
            url = r.url(f"{p}.url", url, https=not r.sandbox, what="http(s) URL")
        options = r.get(t, p, "options", dict, {})
        can_read = r.get(t, p, "can_read", str, "own")
        if can_read not in ("own", "all"):
            r.fail(f"{p}.can_read", f"must be 'own' or 'all', got {can_read!r}")
            can_read = "own"
        out.append(
            AppConfig(
                name=name,
                app_id=app_id,
                role=role,
                kind=kind,
                app_secret=r.secret(t, p, "app_secret", True) or Secret(""),
                verify_token=r.secret(t, p, "verify_token", True) or Secret(""),
                # Optional here: an account may give its own token (`token_problems`).
                page_token=r.secret(t, p, "page_token", False) or Secret(""),
                api_key=r.secret(t, p, "api_key", required="url" in t),
                handler=handler,
                url=url,
                signing_secret=r.secret(t, p, "signing_secret", required="url" in t),
                standby=r.get(t, p, "standby", bool, False),
                can_take=r.get(t, p, "can_take", bool, role == "primary"),
                options=options,
                can_read=can_read,
            )
        )
    primaries = [i for i, a in enumerate(out) if a.role == "primary"]
    if len(primaries) != 1:
        where = ", ".join(f"apps[{i}]" for i in primaries) or "none"
        r.fail("apps", f"exactly one app must have role = 'primary' (found {where})")
    return tuple(out)


def _strings(r: _Reader, path: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        r.fail(path, f"expected a list of non-empty strings, got {value!r}")
        return []
    return list(value)


def _handover(r: _Reader, t: Mapping[str, Any], apps: tuple[AppConfig, ...]) -> HandoverConfig:
    d = HandoverConfig()
    p = "handover"
    r.keys(t, p, HANDOVER_KEYS)
    policy = r.get(t, p, "request_policy", str, d.request_policy)
    if policy not in ("grant", "ask_owner"):
        r.fail(f"{p}.request_policy", f"must be 'grant' or 'ask_owner', got {policy!r}")
    keywords_raw = r.get(t, p, "escalation_keywords", (dict, list), {})
    keywords: list[str] = []
    if isinstance(keywords_raw, dict):
        for locale, words in keywords_raw.items():
            where = f"{p}.escalation_keywords.{locale}"
            _locale(r, where, locale)
            keywords.extend(w.lower() for w in _strings(r, where, words))
    elif keywords_raw is not None:
        keywords.extend(w.lower() for w in _strings(r, f"{p}.escalation_keywords", keywords_raw))
    payloads_raw = r.get(t, p, "escalation_payloads", list, list(d.escalation_payloads))
    payloads = _strings(r, f"{p}.escalation_payloads", payloads_raw) if payloads_raw else []
    default_human = r.get(t, p, "default_human_app", str, None)
    humans = [a.name for a in apps if a.kind == "human"]
    if default_human is not None and default_human not in humans:
        r.fail(
            f"{p}.default_human_app",
            f"{default_human!r} is not a registered app of kind 'human' "
            f"(human apps: {', '.join(humans) or 'none'})",
        )
    threshold = r.number(t, p, "bot_failure_threshold", d.bot_failure_threshold, low=1, high=100)
    return HandoverConfig(
        pending_timeout=_duration(
            r, t, p, "pending_timeout", d.pending_timeout, high=timedelta(days=365)
        ),
        human_idle_timeout=_duration(
            r, t, p, "human_idle_timeout", d.human_idle_timeout, high=timedelta(days=365)
        ),
        request_policy=policy if policy in ("grant", "ask_owner") else d.request_policy,
        escalation_keywords=tuple(keywords),
        escalation_payloads=tuple(payloads),
        bot_failure_threshold=threshold,
        default_human_app=default_human or (humans[0] if humans else None),
    )


def _texts(r: _Reader, t: Mapping[str, Any], path: str, key: str) -> dict[str, str]:
    raw = r.get(t, path, key, dict, {})
    out: dict[str, str] = {}
    for locale, text in (raw or {}).items():
        where = f"{path}.{key}.{locale}"
        if _locale(r, where, locale) is None:
            continue
        if not isinstance(text, str) or not text.strip():
            r.fail(where, f"expected a non-empty text, got {text!r}")
            continue
        out[locale] = text
    return out


def _disclosure(
    r: _Reader, t: Mapping[str, Any], accounts: tuple[AccountConfig, ...]
) -> DisclosureConfig:
    p = "disclosure"
    d = DisclosureConfig()
    r.keys(t, p, DISCLOSURE_KEYS)
    lapse = _duration(r, t, p, "lapse", d.lapse, low=timedelta(minutes=1), high=timedelta(days=365))
    text = _texts(r, t, p, "text")
    no_agent = _texts(r, t, p, "no_agent_text")
    escalation = _texts(r, t, p, "escalation_text")
    default_locale = r.get(t, p, "default_locale", str, d.default_locale)
    if "text" not in t:
        r.fail(
            f"{p}.text", 'is required: e.g. en = "You are chatting with an automated assistant."'
        )
    elif text and default_locale not in text:
        r.fail(f"{p}.default_locale", f"no disclosure text for {default_locale!r} in {p}.text")
    # A missing text for an account's locale would fall back to another language: for the
    # disclosure (a legal text) that is a mistake, never a silent default.
    for i, acc in enumerate(accounts):
        tables = (("text", text), ("no_agent_text", no_agent), ("escalation_text", escalation))
        for key, table in tables:
            if table and acc.locale not in table:
                r.fail(
                    f"{p}.{key}",
                    f"no text for locale {acc.locale!r} of accounts[{i}] ({acc.name}); "
                    f"add {p}.{key}.{acc.locale}",
                )
    return DisclosureConfig(
        lapse=lapse,
        text=text,
        no_agent_text=no_agent,
        escalation_text=escalation,
        default_locale=default_locale or d.default_locale,
    )


def _rate_limits(r: _Reader, t: Mapping[str, Any]) -> RateLimitConfig:
    d = RateLimitConfig()
    r.keys(t, "rate_limits", RATE_LIMIT_KEYS)
    values = {}
    for key in RATE_LIMIT_KEYS:
        value = r.get(t, "rate_limits", key, float, getattr(d, key))
        if value is not None and not 0 < value <= 1e6:
            r.fail(f"rate_limits.{key}", "must be a positive number of calls")
            value = getattr(d, key)
        values[key] = value
    return RateLimitConfig(**values)
