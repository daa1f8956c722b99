"""Table sizes over time during a soak: whether retention keeps the database bounded.

Every `interval` seconds, on the clock of `procs.Meter` (seconds since its start, like the
RSS series), one connection of our own counts the rows of `events`, `outbox` and `messages`
(count(*): exact, a few hundred ms at most on a soak's tables) and reads the total size
(heap + indexes + TOAST) of `events` and `outbox`. Its queries run on PostgreSQL's core, so
they are in the scenario's db CPU; `query_seconds` says how much of it.

Retention (`[service] retention`) prunes processed events and done outbox rows older than
the retention every 10 s, so those two tables should level off at about rate x (retention +
10 s) rows. The transcript (`messages`) is not subject to `[service] retention`: it is kept
per the business's retention setting (the service itself deletes none of it), so it grows
with every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import asyncpg

QUERY = """
SELECT (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM outbox) AS outbox,
       (SELECT count(*) FROM messages) AS messages,
       pg_total_relation_size('events') AS events_bytes,
       pg_total_relation_size('outbox') AS outbox_bytes,
       pg_database_size(current_database()) AS database_bytes
"""


class TableSampler:
    """Samples the scenario's database every `interval` s between start() and stop()."""

    def __init__(self, database_url: str, began: float, interval: float = 10.0) -> None:
        self.url = database_url
        self.began = began  # perf_counter() of the Meter's start: the RSS series' clock
        self.interval = interval
        self.series: list[dict[str, Any]] = []
        self.errors = 0
        self.query_seconds = 0.0
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    async def _sample(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.url)
        t0 = time.perf_counter()
        row = await self._conn.fetchrow(QUERY)
        self.query_seconds += time.perf_counter() - t0
        assert row is not None
        mb = 1024 * 1024
        self.series.append(
            {
                "t": round(t0 - self.began, 1),
                "events": row["events"],
                "outbox": row["outbox"],
                "messages": row["messages"],
                "events_mb": round(row["events_bytes"] / mb, 1),
                "outbox_mb": round(row["outbox_bytes"] / mb, 1),
                "database_mb": round(row["database_bytes"] / mb, 1),
            }
        )

    async def _run(self) -> None:
        next_at = self.began
        while True:
            try:
                await self._sample()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                self.errors += 1
            next_at += self.interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, Any]:
        """One last sample (after the drain), then the series and what sampling cost."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self._sample()
        if self._conn is not None:
            with contextlib.suppress(OSError, asyncpg.InterfaceError):
                await self._conn.close()
            self._conn = None
        return {
            "interval_s": self.interval,
            "query_seconds": round(self.query_seconds, 2),
            "errors": self.errors,
            "series": self.series,
        }


def _at(series: list[Any], t: float, key: Any) -> Any:
    """The sample nearest to time t."""
    return min(series, key=lambda p: abs(key(p) - t)) if series else None


def soak_summary(entry: dict[str, Any]) -> list[str]:
    """A few lines: RSS and table sizes at warm-up end, mid-load, load end and after the
    drain, so a reader sees flat or growing without reading the series."""
    u = entry.get("usage", {})
    rss: list[list[float]] = [list(p) for p in u.get("service_rss_mb_over_time") or []]
    tables = (u.get("tables_over_time") or {}).get("series") or []
    points = entry.get("soak_points") or {}
    if not points or not (rss or tables):
        return []
    lines = [
        f"{entry['name']}: retention {entry.get('retention') or 'service default (3d)'}; "
        f"points (s since load start): " + ", ".join(f"{k} {v:.0f}" for k, v in points.items())
    ]
    head = (
        f"  {'point':<14} {'t s':>6} {'RSS MB':>7} {'events':>9} {'outbox':>9} "
        f"{'messages':>9} {'events MB':>9} {'outbox MB':>9} {'db MB':>7}"
    )
    lines.append(head)
    for name, t in points.items():
        r = _at(rss, t, lambda p: p[0])
        tb = _at(tables, t, lambda p: p["t"])
        t_shown = tb["t"] if tb else (r[0] if r else t)
        lines.append(
            f"  {name:<14} {t_shown:>6.0f} {(r[1] if r else float('nan')):>7.1f} "
            + (
                f"{tb['events']:>9,} {tb['outbox']:>9,} {tb['messages']:>9,} "
                f"{tb['events_mb']:>9.1f} {tb['outbox_mb']:>9.1f} {tb['database_mb']:>7.1f}"
                if tb
                else ""
            )
        )
    warm = points.get("warm-up end", 0.0)
    load_end = points.get("load end", float("inf"))
    after = [p for p in rss if warm <= p[0] <= load_end]
    tab_after = [p for p in tables if warm <= p["t"] <= load_end]
    if after:
        lines.append(
            f"  RSS between warm-up end and load end: min {min(p[1] for p in after):.1f} MB, "
            f"max {max(p[1] for p in after):.1f} MB"
        )
    if tab_after:
        lines.append(
            "  rows between warm-up end and load end (min-max): "
            + ", ".join(
                f"{k} {min(p[k] for p in tab_after):,}-{max(p[k] for p in tab_after):,}"
                for k in ("events", "outbox", "messages")
            )
            + "; MB: "
            + ", ".join(
                f"{k[:-3]} {min(p[k] for p in tab_after):.1f}-{max(p[k] for p in tab_after):.1f}"
                for k in ("events_mb", "outbox_mb")
            )
        )
    lines.append(
        "  events/outbox are pruned by [service] retention (every 10 s, rows older than the "
        "retention); the transcript (messages) is not: it is kept per the business's "
        "retention setting (the service deletes none of it), so it grows"
    )
    return lines
