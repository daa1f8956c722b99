"""CPU time, memory and core pinning of the measured processes, read from /proc (Linux).

CPU of a process tree = its own time + the time of children it has reaped + the time of its
live children; the delta of that sum between two snapshots is what the tree used in
between, even when PostgreSQL backends come and go. Memory: RSS of the service processes
(their peak is VmHWM), PSS for PostgreSQL (its backends share buffers, so RSS would count
shared memory once per backend).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROC = Path("/proc")


def available() -> bool:
    return PROC.joinpath("self", "stat").exists()


def _stat(pid: int) -> list[str] | None:
    try:
        raw = PROC.joinpath(str(pid), "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = list(PROC.joinpath(str(pid), "task").iterdir())
    except OSError:
        return out
    for task in tasks:
        with contextlib.suppress(OSError):
            out += [int(c) for c in task.joinpath("children").read_text().split()]
    return out


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def cpu_seconds(pid: int, *, reaped: bool = True) -> float:
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def tree_cpu(pid: int) -> float:
    root = cpu_seconds(pid, reaped=True)
    return root + sum(cpu_seconds(c, reaped=True) for c in tree(pid)[1:])


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in PROC.joinpath(str(pid), "status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    return _status_kb(pid, "VmRSS")


def hwm_kb(pid: int) -> int:
    return _status_kb(pid, "VmHWM")


def pss_kb(pid: int) -> int:
    try:
        for line in PROC.joinpath(str(pid), "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return rss_kb(pid)


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def pin(pids: Iterable[int], cores: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, cores)


@dataclass
class Usage:
    """What the service processes and PostgreSQL used during one measurement."""

    service_cpu_s: float
    db_cpu_s: float | None
    service_peak_rss_mb: float
    db_peak_pss_mb: float | None
    loadgen_cpu_s: float  # this process: load generator + Graph stand-in
    rss_series: list[tuple[float, float]] = field(default_factory=list)  # (s, service MB)


class Meter:
    """Samples memory every `interval` seconds between start() and stop()."""

    def __init__(self, service_pids: list[int], db_pid: int | None, interval: float = 0.25):
        self.service_pids = service_pids
        self.db_pid = db_pid
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = (0.0, 0.0)
        self._own0 = 0.0
        self.began = 0.0  # perf_counter() at start(): the clock of the series
        self.peak_service_kb = 0
        self.peak_db_kb = 0
        self.series: list[tuple[float, float]] = []
        self.series_every = 5.0
        self._next_point = 0.0

    def _cpu(self) -> tuple[float, float]:
        service = sum(tree_cpu(p) for p in self.service_pids)
        db = tree_cpu(self.db_pid) if self.db_pid else 0.0
        return service, db

    def _sample(self) -> None:
        service = sum(rss_kb(p) for pid in self.service_pids for p in tree(pid))
        self.peak_service_kb = max(self.peak_service_kb, service)
        if self.db_pid:
            self.peak_db_kb = max(self.peak_db_kb, sum(pss_kb(p) for p in tree(self.db_pid)))
        now = time.perf_counter() - self.began
        if now >= self._next_point:
            self.series.append((round(now, 1), round(service / 1024, 1)))
            self._next_point += self.series_every

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self.began = time.perf_counter()
        self._cpu0 = self._cpu()
        self._own0 = _own_cpu()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> Usage:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample()
        service, db = self._cpu()
        hwm = sum(hwm_kb(p) for p in self.service_pids)
        return Usage(
            service_cpu_s=round(service - self._cpu0[0], 2),
            db_cpu_s=round(db - self._cpu0[1], 2) if self.db_pid else None,
            service_peak_rss_mb=round(max(self.peak_service_kb, hwm) / 1024, 1),
            db_peak_pss_mb=round(self.peak_db_kb / 1024, 1) if self.db_pid else None,
            loadgen_cpu_s=round(_own_cpu() - self._own0, 2),
            rss_series=self.series,
        )
