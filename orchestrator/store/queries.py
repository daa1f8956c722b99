"""Named SQL queries loaded from `sql/*.sql` (`queries.sql`, `intake.sql`); no SQL strings
scattered through Python. A name defined twice is an error."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    out: dict[str, str] = {}
    folder = resources.files("orchestrator.store") / "sql"
    for item in sorted(folder.iterdir(), key=lambda f: f.name):
        if not item.name.endswith(".sql"):
            continue
        parts = _NAME.split(item.read_text("utf-8"))
        for i in range(1, len(parts), 2):
            if parts[i] in out:
                raise RuntimeError(f"query {parts[i]!r} is defined twice (sql/{item.name})")
            out[parts[i]] = parts[i + 1].strip()
    return out


def q(name: str) -> str:
    try:
        return _load()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in sql/*.sql") from None
