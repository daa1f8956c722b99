"""One fault scenario's bookkeeping: wait until every acknowledged message is answered (or a
bound passes), then count in / acknowledged / answered / lost / duplicated / 5xx, check the
per-customer order, and print one line (`make faults` shows it; README records it)."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from tests.faults.load import Counts
from tests.faults.service import Service
from tests.faults.standin import StandIn


@dataclass
class Report:
    scenario: str
    sent: int
    acknowledged: int
    answered: int
    lost: int
    duplicated: int
    http_5xx: int
    http_503: int
    other_5xx: int
    recovered_rows_logged: int
    out_of_order: int

    def line(self) -> str:
        return (
            f"FAULTS {self.scenario}: in={self.sent} acknowledged={self.acknowledged} "
            f"answered={self.answered} lost={self.lost} duplicated={self.duplicated} "
            f"5xx={self.http_5xx} (503={self.http_503}, other={self.other_5xx}) "
            f"recovered_rows_logged={self.recovered_rows_logged} out_of_order={self.out_of_order}"
        )


async def wait_answered(standin: StandIn, counts: Counts, bound_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound_s
    while loop.time() < deadline:
        if counts.acknowledged <= set(standin.echoes()):
            await asyncio.sleep(1.0)  # late duplicates would show up now
            return True
        await asyncio.sleep(0.2)
    return False


def out_of_order(standin: StandIn) -> int:
    """Echoes that reached a customer after a later message's echo (first copies only)."""
    bad = 0
    for texts in standin.echo_order().values():
        seen: list[str] = []
        for t in texts:
            if t not in seen:
                seen.append(t)
        bad += sum(1 for a, b in itertools.pairwise(seen) if a > b)
    return bad


def report(name: str, counts: Counts, standin: StandIn, services: list[Service]) -> Report:
    echoes = standin.echoes()
    answered = {t for t in counts.acknowledged if echoes.get(t)}
    result = Report(
        scenario=name,
        sent=counts.sent,
        acknowledged=len(counts.acknowledged),
        answered=len(answered),
        lost=len(counts.acknowledged - answered),
        duplicated=sum(n - 1 for t, n in echoes.items() if n > 1),
        http_5xx=counts.server_errors,
        http_503=counts.status.get(503, 0),
        other_5xx=counts.other_5xx,
        recovered_rows_logged=sum(s.logged("outbox_row_recovered") for s in services),
        out_of_order=out_of_order(standin),
    )
    print("\n" + result.line(), flush=True)
    print(json.dumps(asdict(result)), flush=True)
    return result


async def stuck_in_flight(database_url: str) -> int:
    """Outbox rows still marked in flight (a process died mid-send): the engine's reaper
    returns them after a lease/timeout. Tolerant of the engine's schema changing."""
    try:
        conn = await asyncpg.connect(database_url)
    except Exception:
        return -1
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE status = 'doing'"))
    except Exception:
        return -1
    finally:
        await conn.close()


async def stored_everything(database_url: str, acknowledged: set[str]) -> set[str]:
    """Acknowledged texts missing from the event store."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT payload->'message'->>'text' AS t FROM events WHERE kind = 'message'"
        )
    finally:
        await conn.close()
    return acknowledged - {r["t"] for r in rows}


def summary(reports: list[Any]) -> str:
    return "\n".join(r.line() for r in reports)
