"""Typed application keys: every long-lived resource lives under one of these."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
import asyncpg
from aiohttp import web

from orchestrator.clock import Clock
from orchestrator.config import Config
from orchestrator.ops.metrics import Metrics
from orchestrator.store.intake import GroupCommit

if TYPE_CHECKING:
    from orchestrator.engine.runtime import Runtime

CONFIG = web.AppKey("config", Config)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
POOL = web.AppKey("pool", asyncpg.Pool)
DB_URL = web.AppKey("db_url", str)
HTTP = web.AppKey("http", aiohttp.ClientSession)
INTAKE = web.AppKey("intake", GroupCommit)  # webhook POSTs stored together under load
RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime")
