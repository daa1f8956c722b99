"""What happened during one scenario step, read from the sandbox only through its public
surfaces: the simulator's control API (the customer's phone, Meta's Graph log) and our
database rows (conversation, outbox, transcript, timers, events). Never engine internals.

`Marks` remembers where the step started; `observe` gathers an `Observation` once per step,
which both the expectation checks and the failure snapshot read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.sandbox.runner import Sandbox
from orchestrator.sandbox.scenario_schema import FOREIGN_INBOXES
from state_machines import ConversationView, window_deadlines

_INBOX_NAMES = {v: k for k, v in FOREIGN_INBOXES.items()}


@dataclass
class Marks:
    graph_seq: int = 0
    outbox_id: int = 0
    message_id: int = 0
    event_id: int = 0
    received: int = 0


@dataclass
class ActOutcome:
    """What an `act` step's action came back with."""

    status: int | None = None  # HTTP status (REST API apps only)
    refusal: str | None = None
    message: str | None = None
    answer: Any = None  # the API's JSON answer, or the stored decision


@dataclass
class Observation:
    now: datetime
    state: str | None
    owner: str | None
    view: dict[str, Any]
    meta_owner: str | None
    meta_expires_at: float | None
    meta_window_open: bool
    meta_human_window_open: bool
    received: list[dict[str, Any]]
    graph: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    timers: dict[str, datetime]
    dead: list[dict[str, Any]]
    transcript: list[dict[str, Any]]
    act: ActOutcome | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def window_left(self) -> tuple[float | None, float | None]:
        """Seconds left for automated and human-agent messages (negative: closed)."""
        automated, human = window_deadlines(ConversationView.from_json(self.view or {}))
        now = self.now
        return (
            (automated - now).total_seconds() if automated else None,
            (human - now).total_seconds() if human else None,
        )


async def mark(sb: Sandbox, customer: str) -> Marks:
    log = await sb.sim("GET", "/sim/log/graph")
    view = await sb.sim("GET", f"/sim/customers/{customer}")
    pool = sb.pool
    return Marks(
        graph_seq=max((c["seq"] for c in log["data"]), default=0),
        outbox_id=await pool.fetchval("SELECT coalesce(max(id), 0) FROM outbox"),
        message_id=await pool.fetchval("SELECT coalesce(max(id), 0) FROM messages"),
        event_id=await pool.fetchval("SELECT coalesce(max(id), 0) FROM events"),
        received=len(view["received"]),
    )


