"""Meta's webhook sender: body building, signing, delivery with retries, and faults.

Bodies are built exactly like Meta's (`{"object":"instagram","entry":[...]}`, compact JSON with
escaped unicode) and signed with the receiving app's secret over the raw bytes. One worker task
delivers in submission order; a "bad day" (`Faults`) batches, redelivers and reorders.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import secrets
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import aiohttp

from orchestrator.sandbox.simulator.errors import SimError
from orchestrator.sandbox.simulator.model import WebhookEvent

USER_AGENT = "facebookexternalua"
HANDOVER_KEYS = ("pass_thread_control", "take_thread_control", "request_thread_control")
APP_ID_KEYS = ("previous_owner_app_id", "new_owner_app_id", "requested_owner_app_id")


@dataclass(frozen=True)
class Faults:
    """Meta on a bad day; switchable at run time (`POST /sim/faults`)."""

    batch: int = 1  # up to N events for one app as several entries of one POST
    redeliver: bool = False  # every POST twice
    out_of_order: bool = False  # later items first, within a batch and across POSTs
    graph_5xx_rate: float = 0.0  # fraction of Graph calls answered 500 / code 2
    graph_613_rate: float = 0.0  # fraction of Graph calls answered 613 (rate limit)
    numeric_app_ids: bool = False  # handover app ids as JSON numbers (docs/platform.md 2.8)
    seed: int = 0  # seeds the RNG of graph_5xx_rate, graph_613_rate and out_of_order
    batch_window_s: float = 0.05  # how long to gather events when batching or reordering

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise SimError("faults.batch must be >= 1")
        if not 0.0 <= self.graph_5xx_rate <= 1.0:
            raise SimError("faults.graph_5xx_rate must be within [0, 1]")
        if not 0.0 <= self.graph_613_rate <= 1.0:
            raise SimError("faults.graph_613_rate must be within [0, 1]")
        if self.batch_window_s < 0:
            raise SimError("faults.batch_window_s must be >= 0")

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with `changes` applied; unknown names and wrong types are refused."""
        known = {f.name: f for f in fields(self)}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise SimError(f"unknown fault {name!r}; known: {', '.join(known)}")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise SimError(f"fault {name!r} must be true or false")
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise SimError(f"fault {name!r} must be an integer")
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise SimError(f"fault {name!r} must be a number")
            clean[name] = float(value) if isinstance(current, float) else value
        return replace(self, **clean)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeliveryPolicy:
    """Meta's retry behaviour, shortened for a local run."""

    timeout_s: float = 5.0  # Meta wants 200 within 5 s
    retries: int = 3  # after the first attempt
    backoff_s: float = 0.1
    backoff_factor: float = 2.0
    disable_after_s: float | None = 3600.0  # continuous failure → app unsubscribed (world time)


@dataclass(frozen=True)
class Target:
    """Where and how to deliver for one of our apps (resolved at send time)."""

    app_id: str
    name: str
    url: str | None
    secret: str


