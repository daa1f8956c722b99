"""The benchmark's order and duplicate accounting (tests/bench/report.py): a reply counts as
out of order only against a message that was certainly sent before it."""

from __future__ import annotations

import random
from typing import Any

from tests.bench.load import Ledger, Msg, Window
from tests.bench.report import (
    add_ceiling_ratios,
    order_violations,
    pct,
    ranges,
    summarize,
    table,
)


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


def _entry(
    name: str, kind: str, round_: int, replies: float, p99: float, cpu: float
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "round": round_,
        "result": {
            "acked_per_s": replies,
            "replies_per_s": replies,
            "e2e_p99_ms": p99,
            "lost": 0,
            "duplicated": 1 if round_ == 2 else 0,
            "order_violations": 0,
        },
        "usage": {"cpu_ms_per_message": cpu},
    }


def test_repeated_runs_are_summarised_as_ranges_with_the_ceiling_ratio_of_each_round() -> None:
    rounds = [
        [
            _entry("closed", "closed", 1, 400.0, 120.0, 2.4),
            _entry("ceil", "ceiling", 1, 1000.0, 70.0, 1.0),
        ],
        [
            _entry("closed", "closed", 2, 600.0, 90.0, 1.7),
            _entry("ceil", "ceiling", 2, 1200.0, 50.0, 0.8),
        ],
        [
            _entry("closed", "closed", 3, 500.0, 100.0, 2.0),
            _entry("ceil", "ceiling", 3, 1250.0, 60.0, 0.9),
        ],
    ]
    for entries in rounds:
        add_ceiling_ratios(entries)
    # Each closed loop is divided by the ceiling of its own round, never another's.
    assert [r[0]["vs_ceiling"] for r in rounds] == [0.4, 0.5, 0.4]
    assert all("vs_ceiling" not in r[1] for r in rounds)
    results = {
        "scenarios": [e for r in rounds for e in r],
        "baseline": [
            {"load": "closed", "round": i, "result": {"acked_per_s": a, "ack_p99_ms": 40.0}}
            for i, a in ((1, 1500.0), (2, 1900.0), (3, 1700.0))
        ],
    }
    text = ranges(results)
    closed = next(line for line in text.splitlines() if line.startswith("closed "))
    assert "(3 runs)" in closed
    assert "replies/s 400..600 (500)" in closed
    assert "e2e p99 90.0..120 ms (100)" in closed
    assert "lost/dup/order 0/1/0" in closed  # summed over the rounds
    assert "÷ ceiling 0.40..0.50 (0.40)" in closed
    baseline = next(line for line in text.splitlines() if line.startswith("baseline closed"))
    assert "acked/s 1,500..1,900 (1,700)" in baseline
    # The per-run table names each row's round.
    assert "closed #2" in table(results) and "baseline closed #3" in table(results)


def test_a_single_run_table_keeps_plain_names_and_no_ratio_without_a_ceiling() -> None:
    entries = [_entry("closed", "closed", 1, 400.0, 120.0, 2.4)]
    add_ceiling_ratios(entries)
    assert "vs_ceiling" not in entries[0]
    assert "closed #1" not in table({"scenarios": entries, "baseline": []})
