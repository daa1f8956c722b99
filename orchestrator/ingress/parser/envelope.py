"""Webhook POST body → typed events (docs/platform.md 2). Pure: no I/O, no logging, no clock.

Every entry and every item of `messaging[]`, `standby[]` and `changes[]` is read (Meta batches).
Whatever is not understood becomes an `UnknownEvent` plus a line in `problems` naming where it
was; the parser never raises on a decoded payload and never drops an item silently.

This module walks the body (top level, entries, items); the pieces live in `parse_json`
(decoding), `parse_values` (coercions), `parse_context` (item context, unknown items),
`parse_messaging` (`messaging[]`/`standby[]`) and `parse_changes` (`changes[]`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.ingress.decode import MalformedJSON, _load_json
from orchestrator.ingress.events import Event, EventSource
from orchestrator.ingress.parser.changes import _change
from orchestrator.ingress.parser.context import _Malformed, _unknown, _Where
from orchestrator.ingress.parser.messaging import _messaging_item
from orchestrator.ingress.parser.values import _id, _json_type, _keys, _ms, _short

__all__ = ["KNOWN_OBJECTS", "MalformedJSON", "ParsedBody", "parse_body", "parse_payload"]

KNOWN_OBJECTS = frozenset({"instagram", "page"})


@dataclass(frozen=True, slots=True)
class ParsedBody:
    """The events of one POST, in payload order, and everything odd found on the way.

    `shape_ok` is False when the top level is not an object with an `entry` list; then there
    are no events and `problems` says why.
    """

    events: tuple[Event, ...] = ()
    problems: tuple[str, ...] = ()
    shape_ok: bool = True


def parse_body(body: bytes) -> ParsedBody:
    """Decode a webhook POST body and parse it; invalid JSON raises `MalformedJSON`."""
    return parse_payload(_load_json(body))


def _parse_item(w: _Where, item: Any) -> list[Event]:
    if not isinstance(item, dict):
        w.note(f"expected an object, got {_json_type(item)}; skipped")
        return []
    try:
        if w.source == EventSource.CHANGES:
            try:
                return _change(w, item)
            except _Malformed as exc:
                return [_unknown(w, item, exc.reason)]
        return _messaging_item(w, item)
    except Exception as exc:  # a parser bug must cost one item, never the whole batch
        return [_unknown(w, item, f"parser error: {type(exc).__name__}: {exc}")]


def _parse_entry(obj: str, index: int, entry: Any, problems: list[str]) -> list[Event]:
    loc = f"entry[{index}]"
    if not isinstance(entry, dict):
        problems.append(f"{loc}: expected an object, got {_json_type(entry)}; skipped")
        return []
    entry_id = _id(entry.get("id"))
    entry_ms = _ms(entry.get("time"))
    if entry_ms is None and entry.get("time") is not None:
        problems.append(f"{loc}.time: unusable time {_short(entry['time'])}; ignored")
    events: list[Event] = []
    seen_items = False
    for source in (EventSource.MESSAGING, EventSource.STANDBY, EventSource.CHANGES):
        if source.value not in entry:
            continue
        items = entry[source.value]
        if isinstance(items, dict):
            problems.append(f"{loc}.{source}: expected an array, got an object; read as one item")
            items = [items]
        if not isinstance(items, list):
            problems.append(f"{loc}.{source}: expected an array, got {_json_type(items)}")
            continue
        for j, item in enumerate(items):
            seen_items = True
            w = _Where(obj, source, f"{loc}.{source}[{j}]", entry_id, entry_ms, problems)
            events.extend(_parse_item(w, item))
    if "field" in entry or "value" in entry:
        # IG Login's example puts one change directly under the entry (docs/platform.md 2.11).
        seen_items = True
        w = _Where(obj, EventSource.CHANGES, loc, entry_id, entry_ms, problems)
        events.extend(_parse_item(w, {"field": entry.get("field"), "value": entry.get("value")}))
    if not seen_items:
        problems.append(f"{loc}: no messaging, standby or changes items (keys: {_keys(entry)})")
    return events


def parse_payload(payload: Any) -> ParsedBody:
    """Turn a decoded webhook body into events; never raises."""
    if not isinstance(payload, dict):
        problem = f"top level: expected an object with an entry array, got {_json_type(payload)}"
        return ParsedBody(problems=(problem,), shape_ok=False)
    entries = payload.get("entry")
    if not isinstance(entries, list):
        problem = (
            f"entry: expected an array, got {_json_type(entries)}"
            if "entry" in payload
            else f"top level: no entry array (keys: {_keys(payload)})"
        )
        return ParsedBody(problems=(problem,), shape_ok=False)
    problems: list[str] = []
    obj = payload.get("object")
    obj_name = obj if isinstance(obj, str) else ""
    if obj_name not in KNOWN_OBJECTS:
        problems.append(
            f"object: expected 'instagram' or 'page', got {_short(obj)}; items parsed anyway"
        )
    if not entries:
        problems.append("entry: empty array, no events")
    events: list[Event] = []
    for index, entry in enumerate(entries):
        events.extend(_parse_entry(obj_name, index, entry, problems))
    return ParsedBody(events=tuple(events), problems=tuple(problems), shape_ok=True)
