"""Housekeeping in every process: expired leases, retention, and the queue gauges.

- Leases: rows whose dispatcher stopped refreshing are returned (or dead-lettered at the
  attempt limit) every `REAP_EVERY_S`; with `LEASE_S` of 15 s a dead process holds a
  conversation for at most ~20 s.
- Retention: processed events and done outbox rows older than `service.retention` are
  deleted in bounded batches (dead letters and the events they point to stay), so tables and
  indexes stay the size of the recent past instead of growing forever.
Several processes may run this at once: every statement is safe to repeat.
"""

from __future__ import annotations

import asyncio

import structlog

from orchestrator.engine.dispatcher import Dispatcher
from orchestrator.engine.loop import STORE_ERRORS, wait_any
from orchestrator.engine.runtime import Runtime
from orchestrator.store.queries import q

log = structlog.get_logger(__name__)
REAP_EVERY_S = 5.0
# Often, so each run deletes a few seconds' worth: a minute's worth at a time (tens of
# thousands of rows at a few hundred messages/s) took the shared core for a moment.
PRUNE_EVERY_S = 10.0
PRUNE_BATCH = 5000


async def prune(rt: Runtime, retention_s: float) -> tuple[int, int]:
    """Delete what retention allows, batch by batch; (outbox rows, events) deleted."""
    total_outbox = total_events = 0
    while True:
        row = await rt.pool.fetchrow(q("prune"), retention_s, PRUNE_BATCH)
        total_outbox += row["outbox_rows"]
        total_events += row["event_rows"]
        if row["outbox_rows"] < PRUNE_BATCH and row["event_rows"] < PRUNE_BATCH:
            break
    if total_outbox or total_events:
        log.info("retention_pruned", outbox_rows=total_outbox, events=total_events)
    return total_outbox, total_events


async def maintain(
    rt: Runtime, dispatcher: Dispatcher, stop: asyncio.Event, *, retention_s: float
) -> None:
    loop = asyncio.get_running_loop()
    next_prune = loop.time()
    while not stop.is_set():
        try:
            await dispatcher.reap()
            if loop.time() >= next_prune:
                next_prune = loop.time() + PRUNE_EVERY_S
                await prune(rt, retention_s)
        except STORE_ERRORS as exc:
            log.warning("maintenance_store_error", error=str(exc))
        await wait_any(stop, None, REAP_EVERY_S)
