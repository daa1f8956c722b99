"""Named SQL of the inbox, loaded from `sql/inbox.sql` (parameters always bound)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    text = (resources.files("apps.inbox") / "sql" / "inbox.sql").read_text("utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


def q(name: str) -> str:
    try:
        return _load()[name]
    except KeyError:
        raise KeyError(f"no query named {name!r} in apps/inbox/sql/inbox.sql") from None
