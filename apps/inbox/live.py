"""The live feed: PostgreSQL NOTIFY → server-sent events to every open inbox page.

One LISTEN connection per process, opened when the first page subscribes. The triggers of
migration 0004 NOTIFY `inbox_changes` with the changed conversation ids — but only while some
process has registered itself in `inbox_watchers` (a heartbeat), so a service nobody watches
pays no NOTIFY cost. Every process sees every change, whichever process (or worker) made it.
Pages refetch what changed; a lost notification is healed by the next one, by the stream's
periodic resync and by reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import structlog

from apps.inbox.queries import q

log = structlog.get_logger(__name__)
CHANNEL = "inbox_changes"
HEARTBEAT_S = 20.0  # the triggers treat a watcher as gone after a minute without a beat
CLIENT_QUEUE = 64


class Hub:
    def __init__(self) -> None:
        self.process = f"inbox-{uuid.uuid4().hex[:12]}"
        self._clients: set[asyncio.Queue[str]] = set()
        self._conn: asyncpg.Connection | None = None
        self._beat: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.closed = asyncio.Event()

    async def subscribe(self, database_url: str) -> asyncio.Queue[str]:
        queue: asyncio.Queue[str] = asyncio.Queue(CLIENT_QUEUE)
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                await self._start(database_url)
            self._clients.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str]) -> None:
        self._clients.discard(queue)

    async def _start(self, database_url: str) -> None:
        conn = await asyncpg.connect(database_url)
        await conn.add_listener(CHANNEL, self._on_notify)
        await conn.execute(q("watcher_beat"), self.process)
        self._conn = conn
        if self._beat is None or self._beat.done():
            self._beat = asyncio.create_task(self._heartbeat(), name="inbox-heartbeat")
        log.info("inbox_live_feed_started", process=self.process)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait(payload)
            except asyncio.QueueFull:
                # A slow page: replace its backlog by one "refresh everything".
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait("*")

    async def _heartbeat(self) -> None:
        while not self.closed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), HEARTBEAT_S)
            conn = self._conn
            if self.closed.is_set() or conn is None:
                return
            try:
                await conn.execute(q("watcher_beat"), self.process)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("inbox_live_feed_lost", reason=type(exc).__name__)
                with contextlib.suppress(Exception):
                    await conn.close()
                self._conn = None
                # Pages reconnect (EventSource does so by itself) and reopen the feed.
                for queue in list(self._clients):
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait("!reconnect")
                return

    async def close(self) -> None:
        self.closed.set()
        for queue in list(self._clients):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait("!closed")
        if self._beat is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._beat
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await self._conn.execute(q("watcher_gone"), self.process)
                await self._conn.close()
        self._conn = None