async def observe(sb: Sandbox, customer: str, marks: Marks, act: ActOutcome | None) -> Observation:
    pool = sb.pool
    row = await sb.conversation(customer)
    view = await sb.sim("GET", f"/sim/customers/{customer}")
    log = await sb.sim("GET", f"/sim/log/graph?since={marks.graph_seq}")
    cid = row["id"] if row else None
    deliveries = await pool.fetch(
        "SELECT id, app, status, payload, result FROM outbox WHERE kind = 'deliver' AND id > $1"
        " ORDER BY id",
        marks.outbox_id,
    )
    timers = await pool.fetch("SELECT kind, due_at FROM timers WHERE conversation_id = $1", cid)
    dead = await pool.fetch(
        "SELECT id, kind, app, last_error FROM outbox WHERE status = 'dead' ORDER BY id"
    )
    transcript = await pool.fetch(
        "SELECT direction, author, text, mid FROM messages WHERE id > $1 ORDER BY created_at, id",
        marks.message_id,
    )
    events = await pool.fetch(
        "SELECT id, kind, result FROM events WHERE id > $1 AND status = 'done' ORDER BY id",
        marks.event_id,
    )
    return Observation(
        now=sb.clock.now(),
        state=row["state"] if row else None,
        owner=row["owner_app"] if row else None,
        view=_json(row["view"]) if row else {},
        meta_owner=view.get("owner_app_name"),
        meta_expires_at=view.get("owner_expires_at"),
        meta_window_open=bool(view.get("window_open")),
        meta_human_window_open=bool(view.get("human_agent_window_open")),
        received=list(view["received"][marks.received :]),
        graph=[c for c in log["data"] if c["seq"] > marks.graph_seq],
        deliveries=[
            {**dict(r), "payload": _json(r["payload"]), "result": _json(r["result"]) or {}}
            for r in deliveries
        ],
        timers={r["kind"]: r["due_at"] for r in timers},
        dead=[dict(r) for r in dead],
        transcript=[dict(r) for r in transcript],
        act=act,
        events=[{**dict(r), "result": _json(r["result"]) or {}} for r in events],
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# -- how things read in a difference or a snapshot ----------------------------------------


def sender_name(msg: dict[str, Any]) -> str | None:
    name = msg.get("app_name")
    return _INBOX_NAMES.get(name, name) if name else None


def show_message(msg: dict[str, Any]) -> str:
    """A received message with its hidden fields spelled out."""
    parts = [f"from {sender_name(msg) or '?'}: {msg.get('text')!r}"]
    parts.append(f"tag {msg.get('tag') or 'none'}")
    if msg.get("messaging_type"):
        parts.append(f"type {msg['messaging_type']}")
    qrs = msg.get("quick_replies") or []
    if qrs:
        parts.append("quick replies " + ", ".join(_qr(q) for q in qrs))
    atts = msg.get("attachments") or []
    if atts:
        parts.append("attachments " + ", ".join(str(a.get("type")) for a in atts))
    if msg.get("deleted"):
        parts.append("unsent")
    return " · ".join(parts)


def _qr(q: dict[str, Any]) -> str:
    title, payload = q.get("title"), q.get("payload")
    return f"{title!r}→{payload}" if title and payload else str(payload or title)


def graph_name(call: dict[str, Any]) -> str:
    return f"{call.get('app')} {str(call.get('path', '')).rstrip('/').rsplit('/', 1)[-1]}"


def show_graph(call: dict[str, Any]) -> str:
    out = f"{call.get('method')} {graph_name(call)} → {call.get('status')}"
    if call.get("error_code") is not None:
        out += f" (error {call['error_code']}/{call.get('error_subcode')})"
    return out


def delivery_type(row: dict[str, Any]) -> str:
    event = row["payload"].get("event") or {}
    return str(event.get("type") or event.get("kind"))


def delivery_name(row: dict[str, Any]) -> str:
    return ("standby:" if row["payload"].get("standby") else "") + delivery_type(row)


def show_delivery(row: dict[str, Any]) -> str:
    event = row["payload"].get("event") or {}
    extra = [
        f"{k}={event[k]!r}" for k in ("metadata", "reason", "to_app", "from_app") if k in event
    ]
    standby = "standby" if row["payload"].get("standby") else "messaging"
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"{row['app']}: {delivery_type(row)} [{standby}]{tail}"


def show_left(seconds: float | None) -> str:
    if seconds is None:
        return "never opened"
    if seconds < 0:
        return f"closed {human_duration(-seconds)} ago"
    return f"{human_duration(seconds)} left"


def human_duration(seconds: float) -> str:
    s = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            parts.append(f"{s // size}{unit}")
            s %= size
    if s or not parts:
        parts.append(f"{s}s")
    return "".join(parts)


def snapshot(obs: Observation) -> list[str]:
    """The state of everything after a failing step, for the reader of the failure."""
    lines = [
        f"state {obs.state}, our owner {obs.owner or 'none (idle)'}, "
        f"Meta's owner {obs.meta_owner or 'none (idle)'}"
    ]
    if obs.act is not None:
        a = obs.act
        status = f"HTTP {a.status}, " if a.status is not None else ""
        if a.refusal:
            lines.append(f"action: {status}refused {a.refusal}: {a.message}")
        else:
            lines.append(f"action: {status}accepted")
        if a.answer is not None:
            lines.append(f"  answer: {json.dumps(a.answer, ensure_ascii=False, default=str)}")
    lines.append(f"received ({len(obs.received)}):")
    lines += [f"  {i}. {show_message(m)}" for i, m in enumerate(obs.received, 1)]
    lines.append(f"Graph calls ({len(obs.graph)}):")
    lines += [f"  {show_graph(c)}" for c in obs.graph]
    lines.append(f"deliveries ({len(obs.deliveries)}):")
    lines += [f"  {show_delivery(d)}" for d in obs.deliveries]
    now = obs.now
    timers = ", ".join(
        f"{k} in {human_duration((due - now).total_seconds())}"
        for k, due in sorted(obs.timers.items())
    )
    lines.append(f"timers: {timers or 'none armed'}")
    automated, human = obs.window_left()
    lines.append(f"window: automated {show_left(automated)}, human agent {show_left(human)}")
    if obs.dead:
        lines.append(f"dead letters ({len(obs.dead)}):")
        lines += [f"  {d['app']} {d['kind']}: {d['last_error']}" for d in obs.dead]
    return lines
