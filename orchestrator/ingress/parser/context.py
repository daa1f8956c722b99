"""Where a webhook item sits while it is parsed (`_Where`, which also notes every unusable
value), the `_Malformed` signal for a known item that cannot be built, and the `UnknownEvent`
that keeps whatever was not understood."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from orchestrator.ingress.events import EventKind, EventSource, UnknownEvent
from orchestrator.ingress.parser.values import _canonical, _id, _json_type, _ms, _obj_id, _short


class _Malformed(Exception):
    """A known item that cannot be turned into its event; becomes an UnknownEvent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class _Where:
    """Context of one item: where it sits, its entry's id/time, and the shared problem list."""

    obj: str
    source: EventSource
    loc: str
    entry_id: str | None
    entry_ms: int | None
    problems: list[str]

    def note(self, message: str, path: str = "") -> None:
        self.problems.append(f"{self.loc}{path}: {message}")

    def text(self, mapping: dict[str, Any], key: str, path: str) -> str | None:
        value = mapping.get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self.note(f"expected a string, got {_json_type(value)}; ignored", f"{path}.{key}")
        return None

    def id(self, mapping: dict[str, Any], key: str, path: str) -> str | None:
        value = mapping.get(key)
        result = _id(value)
        if result is None and value is not None:
            self.note(f"unusable id {_short(value)}; ignored", f"{path}.{key}")
        return result

    def obj_at(self, mapping: dict[str, Any], key: str, path: str) -> dict[str, Any] | None:
        value = mapping.get(key)
        if value is None or isinstance(value, dict):
            return value
        self.note(f"expected an object, got {_json_type(value)}; ignored", f"{path}.{key}")
        return None


def _required_obj(item: dict[str, Any], key: str) -> dict[str, Any]:
    value = item.get(key)
    if not isinstance(value, dict):
        raise _Malformed(f"{key} is not an object (got {_json_type(value)})")
    return value


def _unknown(w: _Where, raw: dict[str, Any], reason: str) -> UnknownEvent:
    """Keep what was not understood, with a best-effort account/customer/time and a stable key.

    The key hashes the item with its location kind; `standby` counts as `messaging` so that a
    redelivery through another app's standby gets the same key.
    """
    w.note(reason)
    if w.source == EventSource.CHANGES:
        value = raw.get("value")
        value = value if isinstance(value, dict) else {}
        account = w.entry_id or ""
        customer = _obj_id(value.get("from"))
        ms = _ms(value.get("timestamp"))
        location = "changes"
    else:
        sender, recipient = _obj_id(raw.get("sender")), _obj_id(raw.get("recipient"))
        account = w.entry_id or recipient or sender or ""
        customer = next((i for i in (sender, recipient) if i and i != account), None)
        ms = _ms(raw.get("timestamp"))
        location = "messaging"
    if ms is None:
        ms = w.entry_ms if w.entry_ms is not None else 0
    digest = hashlib.sha256(_canonical([location, raw]).encode("ascii")).hexdigest()
    return UnknownEvent(
        kind=EventKind.UNKNOWN,
        object=w.obj,
        source=w.source,
        account_id=account,
        customer_id=customer,
        timestamp_ms=ms,
        dedup_key=f"unknown:{digest}",
        raw=raw,
        reason=reason,
    )
