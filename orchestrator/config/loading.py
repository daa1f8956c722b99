"""Configuration: one TOML file, validated whole at start-up.

Every mistake is reported with the key path where it sits and how to fix it, all at once
(a config with three mistakes shows three lines, not the first one). Secrets are `${ENV}`
references resolved from the environment; committed files never hold a secret.

In sandbox mode (the default config) the Meta simulator stands in for Meta, so a secret whose
variable is not set takes the placeholder `sandbox-<VAR>` (e.g. `sandbox-SUPPORT_API_KEY`):
nothing real exists to leak, and a tester can use the documented value at once. Live mode
refuses to start until every variable is set.

This module reads the file and assembles the whole; the value objects live in `config_types`
and the validating readers (and `parse_duration`) in `config_validation`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.config.types import (
    AccountConfig,
    AppConfig,
    Config,
    DisclosureConfig,
    HandoverConfig,
    RateLimitConfig,
    Secret,
    ServiceConfig,
)
from orchestrator.config.validation import (
    _accounts,
    _apps,
    _disclosure,
    _handover,
    _rate_limits,
    _Reader,
    _service,
    parse_duration,
)
from orchestrator.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AccountConfig",
    "AppConfig",
    "Config",
    "DisclosureConfig",
    "HandoverConfig",
    "RateLimitConfig",
    "Secret",
    "ServiceConfig",
    "build_config",
    "load_config",
    "parse_duration",
]

DEFAULT_CONFIG_PATH = Path("config/orchestrator.toml")


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Load and validate; raises ConfigError listing every problem with its key path."""
    env = os.environ if env is None else env
    cfg_path = Path(path or env.get("ORCHESTRATOR_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(cfg_path), [f"{cfg_path}: file not found"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(cfg_path), [f"{cfg_path}: not valid TOML: {exc}"]) from None
    return build_config(data, str(cfg_path), env)


def build_config(data: Mapping[str, Any], path: str, env: Mapping[str, str]) -> Config:
    mode = env.get("ORCHESTRATOR_MODE") or data.get("service", {}).get("mode", "live")
    r = _Reader(env, sandbox=mode == "sandbox")
    if mode not in ("sandbox", "live"):
        r.fail("service.mode", f"must be 'sandbox' or 'live', got {mode!r}")
    service = _service(r, data.get("service", {}), mode)
    accounts = _accounts(r, data.get("accounts"))
    apps = _apps(r, data.get("apps"))
    handover = _handover(r, data.get("handover", {}), apps)
    disclosure = _disclosure(r, data.get("disclosure", {}), accounts)
    if len(apps) > 1:
        for i, acc in enumerate(accounts):
            if acc.login == "instagram":
                r.fail(
                    f"accounts[{i}].login",
                    "handover between several apps needs login = 'facebook' and a page_id: "
                    "thread control is a Page feature (PLATFORM.md section 5)",
                )
    rate_limits = _rate_limits(r, data.get("rate_limits", {}))
    known = {"service", "accounts", "apps", "handover", "disclosure", "rate_limits"}
    for key in data:
        if key not in known:
            r.fail(key, f"unknown section; expected one of {', '.join(sorted(known))}")
    if r.problems:
        raise ConfigError(path, r.problems)
    return Config(
        path=path,
        service=service,
        accounts=accounts,
        apps=apps,
        handover=handover,
        disclosure=disclosure,
        rate_limits=rate_limits,
        generated_secrets=tuple(r.generated),
    )
