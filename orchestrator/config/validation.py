"""Validating readers: raw TOML tables → config sections, each problem collected with its key
path by `_Reader` (which also resolves `${ENV}` secret references), plus `parse_duration`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from orchestrator.config.types import (
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


def _service(r: _Reader, t: Mapping[str, Any], mode: str) -> ServiceConfig:
    d = ServiceConfig()
    port = r.get(t, "service", "port", int, d.port)
    host = r.get(t, "service", "host", str, d.host)
    env_port = r.env.get("PORT")
    if env_port:
        if env_port.isdigit():
            port = int(env_port)
        else:
            r.fail("PORT", f"environment variable PORT must be a number, got {env_port!r}")
    public_url = r.get(t, "service", "public_url", str, f"http://{host}:{port}")
    simulator_port = r.get(t, "service", "simulator_port", int, d.simulator_port)
    env_sim = r.env.get("SIMULATOR_PORT")
    if env_sim:
        if env_sim.isdigit():
            simulator_port = int(env_sim)
        else:
            r.fail(
                "SIMULATOR_PORT",
                f"environment variable SIMULATOR_PORT must be a number, got {env_sim!r}",
            )
    return ServiceConfig(
        mode=mode if mode in ("sandbox", "live") else "live",  # type: ignore[arg-type]
        host=host,
        port=port,
        public_url=public_url.rstrip("/"),
        graph_api_version=r.get(t, "service", "graph_api_version", str, d.graph_api_version),
        facebook_graph_url=r.get(t, "service", "facebook_graph_url", str, d.facebook_graph_url),
        instagram_graph_url=r.get(t, "service", "instagram_graph_url", str, d.instagram_graph_url),
        workers=r.get(t, "service", "workers", int, d.workers),
        dispatchers=r.get(t, "service", "dispatchers", int, d.dispatchers),
        max_body_bytes=r.get(t, "service", "max_body_bytes", int, d.max_body_bytes),
        outbox_max_attempts=r.get(t, "service", "outbox_max_attempts", int, d.outbox_max_attempts),
        max_reply_parts=_max_reply_parts(r, t, d.max_reply_parts),
        simulator_port=simulator_port,
        data_dir=r.get(t, "service", "data_dir", str, d.data_dir),
    )


def _max_reply_parts(r: _Reader, t: Mapping[str, Any], default: int) -> int:
    value = r.get(t, "service", "max_reply_parts", int, default)
    if not 1 <= value <= 50:
        r.fail("service.max_reply_parts", f"must be between 1 and 50, got {value}")
        return default
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
        out.append(
            AccountConfig(
                name=r.get(t, p, "name", str, f"account{i}"),
                instagram_account_id=ig_id or "",
                page_id=page_id,
                locale=r.get(t, p, "locale", str, "en"),
                market=r.get(t, p, "market", str, ""),
                login=login,
            )
        )
    return tuple(out)


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
    if not text.isdigit():
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
    allowed = {
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
    }
    for i, t in enumerate(raw):
        p = f"apps[{i}]"
        if not isinstance(t, dict):
            r.fail(p, "expected a table")
            continue
        for key in t:
            if key not in allowed:
                r.fail(f"{p}.{key}", f"unknown key; expected one of {', '.join(sorted(allowed))}")
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
        if handler is not None and not re.match(r"^[\w.]+:[A-Za-z_]\w*$", handler):
            r.fail(f"{p}.handler", f"{handler!r}: expected a dotted path 'package.module:Class'")
        if url is not None and not re.match(r"^https?://", url):
            r.fail(f"{p}.url", f"{url!r}: expected an http(s) URL")
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
                page_token=r.secret(t, p, "page_token", True) or Secret(""),
                api_key=r.secret(t, p, "api_key", required=url is not None),
                handler=handler,
                url=url,
                signing_secret=r.secret(t, p, "signing_secret", required=url is not None),
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


def _handover(r: _Reader, t: Mapping[str, Any], apps: tuple[AppConfig, ...]) -> HandoverConfig:
    d = HandoverConfig()
    p = "handover"

    def duration(key: str, default: timedelta) -> timedelta:
        if key not in t:
            return default
        try:
            return parse_duration(t[key])
        except ValueError as exc:
            r.fail(f"{p}.{key}", str(exc))
            return default

    policy = r.get(t, p, "request_policy", str, d.request_policy)
    if policy not in ("grant", "ask_owner"):
        r.fail(f"{p}.request_policy", f"must be 'grant' or 'ask_owner', got {policy!r}")
    keywords_raw = r.get(t, p, "escalation_keywords", (dict, list), {})
    keywords: list[str] = []
    if isinstance(keywords_raw, dict):
        for locale, words in keywords_raw.items():
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                r.fail(f"{p}.escalation_keywords.{locale}", "expected a list of strings")
                continue
            keywords.extend(w.lower() for w in words)
    else:
        keywords.extend(str(w).lower() for w in keywords_raw)
    payloads = r.get(t, p, "escalation_payloads", list, list(d.escalation_payloads))
    default_human = r.get(t, p, "default_human_app", str, None)
    humans = [a.name for a in apps if a.kind == "human"]
    if default_human is not None and default_human not in humans:
        r.fail(
            f"{p}.default_human_app",
            f"{default_human!r} is not a registered app of kind 'human' "
            f"(human apps: {', '.join(humans) or 'none'})",
        )
    threshold = r.get(t, p, "bot_failure_threshold", int, d.bot_failure_threshold)
    if threshold is not None and threshold < 1:
        r.fail(f"{p}.bot_failure_threshold", "must be at least 1")
    return HandoverConfig(
        pending_timeout=duration("pending_timeout", d.pending_timeout),
        human_idle_timeout=duration("human_idle_timeout", d.human_idle_timeout),
        request_policy=policy if policy in ("grant", "ask_owner") else d.request_policy,
        escalation_keywords=tuple(keywords),
        escalation_payloads=tuple(str(x) for x in payloads),
        bot_failure_threshold=threshold or d.bot_failure_threshold,
        default_human_app=default_human or (humans[0] if humans else None),
    )


def _disclosure(
    r: _Reader, t: Mapping[str, Any], accounts: tuple[AccountConfig, ...]
) -> DisclosureConfig:
    p = "disclosure"
    d = DisclosureConfig()
    lapse = d.lapse
    if "lapse" in t:
        try:
            lapse = parse_duration(t["lapse"])
        except ValueError as exc:
            r.fail(f"{p}.lapse", str(exc))
    text = r.get(t, p, "text", dict, {})
    no_agent = r.get(t, p, "no_agent_text", dict, {})
    escalation = r.get(t, p, "escalation_text", dict, {})
    default_locale = r.get(t, p, "default_locale", str, d.default_locale)
    if not text:
        r.fail(
            f"{p}.text", 'is required: e.g. en = "You are chatting with an automated assistant."'
        )
    elif default_locale not in text:
        r.fail(f"{p}.default_locale", f"no disclosure text for {default_locale!r} in {p}.text")
    for i, acc in enumerate(accounts):
        if text and acc.locale not in text and default_locale not in text:
            r.fail(f"accounts[{i}].locale", f"no {p}.text for locale {acc.locale!r}")
    return DisclosureConfig(
        lapse=lapse,
        text={str(k): str(v) for k, v in text.items()},
        no_agent_text={str(k): str(v) for k, v in no_agent.items()},
        escalation_text={str(k): str(v) for k, v in escalation.items()},
        default_locale=default_locale,
    )


def _rate_limits(r: _Reader, t: Mapping[str, Any]) -> RateLimitConfig:
    d = RateLimitConfig()
    values = {}
    for key in (
        "send_text",
        "send_media",
        "private_reply_per_hour",
        "conversations",
        "thread_control",
    ):
        value = r.get(t, "rate_limits", key, float, getattr(d, key))
        if value is not None and value <= 0:
            r.fail(f"rate_limits.{key}", "must be a positive number of calls")
            value = getattr(d, key)
        values[key] = value
    for key in t:
        if key not in values:
            r.fail(f"rate_limits.{key}", f"unknown key; expected one of {', '.join(values)}")
    return RateLimitConfig(**values)
