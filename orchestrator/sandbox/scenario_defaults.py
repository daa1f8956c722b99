"""The shipped sandbox config that every scenario starts from (before its overrides)."""

from __future__ import annotations

import copy
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config" / "orchestrator.toml"


@cache
def _shipped() -> dict[str, Any]:
    return tomllib.loads(SHIPPED_CONFIG.read_text(encoding="utf-8"))


def shipped_config_data() -> dict[str, Any]:
    return copy.deepcopy(_shipped())
