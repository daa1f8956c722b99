"""`WakeOne` (orchestrator/engine/wakeup.py): one poke wakes one waiting worker, and no
wake-up is lost while every worker is busy."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from orchestrator.engine.loop import run_until_stopped
from orchestrator.engine.wakeup import WakeOne


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _two_waiting() -> tuple[WakeOne, list[asyncio.Future[bool]]]:
    """A doorbell with two workers waiting on it (their waits, in member order)."""
    bell = WakeOne()
    first, second = bell.member(), bell.member()
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    await _settle()
    return bell, waits


async def test_a_poke_wakes_one_waiting_worker_and_the_next_poke_another() -> None:
    bell, waits = await _two_waiting()

    bell.set()
    await _settle()
    assert [w.done() for w in waits] == [True, False]  # the second worker sleeps on

    bell.set()
    await _settle()
    assert [w.done() for w in waits] == [True, True]


async def test_two_pokes_before_the_first_woken_worker_runs_wake_two() -> None:
    bell, waits = await _two_waiting()
    bell.set()
    bell.set()  # the first is woken but has not run yet: this one is for the second
    await _settle()
    assert all(w.done() for w in waits)


async def test_a_busy_worker_is_rung_too_it_may_hold_the_conversation() -> None:
    bell = WakeOne()
    busy, idle = bell.member(), bell.member()
    waiting = asyncio.ensure_future(idle.wait())
    await _settle()
    bell.set()
    await _settle()
    assert waiting.done()
    assert busy.is_set()  # it looks again after its step instead of sleeping


async def test_a_poke_while_every_worker_is_busy_is_kept_by_each() -> None:
    bell = WakeOne()
    members = [bell.member(), bell.member()]
    bell.set()  # nobody waits: both are mid-step
    assert all(m.is_set() for m in members)  # each claims again instead of sleeping


async def test_workers_on_one_bell_do_one_step_per_poke_at_low_load() -> None:
    """Two run loops as the service runs its workers: a poke costs one step, not one per
    worker (each step is a claim transaction)."""
    bell = WakeOne()
    stop = asyncio.Event()
    steps = [0, 0]
    work = [0]

    def worker(i: int) -> Callable[[], Awaitable[int]]:
        async def step() -> int:
            steps[i] += 1
            done, work[0] = work[0], 0
            return done

        return step

    loops = [
        asyncio.create_task(
            run_until_stopped(
                worker(i),
                stop=stop,
                wake=bell.member(),
                poll_interval=60,
                name=f"w{i}",
                kind="worker",
            )
        )
        for i in range(2)
    ]
    await _settle()
    assert steps == [1, 1]  # each looked once at start-up
    for _ in range(3):
        work[0] = 1
        bell.set()
        await _settle()
    # Worker 0 took each event (one step that found it, one that found nothing more);
    # worker 1 slept through all three.
    assert steps == [7, 1]
    stop.set()
    await asyncio.gather(*loops)
