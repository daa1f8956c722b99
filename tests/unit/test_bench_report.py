"""The benchmark's order and duplicate accounting (tests/bench/report.py): a reply counts as
out of order only against a message that was certainly sent before it."""

from __future__ import annotations

import random

from tests.bench.load import Ledger, Msg, Window
from tests.bench.report import order_violations, pct, summarize


def msg(
    uid: str, conv: int, start: float, ack: float, replies: list[float], post: int, index: int = 0
) -> Msg:
    return Msg(
        uid=uid,
        conv=conv,
        seq=0,
        group="main",
        start=start,
        post=post,
        index=index,
        ack=ack,
        status=200,
        reply=replies[0] if replies else None,
        copies=len(replies),
    )


def test_a_reply_overtaking_an_earlier_acknowledged_message_is_a_violation() -> None:
    a = msg("a", 1, start=0.0, ack=0.1, replies=[0.5], post=1)
    b = msg("b", 1, start=0.2, ack=0.3, replies=[0.4], post=2)
    assert order_violations([a, b]) == 1


def test_overlapping_posts_have_no_order_to_break() -> None:
    a = msg("a", 1, start=0.0, ack=0.3, replies=[0.5], post=1)
    b = msg("b", 1, start=0.2, ack=0.25, replies=[0.4], post=2)  # posted before a's 200
    assert order_violations([a, b]) == 0


def test_items_of_one_post_keep_their_array_order_and_conversations_are_independent() -> None:
    a = msg("a", 1, start=0.0, ack=0.1, replies=[0.6], post=1, index=0)
    b = msg("b", 1, start=0.0, ack=0.1, replies=[0.5], post=1, index=1)
    c = msg("c", 2, start=0.0, ack=0.1, replies=[0.2], post=1, index=2)
    assert order_violations([a, b, c]) == 1


def test_summary_counts_lost_and_duplicated_replies() -> None:
    ledger = Ledger()
    for m in (
        msg("a", 1, start=0.0, ack=0.1, replies=[0.2, 0.3], post=1),
        msg("b", 2, start=0.0, ack=0.1, replies=[], post=2),
    ):
        ledger.add(m)
        ledger.acknowledged(m, 0.1)
    r = summarize(ledger, Window(0.0, 1.0), completion="reply")
    assert (r["acknowledged"], r["replies"], r["lost"], r["duplicated"]) == (2, 1, 1, 1)
    assert (r["e2e_p50_ms"], r["e2e_p50_censored"]) == (200.0, False)
    # The unanswered message counts as "at least until the end": p99 is only a lower bound.
    assert (r["e2e_p99_ms"], r["e2e_p99_censored"]) == (1000.0, True)
    assert r["answered_e2e_p99_ms"] == 200.0


def test_percentiles_are_nearest_rank() -> None:
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert (pct(values, 0.5), pct(values, 0.99), pct(values, 1.0)) == (50.0, 99.0, 100.0)
    assert pct([], 0.5) is None


def _brute_force(msgs: list[Msg]) -> int:
    """The definition, pair by pair."""

    def before(a: Msg, b: Msg) -> bool:
        if a.post == b.post:
            return a.index < b.index
        return a.ack is not None and a.ack <= b.start

    answered = [m for m in msgs if m.reply is not None]
    return sum(
        1
        for b in answered
        if any(
            a is not b and a.conv == b.conv and before(a, b) and (a.reply or 0) > (b.reply or 0)
            for a in answered
        )
    )


def test_the_fast_order_check_agrees_with_the_pairwise_definition() -> None:
    rng = random.Random(8)
    for _ in range(200):
        msgs = []
        for post in range(rng.randint(1, 12)):
            start = rng.uniform(0, 1)
            ack = start + rng.uniform(0.001, 0.3)
            for index in range(rng.choice([1, 1, 1, 3])):
                reply = ack + rng.uniform(-0.2, 0.5) if rng.random() > 0.1 else None
                m = msg(f"{post}-{index}", rng.randint(1, 3), start, ack, [], post, index)
                m.reply = reply
                msgs.append(m)
        assert order_violations(msgs) == _brute_force(msgs)
