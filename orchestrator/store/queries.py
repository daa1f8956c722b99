"""Named SQL queries loaded from `sql/queries.sql`; no SQL strings scattered through Python."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    text = (resources.files("orchestrator.store") / "sql" / "queries.sql").read_text("utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def q(name: str) -> str:
    try:
        return _load()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in sql/queries.sql") from None
