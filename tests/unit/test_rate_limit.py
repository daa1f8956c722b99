"""RateLimiter with a fake clock and a fake sleep: no real waiting, no wall-clock checks."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from orchestrator.graph import BUCKETS, Rate, RateLimiter, RateLimits


class FakeTime:
    """A monotonic clock that only moves when somebody sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingSleep:
    """A sleep that records but does not move time: for concurrent reservations."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def limiter_for(fake: FakeTime, limits: RateLimits | None = None, **kwargs: int) -> RateLimiter:
    return RateLimiter(limits, clock=fake.clock, sleep=fake.sleep, **kwargs)


async def call_times(
    limiter: RateLimiter, fake: FakeTime, bucket: str, n: int, key: str = "acc"
) -> list[float]:
    times = []
    for _ in range(n):
        await limiter.acquire(key, bucket)
        times.append(fake.now)
    return times


def max_in_any_window(times: list[float], per: float) -> int:
    """Most calls falling in any half-open window [t, t + per)."""
    best = 0
    for i, start in enumerate(times):
        count = sum(1 for t in times[i:] if start <= t < start + per - 1e-9)
        best = max(best, count)
    return best


def test_default_limits_follow_the_platform_table() -> None:
    limits = RateLimits()
    assert (limits.send_text.calls, limits.send_text.per) == (100, 1.0)
    assert (limits.send_media.calls, limits.send_media.per) == (10, 1.0)
    assert (limits.private_reply.calls, limits.private_reply.per) == (750, 3600.0)
    assert (limits.conversations.calls, limits.conversations.per) == (2, 1.0)
    assert (limits.thread_control.calls, limits.thread_control.per) == (100, 1.0)


def test_rate_limits_has_one_field_per_bucket() -> None:
    assert tuple(f.name for f in dataclasses.fields(RateLimits)) == BUCKETS


async def test_first_call_goes_at_once(fake: FakeTime) -> None:
    limiter = limiter_for(fake)
    assert await limiter.acquire("acc", "send_text") == 0.0
    assert fake.sleeps == []


async def test_conversations_are_paced_at_two_per_second(fake: FakeTime) -> None:
    limiter = limiter_for(fake)
    start = fake.now
    times = await call_times(limiter, fake, "conversations", 5)
    assert [t - start for t in times] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    assert fake.sleeps == pytest.approx([0.5, 0.5, 0.5, 0.5])


async def test_send_text_allows_a_hundred_calls_per_second_and_no_more(fake: FakeTime) -> None:
    limiter = limiter_for(fake)
    times = await call_times(limiter, fake, "send_text", 300)
    assert max_in_any_window(times, 1.0) == 100
    assert times[-1] - times[0] == pytest.approx(2.99)


async def test_media_sends_are_limited_to_ten_per_second(fake: FakeTime) -> None:
    limiter = limiter_for(fake)
    times = await call_times(limiter, fake, "send_media", 35)
    assert max_in_any_window(times, 1.0) == 10


async def test_private_replies_are_limited_to_750_per_hour(fake: FakeTime) -> None:
    limiter = limiter_for(fake)
    times = await call_times(limiter, fake, "private_reply", 800)
    assert max_in_any_window(times, 3600.0) == 750
    assert fake.sleeps[0] == pytest.approx(4.8)


@pytest.mark.parametrize("burst", [1, 2, 5, 10])
async def test_bursts_go_at_once_but_never_break_the_window_limit(
    fake: FakeTime, burst: int
) -> None:
    limits = RateLimits(send_media=Rate(10, 1.0, burst=burst))
    limiter = limiter_for(fake, limits)
    times = await call_times(limiter, fake, "send_media", 60)
    assert times[:burst] == [times[0]] * burst
    assert max_in_any_window(times, 1.0) <= 10


async def test_accounts_and_buckets_are_limited_independently(fake: FakeTime) -> None:
    limiter = limiter_for(fake)
    assert await limiter.acquire("acc-1", "conversations") == 0.0
    assert await limiter.acquire("acc-2", "conversations") == 0.0
    assert await limiter.acquire("acc-1", "send_text") == 0.0
    assert await limiter.acquire("acc-1", "conversations") == pytest.approx(0.5)


async def test_an_idle_bucket_refills_and_does_not_bank_credit(fake: FakeTime) -> None:
    limiter = limiter_for(fake)
    await call_times(limiter, fake, "conversations", 3)
    fake.now += 60.0  # a minute of silence
    times = await call_times(limiter, fake, "conversations", 3)
    assert fake.sleeps[-2:] == pytest.approx([0.5, 0.5])  # no burst after idling
    assert max_in_any_window(times, 1.0) == 2


async def test_concurrent_waiters_get_distinct_slots_in_arrival_order(fake: FakeTime) -> None:
    recorder = RecordingSleep()
    limiter = RateLimiter(clock=fake.clock, sleep=recorder.sleep)
    waits = await asyncio.gather(*(limiter.acquire("acc", "conversations") for _ in range(4)))
    assert waits == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert recorder.sleeps == pytest.approx([0.5, 1.0, 1.5])


def test_reserve_returns_the_wait_without_sleeping(fake: FakeTime) -> None:
    limiter = limiter_for(fake)
    assert limiter.reserve("acc", "send_media") == 0.0
    assert limiter.reserve("acc", "send_media") == pytest.approx(0.1)
    assert fake.sleeps == []


def test_unknown_bucket_is_refused_with_the_known_names(fake: FakeTime) -> None:
    limiter = limiter_for(fake)
    with pytest.raises(ValueError, match=r"unknown rate-limit bucket 'send_stickers'.*send_text"):
        limiter.reserve("acc", "send_stickers")


async def test_memory_stays_bounded_when_many_accounts_come_and_go(fake: FakeTime) -> None:
    limiter = limiter_for(fake, max_entries=100)
    for n in range(10_000):
        await limiter.acquire(f"acc-{n}", "send_text")
        fake.now += 0.02  # each account's bucket has refilled before the next one arrives
        assert len(limiter) <= 101


async def test_busy_buckets_are_kept_when_pruning(fake: FakeTime) -> None:
    limiter = limiter_for(fake, max_entries=2)
    for n in range(5):
        limiter.reserve(f"acc-{n}", "private_reply")  # none has refilled: all are busy
    assert len(limiter) == 5
    assert limiter.reserve("acc-0", "private_reply") == pytest.approx(4.8)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"calls": 0},
        {"calls": 10, "per": 0},
        {"calls": 10, "burst": 0},
        {"calls": 10, "burst": 11},
    ],
)
def test_nonsense_rates_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Rate(**kwargs)  # type: ignore[arg-type]


def test_limits_are_configurable_per_bucket(fake: FakeTime) -> None:
    limits = dataclasses.replace(RateLimits(), send_text=Rate(300, 1.0))
    limiter = limiter_for(fake, limits)
    limiter.reserve("acc", "send_text")
    assert limiter.reserve("acc", "send_text") == pytest.approx(1 / 300)
