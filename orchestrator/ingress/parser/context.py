"""Where a webhook item sits while it is parsed (`ItemContext`, which also notes every unusable
value it meets) and the `Malformed` signal for a known item that cannot be built.

Depends only on `values`; the item parsers (`messaging`, `changes`) build on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.ingress.events import EventSource
from orchestrator.ingress.parser.values import as_id, json_type, short

__all__ = ["ItemContext", "Malformed", "required_object"]


class Malformed(Exception):
    """A known item that cannot be turned into its event; becomes an UnknownEvent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class ItemContext:
    """Context of one item: where it sits, its entry's id/time, and the shared problem list.

    `obj` is the payload's `object`, `loc` the item's position (`entry[0].messaging[1]`) that
    prefixes every note, `account_ids` the business accounts the caller knows (may be empty).
    """

    obj: str
    source: EventSource
    loc: str
    entry_id: str | None
    entry_ms: int | None
    problems: list[str]
    account_ids: frozenset[str] = frozenset()

    def note(self, message: str, path: str = "") -> None:
        self.problems.append(f"{self.loc}{path}: {message}")

    def text(self, mapping: dict[str, Any], key: str, path: str) -> str | None:
        """A string field (numbers become strings); anything else is noted and ignored."""
        value = mapping.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.note(f"expected a string, got {json_type(value)}; ignored", f"{path}.{key}")
        return None

    def id(self, mapping: dict[str, Any], key: str, path: str) -> str | None:
        """An id field as a string; an unusable value is noted and ignored."""
        value = mapping.get(key)
        result = as_id(value)
        if result is None and value is not None:
            self.note(f"unusable id {short(value)}; ignored", f"{path}.{key}")
        return result

    def obj_at(self, mapping: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
        """An object field; anything else is noted and ignored."""
        value = mapping.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.note(f"expected an object, got {json_type(value)}; ignored", f"{path}.{key}")
        return None


def required_object(item: dict[str, Any], key: str) -> dict[str, Any]:
    """`item[key]` when it is an object; otherwise the item is `Malformed`."""
    value = item.get(key)
    if not isinstance(value, dict):
        raise Malformed(f"{key} is not an object (got {json_type(value)})")
    return value
