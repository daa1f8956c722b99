"""Sub-apps that also serve web pages (the built-in agent inbox) are mounted here.

A handler class named by an app's `handler` may define `pages(app_config, config, service)`
returning `(prefix, web.Application)`; that application is mounted under the prefix. It reaches
the service's resources (pool, clock, runtime) through `request.config_dict`, and at start-up
through `service` (whose resources are set up before the mounted application starts). The
class is found by dotted path, as the engine loads handlers: this package never imports `apps`.
"""

from __future__ import annotations

import importlib
from typing import Any

from aiohttp import web

from orchestrator.config import Config
from orchestrator.errors import SubAppLoadError


def mount_pages(app: web.Application, config: Config) -> None:
    for i, app_config in enumerate(config.apps):
        if not app_config.handler or app_config.url:
            continue
        module_name, _, attr = app_config.handler.partition(":")
        try:
            target: Any = getattr(importlib.import_module(module_name), attr, None)
        except ImportError as exc:
            raise SubAppLoadError(
                f"apps[{i}].handler: cannot import module {module_name!r}: {exc}"
            ) from exc
        build = getattr(target, "pages", None)
        if callable(build):
            prefix, pages = build(app_config, config, app)
            app.add_subapp(prefix, pages)
