"""The load generator: signed Instagram webhooks over many conversations, and the ledger
that matches each reply reaching the Graph stand-in to the POST that caused it.

Every customer message says `bench <conversation>:<sequence> <unique id>`; the echo bot
answers with the same text, so a reply names its message. Loads are bounded in count and
time, and only 127.0.0.1 is contacted.

- closed loop: N customers in flight; each waits for its completion (the reply at the
  stand-in, or the 200 for the baseline, which sends nothing) before writing again;
- open loop: messages at a fixed rate whatever the service does (latency counted from the
  scheduled start, so a client falling behind cannot hide a slow server);
- burst: one POST of many items on a few conversations while an open loop runs on others.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import aiohttp

from orchestrator.ingress.signature import sign

TEXT = re.compile(r"^bench (\d+):(\d+) ([0-9a-f]{16})$")
Completion = Literal["reply", "ack"]


def message_text(conv: int, seq: int, uid: str) -> str:
    return f"bench {conv}:{seq} {uid}"


def igsid(prefix: str, conv: int) -> str:
    """A customer's Instagram-scoped id: digits, unique per run and conversation."""
    return f"{prefix}{conv:07d}"


@dataclass(slots=True)
class Msg:
    uid: str
    conv: int
    seq: int
    group: str  # "main", "background", "burst"
    start: float  # intended POST start (perf_counter)
    sent: float | None = None  # when the POST actually began
    post: int = 0  # which POST carried it (items of one POST are ordered by `index`)
    index: int = 0
    ack: float | None = None  # 200 received
    status: int | None = None  # HTTP status, or None for a connection error
    reply: float | None = None  # when its reply first reached the stand-in
    copies: int = 0  # how many times it was answered (more than 1: duplicated)


