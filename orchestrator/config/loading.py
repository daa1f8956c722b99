"""Configuration: one TOML file, validated whole at start-up.

Every mistake is reported with the key path where it sits and how to fix it, all at once
(a config with three mistakes shows three lines, not the first one). Secrets are `${ENV}`
references resolved from the environment; committed files never hold a secret.

In sandbox mode (the default config) the Meta simulator stands in for Meta, so a secret whose
variable is not set takes the placeholder `sandbox-<VAR>` (e.g. `sandbox-SUPPORT_API_KEY`):
nothing real exists to leak, and a tester can use the documented value at once. Live mode
refuses to start until every variable is set.

This module reads the file and assembles the whole; the value objects live in `types` and the
validating readers (and `parse_duration`) in `validation`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator.config.types import (
    Config,
)
from orchestrator.config.validation import (
    TOP_KEYS,
    _accounts,
    _apps,
    _disclosure,
    _handover,
    _rate_limits,
    _Reader,
    _service,
    resolve_tokens,
)
from orchestrator.errors import ConfigError

# The package (`orchestrator.config`) is the public face: it re-exports these and the types.
__all__ = ["DEFAULT_CONFIG_PATH", "build_config", "load_config"]

DEFAULT_CONFIG_PATH = Path("config/orchestrator.toml")
# The sandbox config ships inside the package, so an installed wheel runs from any directory.
SANDBOX_CONFIG = "sandbox.toml"
BUILTIN_NAME = "built-in sandbox config"


def config_source(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> str | None:
    """The file to read: `--config`, then $ORCHESTRATOR_CONFIG, then config/orchestrator.toml
    of the working directory; None means the built-in sandbox config."""
    chosen = path or env.get("ORCHESTRATOR_CONFIG")
    if chosen:
        return str(chosen)
    return str(DEFAULT_CONFIG_PATH) if DEFAULT_CONFIG_PATH.is_file() else None


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    check_handlers: bool = True,
) -> Config:
    """Load and validate; raises ConfigError listing every problem with its key path."""
    env = os.environ if env is None else env
    source = config_source(path, env)
    try:
        if source is None:
            text = (resources.files("orchestrator.config") / SANDBOX_CONFIG).read_text("utf-8")
        else:
            text = Path(source).read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(str(source), [f"{source}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(source), [f"{source}: cannot be read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(source), [f"{source}: not valid TOML: {exc}"]) from None
    return build_config(data, source or BUILTIN_NAME, env, check_handlers=check_handlers)


def build_config(
    data: Mapping[str, Any],
    path: str,
    env: Mapping[str, str],
    *,
    check_handlers: bool = True,
) -> Config:
    """Validate the whole file; raises ConfigError listing every problem with its key path.

    `check_handlers` also imports each app's handler and builds it once, exactly as `serve`
    does (through `load_subapp`), so a typo in a dotted path is a config mistake, not a
    start-up traceback."""
    r = _Reader(env, sandbox=False)
    service_raw = r.table(data.get("service", {}), "service")
    mode = env.get("ORCHESTRATOR_MODE") or service_raw.get("mode", "live")
    if mode not in ("sandbox", "live"):
        where = "ORCHESTRATOR_MODE" if env.get("ORCHESTRATOR_MODE") else "service.mode"
        r.fail(where, f"must be 'sandbox' or 'live', got {mode!r}")
    r.sandbox = mode == "sandbox"
    r.keys(data, "", TOP_KEYS)
    service = _service(r, service_raw, mode)
    accounts = _accounts(r, data.get("accounts"))
    apps = _apps(r, data.get("apps"))
    accounts, apps = resolve_tokens(r, data.get("apps"), accounts, apps)
    handover = _handover(r, r.table(data.get("handover", {}), "handover"), apps)
    disclosure = _disclosure(r, r.table(data.get("disclosure", {}), "disclosure"), accounts)
    if len(apps) > 1:
        for i, acc in enumerate(accounts):
            if acc.login == "instagram":
                r.fail(
                    f"accounts[{i}].login",
                    "handover between several apps needs login = 'facebook' and a page_id: "
                    "thread control is a Page feature (docs/platform.md section 5)",
                )
    rate_limits = _rate_limits(r, r.table(data.get("rate_limits", {}), "rate_limits"))
    config = Config(
        path=path,
        service=service,
        accounts=accounts,
        apps=apps,
        handover=handover,
        disclosure=disclosure,
        rate_limits=rate_limits,
        generated_secrets=tuple(r.generated),
    )
    if check_handlers:
        r.problems.extend(handler_problems(config, r.problems))
    if r.problems:
        raise ConfigError(path, r.problems)
    return config


def handler_problems(config: Config, known: list[str]) -> list[str]:
    """Import and build every app's handler (the same `load_subapp` as `serve`); one problem
    per app that cannot start. Apps whose handler/url keys are already reported are skipped."""
    from orchestrator.engine.subapps import AppContext, load_subapp
    from orchestrator.errors import SubAppLoadError

    problems = []
    for i, app in enumerate(config.apps):
        if not (app.handler or app.url):
            continue
        if any(p.startswith((f"apps[{i}].handler", f"apps[{i}].url")) for p in known):
            continue
        try:
            load_subapp(i, app, AppContext(app=app, config=config))
        except SubAppLoadError as exc:
            problems.append(str(exc))
    return problems
