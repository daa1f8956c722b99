"""RetryPolicy.decide, table-tested: each error class, exhaustion, backoff, jitter bounds."""

from __future__ import annotations

import asyncio
import dataclasses

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from orchestrator.graph import (
    ContentError,
    GraphError,
    GraphUnreachable,
    HttpDeliveryError,
    InvalidParameter,
    InvalidToken,
    NotThreadOwner,
    PermissionDenied,
    PrivateReplyUsed,
    RateLimited,
    RecipientUnavailable,
    RetryDecision,
    RetryPolicy,
    TakeNotSupported,
    TransientError,
    UnknownGraphError,
    WindowClosed,
)

POLICY = RetryPolicy()
NO_JITTER = RetryPolicy(jitter=0.0)


@pytest.mark.parametrize(
    ("error", "reason_part"),
    [
        (
            WindowClosed("outside window", code=10, subcode=2534022),
            "24-hour messaging window (code 10/2534022)",
        ),
        (WindowClosed("closed", code=1545041), "code 1545041"),
        (RecipientUnavailable("isn't available", code=551), "recipient unavailable"),
        (PrivateReplyUsed("already", code=2534025), "private reply already used"),
        (
            InvalidParameter("bad", code=100, subcode=2018001),
            "invalid parameter (code 100/2018001)",
        ),
        (InvalidToken("expired", code=190), "access token invalid or expired (code 190)"),
        (PermissionDenied("perm", code=200), "permission denied"),
        (TakeNotSupported("no routing", code=27), "Conversation Routing is not enabled"),
        (UnknownGraphError("?", code=36103), "unknown Graph API error (code 36103)"),
    ],
)
def test_refusals_are_given_up_at_once_with_a_reason_naming_the_rule(
    error: GraphError, reason_part: str
) -> None:
    decision = POLICY.decide(error, 1)
    assert decision.verdict == "give_up"
    assert decision.delay == 0.0
    assert reason_part in decision.reason
    assert "not retried" in decision.reason


def test_window_reason_reads_like_the_rule() -> None:
    decision = POLICY.decide(WindowClosed("x", code=10, subcode=2534022), 1)
    assert decision.reason == "outside the 24-hour messaging window (code 10/2534022): not retried"


@pytest.mark.parametrize("error", [InvalidToken("x", code=190), UnknownGraphError("x", code=9)])
def test_alert_errors_say_they_need_attention(error: GraphError) -> None:
    assert "needs attention" in POLICY.decide(error, 1).reason


@pytest.mark.parametrize("attempt", [1, 5, 8, 50])
def test_not_thread_owner_asks_for_reconciliation_whatever_the_attempt(attempt: int) -> None:
    decision = POLICY.decide(NotThreadOwner("not owner", code=100, subcode=2534037), attempt)
    assert decision == RetryDecision(
        "reconcile",
        0.0,
        "this app is not the thread owner (code 100/2534037): "
        "reconcile with thread_owner, not retried",
    )


@pytest.mark.parametrize(
    ("attempt", "delay"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (7, 64.0)],
)
def test_transient_errors_back_off_exponentially(attempt: int, delay: float) -> None:
    decision = NO_JITTER.decide(TransientError("unexpected", code=2), attempt)
    assert decision.verdict == "retry"
    assert decision.should_retry
    assert decision.delay == delay
    assert f"retry in {delay:.1f}s" in decision.reason


def test_backoff_is_capped_at_max_delay() -> None:
    policy = RetryPolicy(max_attempts=100, jitter=0.0, max_delay=300.0)
    assert policy.decide(TransientError("x", code=1), 20).delay == 300.0
    assert policy.decide(TransientError("x", code=1), 99).delay == 300.0


def test_huge_attempt_numbers_do_not_overflow() -> None:
    policy = RetryPolicy(max_attempts=10**6)
    assert policy.decide(GraphUnreachable("timeout"), 10**5).delay == 300.0


def test_unreachable_graph_is_retried_like_a_transient_error() -> None:
    decision = NO_JITTER.decide(GraphUnreachable("TimeoutError"), 3)
    assert decision.verdict == "retry"
    assert decision.delay == 4.0
    assert "unreachable" in decision.reason


@pytest.mark.parametrize(
    "error",
    [
        TransientError("x", code=2),
        GraphUnreachable("x"),
        RateLimited("x", code=613),
        HttpDeliveryError(503),
        TimeoutError(),
    ],
)
def test_retryable_errors_give_up_once_attempts_are_exhausted(error: BaseException) -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.decide(error, 2).verdict == "retry"
    decision = policy.decide(error, 3)
    assert decision.verdict == "give_up"
    assert decision.delay == 0.0
    assert decision.reason.startswith("gave up after 3 attempts: ")


@pytest.mark.parametrize(
    ("retry_after", "attempt", "delay"),
    [
        (None, 1, 30.0),
        (None, 2, 60.0),
        (None, 4, 240.0),
        (None, 6, 300.0),  # capped
        (300.0, 1, 300.0),  # Meta's estimate wins when longer
        (10.0, 2, 60.0),  # our floor wins when Meta's estimate is shorter
        (3600.0, 1, 3600.0),  # Meta's estimate is honoured even beyond max_delay
    ],
)
def test_rate_limits_slow_down_to_the_larger_of_retry_after_and_throttle_backoff(
    retry_after: float | None, attempt: int, delay: float
) -> None:
    error = RateLimited(
        "Calls to this api have exceeded the rate limit.", code=613, retry_after=retry_after
    )
    decision = NO_JITTER.decide(error, attempt)
    assert decision.verdict == "retry"
    assert decision.delay == delay
    assert "rate limited (code 613): slow down" in decision.reason


