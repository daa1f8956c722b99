"""QA scenarios: YAML files of steps and expectations, run against the real service.

Each scenario runs in a fresh database with the orchestrator and the Meta simulator on
loopback ports (see `runner.py`), on a clock that moves only when a step says so. After every
step the runner waits until nothing is left to do, then compares what it expects with what
happened *during that step*.

The language is defined once, in `scenario_schema.py` (checked at load; documented by
`orchestrator scenarios reference`). This module is the front: `run_file` runs one file,
`run_all` several (each in a fresh database); the commands are in `scenario_commands.py`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from orchestrator.sandbox.runner import Sandbox
from orchestrator.sandbox.scenario_files import (
    DEFAULT_DIR,
    ScenarioError,
    discover,
    load,
    scenario_config,
)
from orchestrator.sandbox.scenario_report import render
from orchestrator.sandbox.scenario_runner import CUSTOMER, Runner, ScenarioResult, StepResult
from orchestrator.sandbox.simulator import Faults

__all__ = [
    "CUSTOMER",
    "DEFAULT_DIR",
    "Runner",
    "ScenarioError",
    "ScenarioResult",
    "StepResult",
    "discover",
    "load",
    "render",
    "run_all",
    "run_file",
    "scenario_config",
]


async def run_file(path: Path, database_url: str, *, keep_going: bool = False) -> ScenarioResult:
    started = time.perf_counter()
    result = ScenarioResult(name=path.stem, path=str(path))
    try:
        data = load(path)
        result.name = str(data.get("name") or path.stem)
        config = scenario_config(data.get("config"))
        faults = Faults(**data["faults"]) if data.get("faults") else None
        async with Sandbox(config, database_url, faults=faults) as sb:
            await Runner(sb, keep_going=keep_going).run(data, result)
    except ScenarioError as exc:
        result.error = str(exc)
    except Exception as exc:  # the sandbox itself could not run: report it, run the next file
        result.error = f"the sandbox failed: {type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - started
    return result


async def run_all(
    files: Sequence[Path], *, keep_going: bool, each: Any = None
) -> list[ScenarioResult]:
    from orchestrator.store.database import resolve

    target = resolve(os.environ, ".pgtest")
    results = []
    try:
        for path in files:
            name = f"scenario_{uuid.uuid4().hex[:10]}"
            admin = await asyncpg.connect(target.url)
            try:
                await admin.execute(f"CREATE DATABASE {name}")
            finally:
                await admin.close()
            base, _, query = target.url.partition("?")
            url = f"{base.rpartition('/')[0]}/{name}" + (f"?{query}" if query else "")
            try:
                result = await run_file(path, url, keep_going=keep_going)
            finally:
                admin = await asyncpg.connect(target.url)
                try:
                    await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                finally:
                    await admin.close()
            results.append(result)
            if each is not None:
                each(result)
    finally:
        if target.server is not None:
            target.server.cleanup()
    return results