class Ledger:
    """Everything posted and everything that reached the stand-in, for one run."""

    def __init__(self) -> None:
        self.msgs: dict[str, Msg] = {}
        self.outstanding = 0  # acknowledged, not answered yet
        self.other_sends = 0  # disclosures and anything not ours
        self.unknown_replies = 0
        self._waiters: dict[str, asyncio.Future[None]] = {}
        self._posts = itertools.count(1)
        self.answered = asyncio.Event()

    def new_post(self) -> int:
        return next(self._posts)

    def add(self, msg: Msg) -> None:
        self.msgs[msg.uid] = msg

    def on_send(self, arrived: float, _recipient: str, text: str | None) -> None:
        match = TEXT.match(text or "")
        if match is None:
            self.other_sends += 1
            return
        msg = self.msgs.get(match.group(3))
        if msg is None:
            self.unknown_replies += 1
            return
        msg.copies += 1
        if msg.reply is not None:
            return
        msg.reply = arrived
        if msg.ack is not None:
            self.outstanding -= 1
        waiter = self._waiters.pop(msg.uid, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self.answered.set()

    def waiter(self, uid: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.msgs[uid].reply is not None:
            fut.set_result(None)
        else:
            self._waiters[uid] = fut
        return fut

    def acknowledged(self, msg: Msg, at: float) -> None:
        msg.ack = at
        if msg.reply is None:
            self.outstanding += 1

    async def drain(self, timeout: float, grace: float = 0.5) -> float:
        """Wait until every acknowledged message is answered (or `timeout`); returns the
        seconds waited. A short grace afterwards lets a duplicate show up."""
        began = time.perf_counter()
        deadline = began + timeout
        while self.outstanding and time.perf_counter() < deadline:
            self.answered.clear()
            try:
                await asyncio.wait_for(
                    self.answered.wait(), min(0.5, deadline - time.perf_counter())
                )
            except TimeoutError:
                pass
        await asyncio.sleep(grace)
        return time.perf_counter() - began


class Poster:
    """Builds, signs and POSTs webhook bodies to one or more service URLs (round robin)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        urls: Sequence[str],
        secret: str,
        account_id: str,
        ledger: Ledger,
        customer_prefix: str,
    ) -> None:
        self.session = session
        self.urls = list(urls)
        self.secret = secret
        self.account_id = account_id
        self.ledger = ledger
        self.prefix = customer_prefix
        self._rr = itertools.cycle(range(len(self.urls)))
        self.errors: dict[str, int] = defaultdict(int)
        self.per_url = [0] * len(self.urls)  # POSTs sent to each service process

    def body(self, msgs: Sequence[Msg]) -> bytes:
        now_ms = int(time.time() * 1000)
        messaging = [
            {
                "sender": {"id": igsid(self.prefix, m.conv)},
                "recipient": {"id": self.account_id},
                "timestamp": now_ms,
                "message": {
                    "mid": f"aWdfYmVuY2g{m.uid}",
                    "text": message_text(m.conv, m.seq, m.uid),
                },
            }
            for m in msgs
        ]
        entry = {"id": self.account_id, "time": now_ms, "messaging": messaging}
        return json.dumps({"object": "instagram", "entry": [entry]}).encode()

    def make(self, conv: int, seq: int, group: str, start: float) -> Msg:
        msg = Msg(uid=uuid.uuid4().hex[:16], conv=conv, seq=seq, group=group, start=start)
        self.ledger.add(msg)
        return msg

    async def post(self, msgs: Sequence[Msg]) -> bool:
        post = self.ledger.new_post()
        began = time.perf_counter()
        for i, m in enumerate(msgs):
            m.post, m.index, m.sent = post, i, began
        raw = self.body(msgs)
        which = next(self._rr)
        self.per_url[which] += 1
        url = self.urls[which]
        headers = {
            "X-Hub-Signature-256": sign(self.secret, raw),
            "Content-Type": "application/json",
        }
        status: int | None = None
        try:
            async with self.session.post(url, data=raw, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.errors[type(exc).__name__] += 1
        now = time.perf_counter()
        for m in msgs:
            m.status = status
            if status == 200:
                self.ledger.acknowledged(m, now)
        if status is not None and status != 200:
            self.errors[f"HTTP {status}"] += 1
        return status == 200


@dataclass
class Window:
    """When the load ran: first scheduled start to the last POST answered."""

    started: float
    ended: float
    drained: float | None = None  # when the wait for the last replies ended


def _sequencer(conversations: int, offset: int = 0) -> Callable[[int], tuple[int, int]]:
    return lambda i: (offset + i % conversations, i // conversations)


async def closed_loop(
    poster: Poster,
    *,
    in_flight: int,
    conversations: int,
    seconds: float,
    messages: int | None,
    completion: Completion,
    reply_timeout: float,
) -> Window:
    """`in_flight` customers; each writes, waits for completion, writes again. With
    in_flight <= conversations no conversation has two messages in flight."""
    counter = itertools.count()
    where = _sequencer(conversations)
    started = time.perf_counter()
    deadline = started + seconds

    async def customer() -> None:
        while time.perf_counter() < deadline:
            i = next(counter)
            if messages is not None and i >= messages:
                return
            conv, seq = where(i)
            msg = poster.make(conv, seq, "main", time.perf_counter())
            ok = await poster.post([msg])
            if ok and completion == "reply":
                try:
                    await asyncio.wait_for(poster.ledger.waiter(msg.uid), reply_timeout)
                except TimeoutError:
                    pass  # counted as lost if it never comes; this customer moves on

    await asyncio.gather(*(customer() for _ in range(in_flight)))
    return Window(started, time.perf_counter())


async def open_loop(
    poster: Poster,
    *,
    rate: float,
    conversations: int,
    seconds: float,
    messages: int | None,
    group: str = "main",
    conversation_offset: int = 0,
    on_tick: Callable[[int], None] | None = None,
) -> Window:
    """`rate` messages a second on schedule, each its own POST, for `seconds` (or until
    `messages`); latencies count from the scheduled start."""
    total = int(rate * seconds)
    if messages is not None:
        total = min(total, messages)
    where = _sequencer(conversations, conversation_offset)
    tasks: set[asyncio.Task[bool]] = set()
    started = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - started) * rate) + 1)
        while sent < due:
            conv, seq = where(sent)
            msg = poster.make(conv, seq, group, started + sent / rate)
            task = asyncio.create_task(poster.post([msg]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
            if on_tick is not None:
                on_tick(sent)
        next_at = started + sent / rate
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    if tasks:
        await asyncio.gather(*tasks)
    return Window(started, time.perf_counter())


async def burst(
    poster: Poster,
    *,
    items: int,
    burst_conversations: int,
    background_rate: float,
    background_conversations: int,
    seconds: float,
    burst_at: float,
) -> Window:
    """An open loop on `background_conversations`; after `burst_at` seconds one POST of
    `items` messages spread over `burst_conversations` other conversations."""

    async def big_post() -> None:
        await asyncio.sleep(burst_at)
        start = time.perf_counter()
        where = _sequencer(burst_conversations, background_conversations)
        msgs = [poster.make(*where(i), "burst", start) for i in range(items)]
        await poster.post(msgs)

    started = time.perf_counter()
    big = asyncio.create_task(big_post())
    await open_loop(
        poster,
        rate=background_rate,
        conversations=background_conversations,
        seconds=seconds,
        messages=None,
        group="background",
    )
    await big
    return Window(started, time.perf_counter())
