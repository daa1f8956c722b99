"""Figures from one run's ledger: throughput, latency, loss, duplicates, order; the table."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from tests.bench.load import Completion, Ledger, Msg, Window


def pct(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile in milliseconds (values in seconds)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1))
    return round(ordered[rank] * 1000, 1)


def censored_pct(
    name: str, values: Sequence[float], lower_bounds: Sequence[float], p: float
) -> dict[str, Any]:
    """Percentile over answered values and unanswered lower bounds together."""
    marked = sorted([(v, False) for v in values] + [(v, True) for v in lower_bounds])
    if not marked:
        return {f"{name}_ms": None, f"{name}_censored": False}
    rank = max(0, min(len(marked) - 1, math.ceil(p * len(marked)) - 1))
    value, censored = marked[rank]
    return {f"{name}_ms": round(value * 1000, 1), f"{name}_censored": censored}


def order_violations(msgs: Iterable[Msg]) -> int:
    """Replies that reached Meta before the reply to a message certainly sent before them in
    the same conversation: earlier in the same POST (Meta's array order), or acknowledged
    before their POST started. Overlapping POSTs have no order to keep."""
    by_conv: dict[int, list[Msg]] = defaultdict(list)
    for m in msgs:
        if m.reply is not None and m.ack is not None:
            by_conv[m.conv].append(m)
    bad = 0
    for items in by_conv.values():
        # Latest reply among the messages acknowledged by time t (a prefix when sorted by ack).
        by_ack = sorted(items, key=lambda m: m.ack or 0.0)
        acks = [m.ack or 0.0 for m in by_ack]
        prefix_max: list[float] = []
        for m in by_ack:
            assert m.reply is not None
            prefix_max.append(max(prefix_max[-1] if prefix_max else -math.inf, m.reply))
        # Latest reply among earlier items of the same POST.
        earlier_in_post: dict[int, float] = {}
        post_max: dict[int, float] = {}
        for m in sorted(items, key=lambda m: (m.post, m.index)):
            assert m.reply is not None
            earlier_in_post[id(m)] = post_max.get(m.post, -math.inf)
            post_max[m.post] = max(earlier_in_post[id(m)], m.reply)
        for b in items:
            assert b.reply is not None
            n = bisect.bisect_right(acks, b.start)
            before = prefix_max[n - 1] if n else -math.inf
            if before > b.reply or earlier_in_post[id(b)] > b.reply:
                bad += 1
    return bad


def summarize(
    ledger: Ledger,
    window: Window,
    *,
    completion: Completion,
    groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    msgs = [m for m in ledger.msgs.values() if groups is None or m.group in groups]
    acked = [m for m in msgs if m.ack is not None]
    load_s = max(window.ended - window.started, 1e-9)
    last_ack = max((m.ack for m in acked if m.ack is not None), default=window.ended)
    out: dict[str, Any] = {
        "posted": len(msgs),
        "acknowledged": len(acked),
        "not_acknowledged": len(msgs) - len(acked),
        "load_seconds": round(load_s, 2),
        "acked_per_s": round(len(acked) / max(last_ack - window.started, 1e-9), 1),
        "ack_p50_ms": pct([m.ack - m.start for m in acked if m.ack is not None], 0.50),
        "ack_p99_ms": pct([m.ack - m.start for m in acked if m.ack is not None], 0.99),
        # How late the load generator started POSTs against its schedule (open loop): a
        # large value means the generator, not the service, fell behind.
        "send_lag_p99_ms": pct([m.sent - m.start for m in msgs if m.sent is not None], 0.99),
    }
    if completion == "ack":
        return out
    answered = [m for m in acked if m.reply is not None]
    e2e = [m.reply - m.start for m in answered if m.reply is not None]
    # A message never answered counts as "at least until the drain ended": when such a
    # value sets a percentile, that percentile is only a lower bound (`*_censored`).
    end = window.drained or window.ended
    lower_bounds = [end - m.start for m in acked if m.reply is None]
    last_reply = max((m.reply for m in answered if m.reply is not None), default=window.started)
    out.update(
        {
            "replies": len(answered),
            "replies_per_s": round(len(answered) / max(last_reply - window.started, 1e-9), 1)
            if answered
            else 0.0,
            "replies_within_load": sum(
                1 for m in answered if m.reply is not None and m.reply <= window.ended
            ),
            **censored_pct("e2e_p50", e2e, lower_bounds, 0.50),
            **censored_pct("e2e_p99", e2e, lower_bounds, 0.99),
            **censored_pct("e2e_max", e2e, lower_bounds, 1.0),
            "answered_e2e_p50_ms": pct(e2e, 0.50),
            "answered_e2e_p99_ms": pct(e2e, 0.99),
            "lost": len(acked) - len(answered),
            "duplicated": sum(m.copies - 1 for m in msgs if m.copies > 1),
            "order_violations": order_violations(acked),
        }
    )
    return out


def burst_figures(ledger: Ledger) -> dict[str, Any]:
    """How much the big POST delayed the other conversations' replies."""
    burst = [m for m in ledger.msgs.values() if m.group == "burst"]
    background = [
        m for m in ledger.msgs.values() if m.group == "background" and m.reply is not None
    ]
    if not burst:
        return {}
    t0 = burst[0].start
    before = [m.reply - m.start for m in background if m.reply is not None and m.start < t0]
    after = [m.reply - m.start for m in background if m.reply is not None and m.start >= t0]
    burst_done = [m.reply for m in burst if m.reply is not None]
    p50_before = pct(before, 0.5)
    p99_after = pct(after, 0.99)
    return {
        "burst_items": len(burst),
        "others_before": len(before),
        "others_after_posted": sum(
            1 for m in ledger.msgs.values() if m.group == "background" and m.start >= t0
        ),
        "others_after_answered": len(after),
        "burst_ack_ms": round((burst[0].ack - t0) * 1000, 1) if burst[0].ack else None,
        "burst_replies": len(burst_done),
        "burst_all_answered_s": round(max(burst_done) - t0, 2)
        if len(burst_done) == len(burst)
        else None,
        "others_p50_before_ms": p50_before,
        "others_p50_after_ms": pct(after, 0.5),
        "others_p99_after_ms": p99_after,
        "others_max_after_ms": pct(after, 1.0),
        "others_delay_p99_ms": round(p99_after - p50_before, 1)
        if p99_after is not None and p50_before is not None
        else None,
    }


def _fmt(value: Any, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value < 10:
            return f"{value:.2f}{suffix}"
        return f"{value:,.1f}{suffix}" if value < 100 else f"{value:,.0f}{suffix}"
    return f"{value}{suffix}"


def latency(r: dict[str, Any], name: str) -> str:
    text = _fmt(r.get(f"{name}_ms"), " ms")
    return f">{text}" if r.get(f"{name}_censored") else text


def table(results: dict[str, Any]) -> str:
    rows = [*results.get("scenarios", []), *results.get("baseline", [])]
    repeated = any(e.get("round", 1) > 1 for e in rows)

    def label(entry: dict[str, Any], name: str) -> str:
        return f"{name} #{entry.get('round', 1)}" if repeated else name

    head = (
        f"{'scenario':<24} {'acked/s':>8} {'replies/s':>9} {'e2e p50':>9} {'e2e p99':>9} "
        f"{'lost':>6} {'dup':>4} {'order':>5} {'svc CPU':>8} {'svc RSS':>8} {'db CPU':>7} "
        f"{'CPU/msg':>8} "
        f"{'vs baseline':>24}"
    )
    lines = [head, "-" * len(head)]
    for s in results.get("scenarios", []):
        r = s["result"]
        u = s.get("usage", {})
        ratio = s.get("vs_baseline") or {}
        vs = (
            f"{ratio['throughput']:.2f}x tput, {ratio['p99']:.1f}x p99"
            if ratio.get("throughput") is not None and ratio.get("p99") is not None
            else "—"
        )
        lines.append(
            f"{label(s, s['name']):<24} {_fmt(r.get('acked_per_s')):>8} "
            f"{_fmt(r.get('replies_per_s')):>9} "
            f"{latency(r, 'e2e_p50'):>9} {latency(r, 'e2e_p99'):>9} "
            f"{_fmt(r.get('lost')):>6} {_fmt(r.get('duplicated')):>4} "
            f"{_fmt(r.get('order_violations')):>5} {_fmt(u.get('service_cpu_s'), ' s'):>8} "
            f"{_fmt(u.get('service_peak_rss_mb'), ' MB'):>8} {_fmt(u.get('db_cpu_s'), ' s'):>7} "
            f"{_fmt(u.get('cpu_ms_per_message'), ' ms'):>8} {vs:>24}"
        )
    for b in results.get("baseline", []):
        r, u = b["result"], b.get("usage", {})
        lines.append(
            f"{label(b, 'baseline ' + b['load']):<24} {_fmt(r.get('acked_per_s')):>8} {'—':>9} "
            f"{_fmt(r.get('ack_p50_ms'), ' ms'):>9} {_fmt(r.get('ack_p99_ms'), ' ms'):>9} "
            f"{'':>6} {'':>4} {'':>5} {_fmt(u.get('service_cpu_s'), ' s'):>8} "
            f"{_fmt(u.get('service_peak_rss_mb'), ' MB'):>8} {_fmt(u.get('db_cpu_s'), ' s'):>7} "
            f"{_fmt(u.get('cpu_ms_per_message'), ' ms'):>8}"
        )
    return "\n".join(lines)


def add_ceiling_ratios(entries: list[dict[str, Any]]) -> None:
    """Closed-loop replies/s over the harness ceiling's of the same round (`vs_ceiling`): the
    ceiling runs none of our code, so the ratio cancels most of the machine's own drift."""
    ceiling = next((e for e in entries if e.get("kind") == "ceiling"), None)
    top = ceiling["result"].get("replies_per_s") if ceiling else None
    if not top:
        return
    for e in entries:
        ours = e["result"].get("replies_per_s")
        if e.get("kind") == "closed" and ours is not None:
            e["vs_ceiling"] = round(ours / top, 3)


def _spread(values: Sequence[float | None], suffix: str = "") -> str:
    """min..max (median) of the values measured; "—" when none was."""
    got = sorted(v for v in values if v is not None)
    if not got:
        return "—"
    half = len(got) // 2
    mid = got[half] if len(got) % 2 else (got[half - 1] + got[half]) / 2
    return f"{_fmt(got[0])}..{_fmt(got[-1])}{suffix} ({_fmt(mid)})"


def ranges(results: dict[str, Any]) -> str:
    """Each figure's range over the rounds of `--repeat`: min..max (median), per scenario and
    baseline; lost, duplicated and out-of-order replies summed over every round."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in results.get("scenarios", []):
        groups.setdefault(e["name"], []).append(e)
    for b in results.get("baseline", []):
        groups.setdefault("baseline " + b["load"], []).append(b)
    lines = ["ranges over the rounds: min..max (median)"]
    for name, entries in groups.items():
        rs = [e["result"] for e in entries]
        us = [e.get("usage", {}) for e in entries]
        if name.startswith("baseline "):
            figures = (
                f"acked/s {_spread([r.get('acked_per_s') for r in rs])}, "
                f"ack p99 {_spread([r.get('ack_p99_ms') for r in rs], ' ms')}"
            )
        else:
            figures = (
                f"replies/s {_spread([r.get('replies_per_s') for r in rs])}, "
                f"e2e p99 {_spread([r.get('e2e_p99_ms') for r in rs], ' ms')}, "
                f"lost/dup/order {sum(r.get('lost') or 0 for r in rs)}/"
                f"{sum(r.get('duplicated') or 0 for r in rs)}/"
                f"{sum(r.get('order_violations') or 0 for r in rs)}"
            )
        figures += f", CPU/msg {_spread([u.get('cpu_ms_per_message') for u in us], ' ms')}"
        if any("vs_ceiling" in e for e in entries):
            figures += f", ÷ ceiling {_spread([e.get('vs_ceiling') for e in entries])}"
        lines.append(f"{name} ({len(entries)} runs): {figures}")
    return "\n".join(lines)
