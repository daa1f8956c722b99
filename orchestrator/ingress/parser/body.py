"""Webhook POST body → typed events (docs/platform.md 2): the walk over the top level, the
entries and their items. Pure: no I/O, no logging, no clock.

Every entry and every item of `messaging[]`, `standby[]` and `changes[]` is read (Meta batches).
Whatever is not understood becomes an `UnknownEvent` plus a line in `problems` naming where it
was; the parser never raises on a decoded payload and never drops an item silently.

The top of the parser: it hands each item to `messaging` or `changes`, which never call back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from orchestrator.ingress.decode import load_json
from orchestrator.ingress.events import Event, EventSource
from orchestrator.ingress.parser.changes import parse_change
from orchestrator.ingress.parser.context import ItemContext
from orchestrator.ingress.parser.messaging import parse_messaging_item
from orchestrator.ingress.parser.unknown import unknown_event
from orchestrator.ingress.parser.values import as_id, as_ms, json_type, key_list, short

__all__ = ["KNOWN_OBJECTS", "ParsedBody", "parse_body", "parse_payload"]

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


def parse_body(body: bytes, *, account_ids: Collection[str] = ()) -> ParsedBody:
    """Decode a webhook POST body and parse it; invalid JSON raises `MalformedJSON`."""
    return parse_payload(load_json(body), account_ids=account_ids)


def parse_payload(payload: Any, *, account_ids: Collection[str] = ()) -> ParsedBody:
    """Turn a decoded webhook body into events; never raises.

    `account_ids` are the business accounts (Instagram account or Page ids) the caller knows:
    with the entry id they tell which side of an item is the business (self messaging, 2.9).
    """
    if not isinstance(payload, dict):
        problem = f"top level: expected an object with an entry array, got {json_type(payload)}"
        return ParsedBody(problems=(problem,), shape_ok=False)
    entries = payload.get("entry")
    if not isinstance(entries, list):
        problem = (
            f"entry: expected an array, got {json_type(entries)}"
            if "entry" in payload
            else f"top level: no entry array (keys: {key_list(payload)})"
        )
        return ParsedBody(problems=(problem,), shape_ok=False)
    problems: list[str] = []
    obj = payload.get("object")
    obj_name = obj if isinstance(obj, str) else ""
    if obj_name not in KNOWN_OBJECTS:
        problems.append(
            f"object: expected 'instagram' or 'page', got {short(obj)}; items parsed anyway"
        )
    if not entries:
        problems.append("entry: empty array, no events")
    known = frozenset(account_ids)
    events: list[Event] = []
    for index, entry in enumerate(entries):
        events.extend(_parse_entry(obj_name, index, entry, problems, known))
    return ParsedBody(events=tuple(events), problems=tuple(problems), shape_ok=True)


def _parse_entry(
    obj: str, index: int, entry: Any, problems: list[str], known: frozenset[str]
) -> list[Event]:
    loc = f"entry[{index}]"
    if not isinstance(entry, dict):
        problems.append(f"{loc}: expected an object, got {json_type(entry)}; skipped")
        return []
    entry_id = as_id(entry.get("id"))
    entry_ms = as_ms(entry.get("time"))
    if entry_ms is None and entry.get("time") is not None:
        problems.append(f"{loc}.time: unusable time {short(entry['time'])}; ignored")
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
            problems.append(f"{loc}.{source}: expected an array, got {json_type(items)}")
            continue
        for j, item in enumerate(items):
            seen_items = True
            where = f"{loc}.{source}[{j}]"
            ctx = ItemContext(obj, source, where, entry_id, entry_ms, problems, known)
            events.extend(_parse_item(ctx, item))
    if "field" in entry or "value" in entry:
        # IG Login's example puts one change directly under the entry (docs/platform.md 2.11).
        seen_items = True
        ctx = ItemContext(obj, EventSource.CHANGES, loc, entry_id, entry_ms, problems, known)
        events.extend(_parse_item(ctx, {"field": entry.get("field"), "value": entry.get("value")}))
    if not seen_items:
        problems.append(f"{loc}: no messaging, standby or changes items (keys: {key_list(entry)})")
    return events


def _parse_item(ctx: ItemContext, item: Any) -> list[Event]:
    if not isinstance(item, dict):
        ctx.note(f"expected an object, got {json_type(item)}; skipped")
        return []
    try:
        if ctx.source == EventSource.CHANGES:
            return parse_change(ctx, item)
        return parse_messaging_item(ctx, item)
    except Exception as exc:  # a parser bug must cost one item, never the whole batch
        return [unknown_event(ctx, item, f"parser error: {type(exc).__name__}: {exc}")]