@pytest.mark.parametrize("rand", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("attempt", [1, 2, 3, 5])
def test_jitter_stays_within_its_bounds(rand: float, attempt: int) -> None:
    policy = RetryPolicy(jitter=0.1)
    base = NO_JITTER.decide(TransientError("x", code=2), attempt).delay
    delay = policy.decide(TransientError("x", code=2), attempt, rand=rand).delay
    assert base * 0.9 - 1e-9 <= delay <= base * 1.1 + 1e-9


def test_jitter_extremes_and_middle() -> None:
    policy = RetryPolicy(jitter=0.1)
    error = TransientError("x", code=2)
    assert policy.decide(error, 4, rand=0.0).delay == pytest.approx(7.2)
    assert policy.decide(error, 4, rand=0.5).delay == pytest.approx(8.0)
    assert policy.decide(error, 4, rand=1.0).delay == pytest.approx(8.8)


def test_jitter_never_exceeds_max_delay() -> None:
    policy = RetryPolicy(jitter=0.5, max_attempts=50)
    assert policy.decide(TransientError("x", code=2), 30, rand=1.0).delay == 300.0


def test_jitter_never_undercuts_metas_retry_after() -> None:
    error = RateLimited("x", code=4, retry_after=120.0)
    assert RetryPolicy(jitter=0.5).decide(error, 1, rand=0.0).delay == 120.0


@pytest.mark.parametrize("rand", [-0.1, 1.1])
def test_rand_outside_unit_interval_is_refused(rand: float) -> None:
    with pytest.raises(ValueError, match="rand"):
        POLICY.decide(TransientError("x"), 1, rand=rand)


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="attempt"):
        POLICY.decide(TransientError("x"), 0)


def test_content_errors_are_given_up_with_the_content_rule() -> None:
    error = ContentError("message.text is 1200 bytes", rule_name="text_bytes")
    decision = POLICY.decide(error, 1)
    assert decision.verdict == "give_up"
    assert "text_bytes" in decision.reason
    assert "1200 bytes" in decision.reason


# --- vendor deliveries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (HttpDeliveryError(0, "vendor unreachable"), "retry"),
        (HttpDeliveryError(500), "retry"),
        (HttpDeliveryError(502), "retry"),
        (HttpDeliveryError(503), "retry"),
        (HttpDeliveryError(429), "retry"),
        (HttpDeliveryError(408), "retry"),
        (HttpDeliveryError(400), "give_up"),
        (HttpDeliveryError(401), "give_up"),
        (HttpDeliveryError(404), "give_up"),
        (HttpDeliveryError(422), "give_up"),
        (TimeoutError(), "retry"),
        (aiohttp.ServerTimeoutError("read timeout"), "retry"),
        (aiohttp.ClientConnectionError("refused"), "retry"),
        (aiohttp.ServerDisconnectedError(), "retry"),
        (aiohttp.InvalidURL("not a url"), "give_up"),
        (ValueError("bug"), "give_up"),
        (asyncio.CancelledError(), "give_up"),
    ],
)
def test_vendor_delivery_failures_retry_on_5xx_429_and_timeouts_and_give_up_on_4xx(
    error: BaseException, verdict: str
) -> None:
    assert POLICY.decide(error, 1).verdict == verdict


def test_vendor_4xx_reason_names_the_status() -> None:
    decision = POLICY.decide(HttpDeliveryError(404, "no such hook"), 1)
    assert decision.reason == "vendor delivery refused with HTTP 404: not retried"


def test_vendor_429_honours_retry_after() -> None:
    decision = NO_JITTER.decide(HttpDeliveryError(429, retry_after=45.0), 1)
    assert decision.delay == 45.0


def test_vendor_delivery_uses_normal_backoff() -> None:
    assert NO_JITTER.decide(HttpDeliveryError(503), 3).delay == 4.0


def test_client_response_error_is_judged_by_its_status() -> None:
    info = aiohttp.RequestInfo(
        url=URL("https://vendor.example/hook"),
        method="POST",
        headers=CIMultiDictProxy(CIMultiDict()),
        real_url=URL("https://vendor.example/hook"),
    )
    server_error = aiohttp.ClientResponseError(info, (), status=502)
    client_error = aiohttp.ClientResponseError(info, (), status=403)
    assert POLICY.decide(server_error, 1).verdict == "retry"
    assert POLICY.decide(client_error, 1).verdict == "give_up"


def test_unexpected_exceptions_are_not_retried() -> None:
    decision = POLICY.decide(KeyError("recipient"), 1)
    assert decision == RetryDecision("give_up", 0.0, "unexpected error KeyError: not retried")


# --- the policy object ------------------------------------------------------------------------


def test_policy_and_decision_are_frozen_values() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        POLICY.max_attempts = 3  # type: ignore[misc]
    decision = POLICY.decide(TransientError("x"), 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.delay = 0  # type: ignore[misc]


def test_policy_defaults_match_the_brief() -> None:
    assert POLICY == RetryPolicy(
        max_attempts=8, base_delay=1.0, max_delay=300.0, throttle_min_delay=30.0, jitter=0.1
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay": -1},
        {"max_delay": 0.5},
        {"jitter": 1.0},
        {"jitter": -0.1},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_decide_is_pure_same_input_same_answer() -> None:
    error = RateLimited("x", code=80002, retry_after=None)
    assert POLICY.decide(error, 2, rand=0.3) == POLICY.decide(error, 2, rand=0.3)
