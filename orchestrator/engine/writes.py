"""The writes of one processing step, gathered in memory and committed in a few statements.

Deciding is pure and cheap; round trips are not. A worker step decides every claimed event of
many conversations, collecting here what must be written — conversation rows, transcript
lines, outbox rows, timers, event outcomes — then `flush` writes each kind with ONE statement
(arrays through `unnest`), inside the worker's transaction, so all of it commits together
with the events' "done" or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from orchestrator.engine.outbox_rows import OutboxRow
from orchestrator.jsontext import dumps
from orchestrator.store.queries import q


@dataclass(slots=True)
class TranscriptLine:
    conversation_id: int
    mid: str | None
    direction: str
    author: str
    purpose: str | None
    text: str | None
    attachments: Any
    created_at: datetime
    deleted_at: datetime | None = None
    outbox_id: int | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """Claim the lanes a flush writes for this process's dispatcher (migrations/0010):
    at most `limit` heads, none of a paused account, leased for `lease_s`."""

    now: Callable[[], datetime]  # the engine's clock: rows written are due from its now
    limit: int
    paused: list[str]
    lease_s: float


@dataclass(slots=True)
class Writes:
    conversations: dict[int, tuple[str, str | None, str]] = field(default_factory=dict)
    transcript: list[TranscriptLine] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    # (conversation, kind) → (due_at, generation) to set, or None to cancel; the last wins.
    timers: dict[tuple[int, str], tuple[datetime, int] | None] = field(default_factory=dict)
    finished: list[tuple[int, str, str | None, str | None, datetime]] = field(default_factory=list)
    # Set by the worker when a dispatcher of this process takes rows straight from the
    # flush; the heads claimed so far (handed over only once the transaction commits).
    claim: Claim | None = None
    claimed: list[Any] = field(default_factory=list)
    # Every (conversation, lane) a flush wrote a pending row to: those not among `claimed`
    # must be found by the dispatcher's claim query.
    lanes_written: set[tuple[int, str]] = field(default_factory=set)

    def conversation(self, cid: int, state: str, owner_app: str | None, view: Any) -> None:
        self.conversations[cid] = (state, owner_app, dumps(view))

    def finish(self, event_id: int, status: str, result: Any, error: str | None) -> None:
        result_json = None if result is None else dumps(result)
        self.finished.append((event_id, status, result_json, error, datetime.now(UTC)))

    def checkpoint(self) -> tuple[Any, ...]:
        """What has been gathered so far, to undo one event's part if deciding it fails."""
        return (
            dict(self.conversations),
            len(self.transcript),
            len(self.outbox),
            dict(self.timers),
            len(self.finished),
        )

    def rollback(self, cp: tuple[Any, ...]) -> None:
        conversations, n_transcript, n_outbox, timers, n_finished = cp
        self.conversations = conversations
        del self.transcript[n_transcript:]
        del self.outbox[n_outbox:]
        self.timers = timers
        del self.finished[n_finished:]

    def clear(self) -> None:
        self.conversations = {}
        self.transcript.clear()
        self.outbox.clear()
        self.timers = {}
        self.finished.clear()

    async def flush(self, conn: asyncpg.Connection) -> None:
        """Write everything gathered so far in one round trip (`orchestrator_apply_claim`:
        with `claim` set, the free heads of the lanes written are claimed in the same
        statement and added to `claimed`) and start over. A step may flush several times:
        before a statement that must see the transcript, e.g. an unsend's erase."""
        if not (
            self.conversations or self.transcript or self.outbox or self.timers or self.finished
        ):
            return
        cids = list(self.conversations)
        convs = [self.conversations[i] for i in cids]
        t, o, f = self.transcript, self.outbox, self.finished
        sets = [(k, v) for k, v in self.timers.items() if v is not None]
        cancels = [k for k, v in self.timers.items() if v is None]
        claim = self.claim
        limit = 0 if claim is None else max(0, claim.limit - len(self.claimed))
        rows = await conn.fetch(
            q("apply_claim"),
            cids,
            [v[0] for v in convs],
            [v[1] for v in convs],
            [v[2] for v in convs],
            [x.conversation_id for x in t],
            [x.mid for x in t],
            [x.direction for x in t],
            [x.author for x in t],
            [x.purpose for x in t],
            [x.text for x in t],
            [None if x.attachments is None else dumps(x.attachments) for x in t],
            [x.created_at for x in t],
            [x.deleted_at for x in t],
            [x.outbox_id for x in t],
            [r.id for r in o],
            [r.conversation_id for r in o],
            [r.account_id for r in o],
            [r.event_id for r in o],
            [r.kind for r in o],
            [r.app for r in o],
            [r.lane for r in o],
            [dumps(r.payload) for r in o],
            [r.status for r in o],
            [None if r.result is None else dumps(r.result) for r in o],
            [r.available_at for r in o],
            [r.last_error for r in o],
            [k[0] for k, _ in sets],
            [k[1] for k, _ in sets],
            [v[0] for _, v in sets],
            [v[1] for _, v in sets],
            [k[0] for k in cancels],
            [k[1] for k in cancels],
            [x[0] for x in f],
            [x[1] for x in f],
            [x[2] for x in f],
            [x[3] for x in f],
            [x[4] for x in f],
            claim.now() if claim else None,
            limit,
            claim.paused if claim else [],
            claim.lease_s if claim else 0.0,
        )
        self.claimed.extend(rows)
        self.lanes_written.update((r.conversation_id, r.lane) for r in o if r.status == "pending")
        self.clear()
