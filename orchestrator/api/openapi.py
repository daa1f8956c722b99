"""The OpenAPI document of /api/v1 (`openapi.yaml` beside this module), served as JSON at
/api/v1/openapi.json. Tests check it against the routes and fuzz the API from it."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml
from aiohttp import web


@cache
def document() -> dict[str, Any]:
    text = (resources.files("orchestrator.api") / "openapi.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


async def serve(_request: web.Request) -> web.Response:
    return web.json_response(document())
