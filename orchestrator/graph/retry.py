"""Retry policy: a small pure object that judges one failure (STYLE habit 8).

``RetryPolicy.decide(error, attempt)`` looks at the exception and how many attempts were made
and answers retry (after ``delay`` seconds), reconcile, or give up, with a reason naming the
rule. No I/O, no clock, no randomness of its own: the caller passes ``rand`` (e.g.
``random.random()``) so that decisions are reproducible in tests.

It judges Graph errors (:mod:`orchestrator.graph.errors`) and the failures of vendor HTTP
deliveries (:class:`HttpDeliveryError`, ``aiohttp.ClientError``, timeouts) alike, so the
outbox needs one policy for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import aiohttp

from .errors import ContentError, GraphError, HttpDeliveryError, RateLimited

__all__ = ["RetryDecision", "RetryPolicy", "Verdict"]

Verdict = Literal["retry", "give_up", "reconcile"]

# Past this exponent every delay is capped anyway; it keeps 2**n from overflowing a float.
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class RetryDecision:
    verdict: Verdict
    #: Seconds to wait before the next attempt (0 unless ``verdict == "retry"``).
    delay: float
    reason: str

    @property
    def should_retry(self) -> bool:
        return self.verdict == "retry"


@dataclass(frozen=True)
class _Judgement:
    kind: Literal["retry", "slow_down", "reconcile", "give_up"]
    reason: str
    #: A lower bound on the delay given by the other side (Retry-After, regain access).
    floor: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient faults, a slower one for throttling.

    ``attempt`` is the 1-based number of the attempt that just failed. Attempt ``n`` of a
    transient fault waits ``base_delay * 2**(n-1)``, throttling waits
    ``max(retry_after, throttle_min_delay * 2**(n-1))``; both are capped at ``max_delay``
    (except that a ``retry_after`` announced by Meta is always honoured) and spread by
    ``± jitter`` (a fraction). Once ``max_attempts`` attempts failed, the answer is give up.
    """

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    throttle_min_delay: float = 30.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.base_delay < 0 or self.throttle_min_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")
        if self.max_delay < self.base_delay:
            raise ValueError("RetryPolicy.max_delay must be at least base_delay")
        if not 0 <= self.jitter < 1:
            raise ValueError("RetryPolicy.jitter must be in [0, 1)")

    # -- public ---------------------------------------------------------------------------

    def decide(self, error: BaseException, attempt: int, *, rand: float = 0.5) -> RetryDecision:
        """Judge ``error`` raised by attempt number ``attempt`` (1-based).

        ``rand`` in [0, 1] picks the jitter: 0.5 means none, 0 the shortest, 1 the longest.
        """
        if attempt < 1:
            raise ValueError(f"attempt must be at least 1, got {attempt}")
        if not 0.0 <= rand <= 1.0:
            raise ValueError(f"rand must be in [0, 1], got {rand}")
        judgement = _judge(error)
        if judgement.kind == "give_up":
            return RetryDecision("give_up", 0.0, judgement.reason)
        if judgement.kind == "reconcile":
            return RetryDecision(
                "reconcile", 0.0, f"{judgement.reason}: reconcile with thread_owner, not retried"
            )
        if attempt >= self.max_attempts:
            return RetryDecision(
                "give_up", 0.0, f"gave up after {attempt} attempts: {judgement.reason}"
            )
        if judgement.kind == "slow_down":
            delay = self._delay(self.throttle_min_delay, attempt, rand)
            verb = "slow down, retry"
        else:
            delay = self._delay(self.base_delay, attempt, rand)
            verb = "retry"
        if judgement.floor is not None:
            delay = max(delay, judgement.floor)
        return RetryDecision("retry", delay, f"{judgement.reason}: {verb} in {delay:.1f}s")

    def backoff(self, attempt: int, *, rand: float = 0.5) -> float:
        """The transient-fault delay after attempt ``attempt``, without judging an error."""
        return self._delay(self.base_delay, attempt, rand)

    # -- internals ------------------------------------------------------------------------

    def _delay(self, first: float, attempt: int, rand: float) -> float:
        exponent = min(attempt - 1, _MAX_EXPONENT)
        raw = min(self.max_delay, first * 2.0**exponent)
        spread = 1.0 + self.jitter * (2.0 * rand - 1.0)
        return min(self.max_delay, max(0.0, raw * spread))


def _judge(error: BaseException) -> _Judgement:
    if isinstance(error, ContentError):
        rule = f" [{error.rule_name}]" if error.rule_name else ""
        return _Judgement("give_up", f"{error.rule}{rule}: {error.message}: not retried")
    if isinstance(error, GraphError):
        return _judge_graph(error)
    if isinstance(error, HttpDeliveryError):
        return _judge_status(error.status, error.retry_after)
    if isinstance(error, aiohttp.ClientResponseError):
        return _judge_status(error.status, None)
    if isinstance(error, aiohttp.InvalidURL):
        return _Judgement("give_up", "invalid delivery URL (configuration error): not retried")
    if isinstance(error, TimeoutError):  # asyncio.TimeoutError is TimeoutError on 3.11
        return _Judgement("retry", "delivery timed out")
    if isinstance(error, aiohttp.ClientError):
        return _Judgement("retry", f"delivery connection error ({type(error).__name__})")
    if not isinstance(error, Exception):
        return _Judgement("give_up", f"interrupted ({type(error).__name__}): not retried")
    return _Judgement("give_up", f"unexpected error {type(error).__name__}: not retried")


def _judge_graph(error: GraphError) -> _Judgement:
    what = f"{error.rule} ({error.code_text})"
    if error.action == "retry":
        return _Judgement("retry", what)
    if error.action == "slow_down":
        floor = error.retry_after if isinstance(error, RateLimited) else None
        return _Judgement("slow_down", what, floor)
    if error.action == "reconcile":
        return _Judgement("reconcile", what)
    if error.action == "alert":
        return _Judgement("give_up", f"{what}: not retried, needs attention")
    return _Judgement("give_up", f"{what}: not retried")


def _judge_status(status: int, retry_after: float | None) -> _Judgement:
    if status < 100:  # no HTTP answer at all (status 0 by convention): a network fault
        return _Judgement("retry", "vendor unreachable (no HTTP answer)", retry_after)
    if status == 429:
        return _Judgement("retry", "vendor delivery throttled (HTTP 429)", retry_after)
    if status == 408:
        return _Judgement("retry", "vendor delivery timed out (HTTP 408)", retry_after)
    if status >= 500:
        return _Judgement("retry", f"vendor delivery failed with HTTP {status}", retry_after)
    return _Judgement("give_up", f"vendor delivery refused with HTTP {status}: not retried")
