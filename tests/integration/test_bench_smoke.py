"""The end-to-end benchmark harness still works: a tiny closed-loop load through the real
service (a `serve` subprocess), the Graph stand-in and the baseline, with every reply
accounted for. It checks the harness and the report's shape, never a figure of speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench import run

MESSAGES = 20


@pytest.mark.parametrize("processes", [1, 2])
async def test_bench_harness_reports_every_reply(
    pg_server_url: str, tmp_path: Path, processes: int
) -> None:
    """With 2 processes the load is spread over two `serve` processes sharing the database."""
    out = tmp_path / "bench.json"
    results = await run.main(
        [
            "--scenario", "closed",
            "--messages", str(MESSAGES),
            "--seconds", "120",
            "--in-flight", "4",
            "--conversations", "5",
            "--processes", str(processes),
            "--drain", "60",
            "--no-pin",
            "--database-url", pg_server_url,
            "--json", str(out),
            "--quiet",
        ]
    )  # fmt: skip

    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(results))
    [scenario] = results["scenarios"]
    r = scenario["result"]
    assert scenario["name"] == "closed"
    assert r["posted"] == r["acknowledged"] == r["replies"] == MESSAGES
    assert (r["lost"], r["duplicated"], r["order_violations"]) == (0, 0, 0)
    assert r["e2e_p50_ms"] <= r["e2e_p99_ms"] <= r["e2e_max_ms"]
    assert not r["e2e_max_censored"]  # every latency is a measured one
    # 5 conversations, 4 messages each: one disclosure per conversation besides the replies.
    assert scenario["other_sends"] == 5
    assert scenario["graph_calls"]["send_message"] == MESSAGES + 5
    assert scenario["errors"] == {}
    assert scenario["usage"]["service_cpu_s"] > 0
    assert scenario["usage"]["service_peak_rss_mb"] > 0
    assert scenario["usage"]["cpu_ms_per_message"] > 0
    [baseline] = results["baseline"]
    assert baseline["load"] == "closed"
    assert baseline["result"]["acknowledged"] == MESSAGES
    assert scenario["vs_baseline"]["throughput"] > 0
    assert "not pinned" in results["pinning"]
    assert results["topology"] == f"{processes} x orchestrator serve"
    assert len(scenario["posts_per_process"]) == processes
    assert all(n > 0 for n in scenario["posts_per_process"])
