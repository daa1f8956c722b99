"""The fault suite runs real processes (the service, its own PostgreSQL) and takes minutes:
it runs with `make faults` (ORCHESTRATOR_FAULTS=1), which CI runs after `make test`; a plain
`pytest` deselects it (deselected, not skipped: nothing here pretends to have run)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.faults.postgres import FaultPostgres
from tests.faults.standin import StandIn


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ORCHESTRATOR_FAULTS") == "1":
        return
    here = os.path.dirname(__file__)
    chosen, dropped = [], []
    for item in items:
        (dropped if str(item.fspath).startswith(here) else chosen).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = chosen


@pytest.fixture(scope="session")
def fault_pg() -> Iterator[FaultPostgres]:
    server = FaultPostgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    stand_in = StandIn()
    await stand_in.start()
    try:
        yield stand_in
    finally:
        await stand_in.stop()
