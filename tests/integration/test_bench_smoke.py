"""The end-to-end benchmark harness still works: a tiny closed-loop load through the real
service (a `serve` subprocess), the Graph stand-in and the baseline, with every reply
accounted for. It checks the harness and the report's shape, never a figure of speed."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.bench import run, tables
from tests.bench.service import config_toml

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


def test_bench_config_sets_retention_only_when_asked() -> None:
    assert tomllib.loads(config_toml("http://x", retention="2m"))["service"]["retention"] == "2m"
    assert "retention" not in tomllib.loads(config_toml("http://x"))["service"]


async def test_bench_soak_records_table_sizes(pg_server_url: str, tmp_path: Path) -> None:
    """A tiny soak with a retention the service accepts: table rows and sizes are sampled
    on the RSS series' clock (the first at the load's start, the last after the drain) and
    summarised. Checks the records, never whether the tables stayed bounded."""
    out = tmp_path / "soak.json"
    results = await run.main(
        [
            "--scenario", "soak",
            "--soak", "40",
            "--soak-rate", "40",
            "--retention", "1m",
            "--drain", "60",
            "--no-pin",
            "--no-baseline",
            "--database-url", pg_server_url,
            "--json", str(out),
            "--quiet",
        ]
    )  # fmt: skip

    [scenario] = results["scenarios"]
    r = scenario["result"]
    assert r["posted"] == r["replies"] == 40
    assert (r["lost"], r["duplicated"], r["order_violations"]) == (0, 0, 0)
    assert scenario["retention"] == "1m"
    assert list(scenario["soak_points"]) == ["warm-up end", "mid-load", "load end", "after drain"]
    sizes = scenario["usage"]["tables_over_time"]
    assert sizes["errors"] == 0
    first, *_, last = sizes["series"]
    assert first["t"] < 1.0 <= last["t"]
    # Warm-up and soak: every customer message and its reply are in the transcript.
    assert last["messages"] >= 2 * (40 + 20)
    assert last["events"] >= 40 + 20 and last["outbox"] >= 40
    assert last["events_mb"] > 0 and last["outbox_mb"] > 0
    assert scenario["usage"]["service_rss_mb_over_time"]
    assert len(tables.soak_summary(scenario)) > 3