class FaultSwitch:
    """The current faults plus their seeded RNG; replacing the faults reseeds it."""

    def __init__(self, faults: Faults) -> None:
        self.set(faults)

    def set(self, faults: Faults) -> None:
        self.faults = faults
        self.rng = random.Random(faults.seed)

    def roll_5xx(self) -> bool:
        rate = self.faults.graph_5xx_rate
        return rate > 0 and self.rng.random() < rate

    def roll_613(self) -> bool:
        rate = self.faults.graph_613_rate
        return rate > 0 and self.rng.random() < rate


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """What a receiver does: HMAC the raw bytes and compare in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(body, secret), header)


def _numeric_ids(payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    for key in HANDOVER_KEYS:
        if isinstance(out.get(key), dict):
            inner = dict(out[key])
            for id_key in APP_ID_KEYS:
                value = inner.get(id_key)
                if isinstance(value, str) and value.isdigit():
                    inner[id_key] = int(value)
            out[key] = inner
    return out


def encode_body(
    account_id: str, events: Sequence[WebhookEvent], *, numeric_app_ids: bool = False
) -> bytes:
    """One entry per event (Meta: `messaging[]` holds one event, `entry[]` may hold several).
    `changes` entries carry `time` in seconds, messaging ones in milliseconds
    (docs/platform.md 2.1)."""
    entries = []
    for event in events:
        payload = _numeric_ids(event.payload) if numeric_app_ids else event.payload
        entry_id = event.entry_id or account_id
        if event.channel == "changes":
            entries.append({"id": entry_id, "time": int(event.time), "changes": [payload]})
        else:
            entries.append(
                {"id": entry_id, "time": int(event.time * 1000), event.channel: [payload]}
            )
    # One object per body (Meta sends a Page's and an Instagram account's events apart).
    body = {"object": events[0].object if events else "instagram", "entry": entries}
    return json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def verify_callback(
    session: aiohttp.ClientSession, url: str, verify_token: str, timeout_s: float = 5.0
) -> str | None:
    """Meta's subscription check: GET with `hub.challenge`; None when the endpoint echoes it."""
    challenge = str(secrets.randbelow(9 * 10**8) + 10**8)
    params = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": verify_token}
    try:
        async with session.get(
            url, params=params, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as resp:
            text = (await resp.text()).strip()
            if resp.status != 200 or text != challenge:
                return f"callback answered {resp.status} without the challenge"
    except (aiohttp.ClientError, TimeoutError) as exc:
        return f"callback unreachable: {type(exc).__name__}"
    return None


@dataclass
class _Job:
    events: tuple[WebhookEvent, ...]
    future: asyncio.Future[list[dict[str, Any]]]


class WebhookDispatcher:
    """Delivers webhook events in submission order from one worker task.

    `submit()` queues and returns a future (Graph calls do not wait: Meta sends asynchronously);
    `deliver()` waits for the attempt (control API calls answer after delivery was tried).
    """

    def __init__(
        self,
        account_id: str,
        targets: Callable[[str], Target | None],
        switch: FaultSwitch,
        policy: DeliveryPolicy,
        clock: Callable[[], float],
        *,
        on_disable: Callable[[str], None] | None = None,
        max_log: int = 10_000,
    ) -> None:
        self.account_id = account_id
        self.targets = targets
        self.switch = switch
        self.policy = policy
        self.clock = clock
        self.on_disable = on_disable
        self.log: deque[dict[str, Any]] = deque(maxlen=max_log)
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._inflight: list[_Job] = []
        self._failing_since: dict[str, float] = {}
        self._seq = 0

    async def start(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="simulator-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for job in self._inflight:
            job.future.cancel()
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait().future.cancel()
                self._queue.task_done()

    def clear(self) -> None:
        self.log.clear()
        self._failing_since.clear()

    def submit(self, events: Sequence[WebhookEvent]) -> asyncio.Future[list[dict[str, Any]]]:
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        if not events:
            future.set_result([])
        elif self._queue is None:
            raise RuntimeError("the webhook dispatcher is not started")
        else:
            self._queue.put_nowait(_Job(tuple(events), future))
        return future

    async def deliver(self, events: Sequence[WebhookEvent]) -> list[dict[str, Any]]:
        return await self.submit(events)

    async def flush(self) -> None:
        """Wait until everything submitted so far was attempted."""
        if self._queue is not None:
            await self._queue.join()

    # ------------------------------------------------------------ worker

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            jobs = self._inflight = [await self._queue.get()]
            try:
                faults = self.switch.faults
                if faults.batch > 1 or faults.out_of_order:
                    await asyncio.sleep(faults.batch_window_s)
                while not self._queue.empty():
                    jobs.append(self._queue.get_nowait())
                events = [e for job in jobs for e in job.events]
                try:
                    records = await self._send_round(events, faults)
                except Exception as exc:  # a bug here must not stop all future deliveries
                    records = [self._record(event="dispatch_error", ok=False, error=repr(exc))]
                for job in jobs:
                    if not job.future.done():
                        job.future.set_result(records)
            finally:
                self._inflight = []
                for _ in jobs:
                    self._queue.task_done()

    def _disorder(self, items: list[Any]) -> list[Any]:
        if len(items) < 2:
            return items
        shuffled = list(items)
        self.switch.rng.shuffle(shuffled)
        return shuffled if shuffled != items else list(reversed(items))

    async def _send_round(self, events: list[WebhookEvent], faults: Faults) -> list[dict[str, Any]]:
        by_app: dict[tuple[str, str], list[WebhookEvent]] = {}
        for event in events:
            by_app.setdefault((event.app_id, event.object), []).append(event)
        plans = []
        for (app_id, _object), app_events in by_app.items():
            chunks = [
                app_events[i : i + faults.batch] for i in range(0, len(app_events), faults.batch)
            ]
            if faults.out_of_order:
                chunks = self._disorder([self._disorder(c) for c in chunks])
            plans.append(self._send_app(app_id, chunks, faults))
        results = await asyncio.gather(*plans)
        return [record for records in results for record in records]

    async def _send_app(
        self, app_id: str, chunks: list[list[WebhookEvent]], faults: Faults
    ) -> list[dict[str, Any]]:
        records = []
        for chunk in chunks:
            body = encode_body(self.account_id, chunk, numeric_app_ids=faults.numeric_app_ids)
            for copy in range(2 if faults.redeliver else 1):
                records.extend(await self._post(app_id, body, redelivery=copy > 0))
        return records

    def _record(self, **entry: Any) -> dict[str, Any]:
        self._seq += 1
        record = {"seq": self._seq, "time": self.clock(), **entry}
        self.log.append(record)
        return record

    async def _post(self, app_id: str, body: bytes, *, redelivery: bool) -> list[dict[str, Any]]:
        """One POST with Meta's retries; a log record per attempt."""
        target = self.targets(app_id)
        parsed = json.loads(body)
        name = target.name if target else app_id
        if target is None or not target.url:
            return [self._record(
                app_id=app_id, app=name, url=None, attempt=0, redelivery=redelivery,
                status=None, ok=False, error="no webhook url", gave_up=True, body=parsed,
            )]  # fmt: skip
        assert self._session is not None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Hub-Signature": "sha1="
            + hmac.new(target.secret.encode(), body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": sign(body, target.secret),
        }
        delay = self.policy.backoff_s
        attempt = 0
        records = []
        while True:
            attempt += 1
            status: int | None = None
            error: str | None = None
            try:
                async with self._session.post(
                    target.url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.policy.timeout_s),
                ) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            ok = status == 200
            gave_up = not ok and attempt > self.policy.retries
            records.append(
                self._record(
                    app_id=app_id, app=name, url=target.url, attempt=attempt,
                    redelivery=redelivery, status=status, ok=ok, error=error, gave_up=gave_up,
                    body=parsed,
                )
            )  # fmt: skip
            if ok:
                self._failing_since.pop(app_id, None)
                return records
            self._note_failure(app_id, name)
            if gave_up:
                return records
            await asyncio.sleep(delay)
            delay *= self.policy.backoff_factor

    def _note_failure(self, app_id: str, name: str) -> None:
        """Continuous failure for `disable_after_s` (world time): Meta disables the webhooks and
        unsubscribes the app (docs/platform.md 3)."""
        now = self.clock()
        since = self._failing_since.setdefault(app_id, now)
        limit = self.policy.disable_after_s
        if limit is not None and now - since >= limit:
            self._failing_since.pop(app_id, None)
            if self.on_disable is not None:
                self.on_disable(app_id)
            self._record(app_id=app_id, app=name, event="webhooks_disabled", ok=False)
