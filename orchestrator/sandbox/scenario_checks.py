"""Expectation checks: each compares one `expect:` key with an `Observation` and returns every
difference it finds (an empty list when it holds). Hidden fields (tags, standby flags,
senders) are named explicitly, so the two sides of a difference never look alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import asyncpg

from orchestrator.sandbox.scenario_kinds import duration_seconds
from orchestrator.sandbox.scenario_observe import (
    Observation,
    delivery_name,
    delivery_type,
    graph_name,
    human_duration,
    sender_name,
    show_delivery,
    show_left,
    show_message,
)

Refs = Mapping[str, str]
Check = Callable[[Observation, Any, "CheckCtx"], Awaitable[list[str]]]


class CheckCtx:
    def __init__(self, pool: asyncpg.Pool, refs: Callable[[str], Awaitable[str]]) -> None:
        self.pool = pool
        self.resolve = refs


async def check_all(obs: Observation, expect: Mapping[str, Any], ctx: CheckCtx) -> list[str]:
    out: list[str] = []
    for key, wanted in expect.items():
        out += await CHECKS[key](obs, wanted, ctx)
    return out


def _same(key: str, wanted: Any, actual: Any, what: str | None = None) -> list[str]:
    return [] if wanted == actual else [f"{what or key}: expected {wanted!r}, actual {actual!r}"]


async def _state(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    return _same("state", wanted, obs.state)


async def _owner(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    return _same("owner", wanted, obs.owner, "owner (ours)")


async def _meta_owner(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    return _same("meta_owner", wanted, obs.meta_owner, "meta_owner (Meta's)")


async def _received_count(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    if len(obs.received) == wanted:
        return []
    shown = "".join(f"\n    {i}. {show_message(m)}" for i, m in enumerate(obs.received, 1))
    return [f"received_count: expected {wanted}, actual {len(obs.received)}{shown}"]


def _qr_matches(wanted: Any, actual: Mapping[str, Any]) -> bool:
    if isinstance(wanted, str):
        return actual.get("payload") == wanted
    return all(actual.get(k) == v for k, v in wanted.items())


def _att_matches(wanted: Any, actual: Mapping[str, Any]) -> bool:
    if isinstance(wanted, str):
        return actual.get("type") == wanted
    url = (
        (actual.get("payload") or {}).get("url")
        if isinstance(actual.get("payload"), dict)
        else None
    )
    return all((url if k == "url" else actual.get(k)) == v for k, v in wanted.items())


def _received_item(wanted: Any, msg: Mapping[str, Any]) -> list[str]:
    """The fields of one received message that differ, named."""
    text = msg.get("text")
    if isinstance(wanted, str):
        wanted = {"text": wanted}
    bad: list[str] = []
    if "text" in wanted and text != wanted["text"]:
        bad.append(f"text {wanted['text']!r} ≠ {text!r}")
    if "contains" in wanted and str(wanted["contains"]) not in (text or ""):
        bad.append(f"text should contain {wanted['contains']!r}, is {text!r}")
    if "tag" in wanted and msg.get("tag") != wanted["tag"]:
        bad.append(f"tag {wanted['tag'] or 'none'} ≠ {msg.get('tag') or 'none'}")
    if "messaging_type" in wanted and msg.get("messaging_type") != wanted["messaging_type"]:
        bad.append(f"messaging_type {wanted['messaging_type']} ≠ {msg.get('messaging_type')}")
    if "sender" in wanted and sender_name(dict(msg)) != wanted["sender"]:
        bad.append(f"sender {wanted['sender']} ≠ {sender_name(dict(msg))}")
    if "quick_replies" in wanted:
        got = list(msg.get("quick_replies") or [])
        want = list(wanted["quick_replies"])
        if len(got) != len(want) or not all(map(_qr_matches, want, got)):
            shown = [{k: q[k] for k in ("title", "payload") if k in q} for q in got]
            bad.append(f"quick replies {want} ≠ {shown}")
    if "attachments" in wanted:
        got_a = list(msg.get("attachments") or [])
        want_a = list(wanted["attachments"])
        if len(got_a) != len(want_a) or not all(map(_att_matches, want_a, got_a)):
            bad.append(f"attachments {want_a} ≠ {[a.get('type') for a in got_a]}")
    return bad


async def _received(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    got = obs.received
    out: list[str] = []
    if len(wanted) != len(got):
        out.append(f"received: expected {len(wanted)} message(s), actual {len(got)}")
    for i in range(max(len(wanted), len(got))):
        if i >= len(got):
            out.append(f"received #{i + 1}: expected {wanted[i]!r}, nothing received")
        elif i >= len(wanted):
            out.append(f"received #{i + 1}: not expected: {show_message(got[i])}")
        else:
            bad = _received_item(wanted[i], got[i])
            if bad:
                out.append(f"received #{i + 1}: " + "; ".join(bad)
                           + f"\n    actual: {show_message(got[i])}")  # fmt: skip
    return out


async def _graph(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    actual = [graph_name(c) for c in obs.graph if c.get("method") == "POST"]
    return [] if actual == list(wanted) else [f"graph: expected {list(wanted)}, actual {actual}"]


def _field(payload: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(payload, Mapping) or part not in payload:
            return _MISSING
        payload = payload[part]
    return payload


_MISSING = object()


def _delivery_item(wanted: Any, row: dict[str, Any]) -> list[str]:
    if isinstance(wanted, str):
        return [] if delivery_name(row) == wanted else [f"{wanted} ≠ {delivery_name(row)}"]
    bad: list[str] = []
    event = row["payload"].get("event") or {}
    if delivery_type(row) != wanted["type"]:
        bad.append(f"type {wanted['type']} ≠ {delivery_type(row)}")
    standby = bool(row["payload"].get("standby"))
    if "standby" in wanted and standby != wanted["standby"]:
        bad.append(f"standby {wanted['standby']} ≠ {standby}")
    for key in ("metadata", "reason", "text"):
        if key in wanted and event.get(key, _MISSING) != wanted[key]:
            got = event.get(key, _MISSING)
            bad.append(f"{key} {wanted[key]!r} ≠ {'(absent)' if got is _MISSING else repr(got)}")
    for path, value in (wanted.get("fields") or {}).items():
        got = _field(event, str(path))
        if got != value:
            bad.append(f"{path} {value!r} ≠ {'(absent)' if got is _MISSING else repr(got)}")
    return bad


async def _deliveries(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    out: list[str] = []
    for app, items in dict(wanted).items():
        rows = [r for r in obs.deliveries if r["app"] == app]
        items = list(items or [])
        shown = [delivery_name(r) for r in rows]
        if len(rows) != len(items):
            out.append(f"deliveries to {app}: expected {len(items)} ({items}), actual {shown}")
            continue
        for i, (w, r) in enumerate(zip(items, rows, strict=True), 1):
            bad = _delivery_item(w, r)
            if bad:
                out.append(f"deliveries to {app} #{i}: " + "; ".join(bad)
                           + f"\n    actual: {show_delivery(r)}")  # fmt: skip
    return out


async def _refused(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    if obs.act is None:
        return ["refused: this step is not an act"]
    actual = obs.act.refusal
    if actual == wanted:
        return []
    why = f" ({obs.act.message})" if obs.act.message else ""
    return [f"refused: expected {wanted!r}, actual {actual!r}{why}"]


async def _refusal_message(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    message = obs.act.message if obs.act else None
    if message and str(wanted) in message:
        return []
    return [f"refusal_message: expected it to contain {wanted!r}, actual {message!r}"]


async def _status(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    actual = obs.act.status if obs.act else None
    return _same("status", wanted, actual, "status (HTTP)")


async def _transcript_deleted(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    n = await ctx.pool.fetchval(
        "SELECT count(*) FROM messages WHERE deleted_at IS NOT NULL AND text IS NULL"
    )
    return _same("transcript_deleted", wanted, n, "transcript_deleted (tombstones)")


async def _transcript_count(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    out = []
    for direction, n in dict(wanted).items():
        stored = sum(1 for r in obs.transcript if r["direction"] == direction)
        if stored != n:
            out.append(f"transcript_count.{direction}: expected {n}, actual {stored}")
    return out


async def _transcript_in(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    got = [r["text"] for r in obs.transcript if r["direction"] == "in"]
    return _same("transcript_in", list(wanted), got)


async def _erased(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    out = []
    for ref in wanted:
        mid = await ctx.resolve(ref)
        row = await ctx.pool.fetchrow(
            "SELECT text, attachments, deleted_at FROM messages WHERE mid = $1", mid
        )
        events = await ctx.pool.fetch(
            "SELECT kind, erased FROM events"
            " WHERE mid = $1 AND kind IN ('message', 'message_edit')",
            mid,
        )
        if row is None:
            out.append(f"erased {ref}: no transcript row for that message")
            continue
        if row["text"] is not None or row["attachments"] is not None:
            out.append(f"erased {ref}: the transcript still holds its content ({row['text']!r})")
        if row["deleted_at"] is None:
            out.append(f"erased {ref}: the transcript row is not marked deleted")
        kept = [e["kind"] for e in events if not e["erased"]]
        if kept:
            out.append(f"erased {ref}: stored webhook(s) still hold the content: {kept}")
    return out


async def _not_stored(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    out = []
    for text in wanted:
        like = f"%{text}%"
        where = {
            "transcript": await ctx.pool.fetchval(
                "SELECT count(*) FROM messages WHERE text LIKE $1 OR attachments::text LIKE $1",
                like,
            ),
            "events": await ctx.pool.fetchval(
                "SELECT count(*) FROM events WHERE payload::text LIKE $1", like
            ),
            "outbox": await ctx.pool.fetchval(
                "SELECT count(*) FROM outbox WHERE payload::text LIKE $1", like
            ),
        }
        found = [f"{k} ({n})" for k, n in where.items() if n]
        if found:
            out.append(f"not_stored: {text!r} is still stored in {', '.join(found)}")
    return out


async def _dead_letters(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    shown = [f"{d['app']} {d['kind']}: {d['last_error']}" for d in obs.dead]
    if isinstance(wanted, int):
        if len(obs.dead) == wanted:
            return []
        return [f"dead_letters: expected {wanted}, actual {len(obs.dead)} {shown}"]
    out = []
    if len(wanted) != len(obs.dead):
        return [f"dead_letters: expected {len(wanted)}, actual {len(obs.dead)} {shown}"]
    for i, (w, d) in enumerate(zip(wanted, obs.dead, strict=True), 1):
        bad = [f"{k} {w[k]!r} ≠ {d[k]!r}" for k in ("app", "kind") if k in w and d[k] != w[k]]
        if "reason" in w and str(w["reason"]) not in str(d["last_error"]):
            bad.append(f"reason should contain {w['reason']!r}, is {d['last_error']!r}")
        if bad:
            out.append(f"dead_letters #{i}: " + "; ".join(bad))
    return out


async def _timers(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    out = []
    for kind, left in dict(wanted).items():
        due = obs.timers.get(kind)
        actual = None if due is None else (due - obs.now).total_seconds()
        want = None if left is None else duration_seconds(left)
        if want != actual:
            shown = "not armed" if actual is None else f"due in {human_duration(actual)}"
            wshown = "not armed" if want is None else f"due in {human_duration(want)}"
            out.append(f"timers.{kind}: expected {wshown}, actual {shown}")
    return out


async def _window(obs: Observation, wanted: Any, ctx: CheckCtx) -> list[str]:
    automated, human = obs.window_left()
    out = []
    for key, actual in (("automated", automated), ("human", human)):
        if key not in wanted:
            continue
        want = wanted[key]
        if want == "closed":
            ok = actual is None or actual < 0
        else:
            ok = actual is not None and actual == duration_seconds(want)
        if not ok:
            shown = "closed" if want == "closed" else show_left(duration_seconds(want))
            out.append(f"window.{key}: expected {shown}, actual {show_left(actual)}")
    return out


CHECKS: dict[str, Check] = {
    "state": _state,
    "owner": _owner,
    "meta_owner": _meta_owner,
    "received": _received,
    "received_count": _received_count,
    "graph": _graph,
    "deliveries": _deliveries,
    "refused": _refused,
    "refusal_message": _refusal_message,
    "status": _status,
    "transcript_deleted": _transcript_deleted,
    "transcript_count": _transcript_count,
    "transcript_in": _transcript_in,
    "erased": _erased,
    "not_stored": _not_stored,
    "dead_letters": _dead_letters,
    "timers": _timers,
    "window": _window,
}


def unchecked(expect_names: Sequence[str]) -> list[str]:
    """Expectation names without a check (a schema/runner mismatch; tested)."""
    return [n for n in expect_names if n not in CHECKS]
