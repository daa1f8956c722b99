"""Per-account, per-bucket rate limiter for Graph calls (docs/platform.md section 6).

Meta limits each professional account per kind of call; a bucket here is one such kind:

=================  =================  ===============================================
bucket             default            Meta's figure
=================  =================  ===============================================
``send_text``      100 calls/s        text, links, reactions, stickers (100/s or 300/s:
                                      unconfirmed, so we budget 100/s everywhere)
``send_media``     10 calls/s         audio and video
``private_reply``  750 calls/hour     private replies to post and reel comments
``conversations``  2 calls/s          Conversations API
``thread_control`` 100 calls/s        no published figure; same budget as text
=================  =================  ===============================================

Each (account, bucket) is a token bucket of capacity ``burst`` refilled so that no window of
``per`` seconds ever holds more than ``calls`` calls (implemented as GCRA: one float of state,
the theoretical arrival time). Callers reserve their slot before sleeping, so waiters are
served in arrival order and need no lock; a cancelled waiter's slot is not handed back
(conservative: never over the limit).

**Limits are per process.** Several orchestrator processes each hold their own limiter, so
divide the configured rates by the number of processes sending for the same account (Meta's
own throttling, mapped to ``RateLimited``, is the backstop).

Memory stays bounded: state for a bucket that has fully refilled equals a fresh bucket, so it
is dropped when the table grows past ``max_entries``; only buckets that are actively limiting
stay in memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = ["BUCKETS", "Bucket", "Rate", "RateLimiter", "RateLimits"]

Bucket = Literal["send_text", "send_media", "private_reply", "conversations", "thread_control"]
BUCKETS: tuple[str, ...] = get_args(Bucket)


@dataclass(frozen=True)
class Rate:
    """At most ``calls`` calls in any window of ``per`` seconds, bursts of up to ``burst``.

    ``burst=1`` paces calls evenly (100/s → one every 10 ms). A larger burst lets that many
    calls go at once and lowers the steady rate to ``(calls - burst + 1) / per`` so that the
    window limit still holds.
    """

    calls: float
    per: float = 1.0
    burst: int = 1

    def __post_init__(self) -> None:
        if self.calls <= 0 or self.per <= 0:
            raise ValueError(f"Rate needs calls > 0 and per > 0, got {self.calls}/{self.per}s")
        if not 1 <= self.burst <= self.calls:
            raise ValueError(f"Rate.burst must be between 1 and calls ({self.calls})")

    @property
    def interval(self) -> float:
        """Seconds between two calls at the steady rate."""
        return self.per / (self.calls - self.burst + 1)


@dataclass(frozen=True)
class RateLimits:
    """One :class:`Rate` per bucket; defaults follow docs/platform.md section 6."""

    send_text: Rate = field(default_factory=lambda: Rate(100, 1.0))
    send_media: Rate = field(default_factory=lambda: Rate(10, 1.0))
    private_reply: Rate = field(default_factory=lambda: Rate(750, 3600.0))
    conversations: Rate = field(default_factory=lambda: Rate(2, 1.0))
    thread_control: Rate = field(default_factory=lambda: Rate(100, 1.0))

    def for_bucket(self, bucket: str) -> Rate:
        if bucket not in BUCKETS:
            raise ValueError(f"unknown rate-limit bucket {bucket!r}; known: {', '.join(BUCKETS)}")
        rate: Rate = getattr(self, bucket)
        return rate


class RateLimiter:
    """``await limiter.acquire(account_id, bucket)`` before each Graph call."""

    def __init__(
        self,
        limits: RateLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        max_entries: int = 10_000,
    ) -> None:
        if max_entries < 1:
            raise ValueError("RateLimiter.max_entries must be at least 1")
        self.limits = limits or RateLimits()
        self._clock = clock
        self._sleep = sleep
        self._max_entries = max_entries
        self._prune_at = max_entries
        # (key, bucket) -> theoretical arrival time of the next call at the steady rate.
        self._tat: dict[tuple[str, str], float] = {}

    def __len__(self) -> int:
        """Number of (key, bucket) states held in memory."""
        return len(self._tat)

    def reserve(self, key: str, bucket: str) -> float:
        """Take the next slot now and return how long to wait for it (no sleeping)."""
        rate = self.limits.for_bucket(bucket)
        now = self._clock()
        interval = rate.interval
        tolerance = (rate.burst - 1) * interval
        tat = max(self._tat.get((key, bucket), now), now)
        wait = max(0.0, tat - tolerance - now)
        self._tat[(key, bucket)] = tat + interval
        if len(self._tat) > self._prune_at:
            self._prune(now)
        return wait

    async def acquire(self, key: str, bucket: str) -> float:
        """Wait until a call of ``bucket`` for account ``key`` may go; return seconds waited."""
        wait = self.reserve(key, bucket)
        if wait > 0:
            await self._sleep(wait)
        return wait

    def _prune(self, now: float) -> None:
        # A bucket whose theoretical arrival time has passed is full again: forgetting it
        # changes nothing. Next prune when the table has doubled, so pruning stays O(1)
        # amortised even when every bucket is busy.
        self._tat = {k: tat for k, tat in self._tat.items() if tat > now}
        self._prune_at = max(self._max_entries, 2 * len(self._tat))
