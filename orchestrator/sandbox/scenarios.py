"""QA scenarios: YAML files of steps and expectations, run against the real service.

Each scenario runs in a fresh database with the orchestrator and the Meta simulator on
loopback ports (see `sandbox.py`), on a clock that moves only when a step says so. After
every step the runner waits until nothing is left to do, then compares what it expects with
what happened *during that step*: the conversation's state and owner, the messages the
customer received (disclosures included), the Graph calls made, the deliveries each app
received, and an action's refusal. The first difference is explained by step and field.

File keys: name, description, steps; optional config (deep-merged into the shipped
config/orchestrator.toml; a list such as `apps` replaces the whole list) and faults (the
simulator's faults from the start, as in the `faults:` step).

Step keys (one per step, plus an optional `expect:` and `note:`):
  say: "text"            | say: {text, quick_reply}   the customer writes
  burst: ["a", "b", ...]                              several messages delivered together
  burst: {texts: [...], every: 1s}                    the same, each one `every` later than
                                                      the previous (distinct timestamps)
  react: {to: last_received | last_sent | <mid>, reaction: love}
  unsend: last_sent | <mid>                           the customer unsends one of theirs
  postback: PAYLOAD      comment: "text"              button tap / comment on a post
  act: {app, type, ...}  an app's action (REST API when the app has an api_key); in it
                         `mid: last_received | last_sent` (the latest message the customer
                         received / sent) and `comment_id: last_comment` (their latest
                         comment) are resolved from the simulator
  inbox: take | reply | pass   (+ text / target_app) the Instagram Inbox, outside our apps
  advance: 25h           move the shared clock (durations as in the config, or compound
                         such as 23h59m or 1d1m)
  faults: {batch, redeliver, out_of_order, graph_5xx_rate, numeric_app_ids}   Meta on a
                         bad day, from this step on
Expectations:
  state, owner (our view of the owner app), meta_owner (the simulator's owner app name),
  received: [text | {contains}|{text, tag}]   exactly these, in order, during the step
  received_count: N, graph: ["bot pass_thread_control", ...] exactly, in order
  deliveries: {app: ["message", "standby:message", "handover_requested", ...]}  exactly,
                         for each app listed (apps not listed are not checked)
  refused: <code> | null, status: <HTTP status of an act via the REST API>
  transcript_deleted: N  (tombstones in our transcript)
  transcript_count: {in: N, out: M}   rows our transcript gained during the step
                                      (in = from the customer, out = to the customer)
  transcript_in: [text, ...]          the customer's messages stored during the step, in
                                      transcript order (their own timestamps, then arrival)
  dead_letters: N                     outbox rows dead-lettered so far (Meta refusals that
                                      were reconciled or given up, never retried blindly)

This module loads and discovers scenario files and runs them (`run_file`, `run_cli`); the
steps and expectation checks themselves are in `scenario_runner.py`.
"""

from __future__ import annotations

import copy
import sys
import time
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from orchestrator.config import Config, build_config
from orchestrator.sandbox.runner import Sandbox
from orchestrator.sandbox.scenario_runner import (
    _KNOWN_STEPS,
    CUSTOMER,
    Runner,
    ScenarioError,
    ScenarioResult,
    StepResult,
)
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
    "run_cli",
    "run_file",
    "scenario_config",
]

DEFAULT_DIR = Path("tests/scenarios")


def load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise ScenarioError(f"{path}: expected a mapping with a 'steps' list")
    for i, step in enumerate(data["steps"], 1):
        keys = [k for k in step if k in _KNOWN_STEPS] if isinstance(step, dict) else []
        if len(keys) != 1:
            raise ScenarioError(
                f"{path}: step {i} needs exactly one of {', '.join(_KNOWN_STEPS)} (got {step!r})"
            )
    return data


def scenario_config(overrides: Mapping[str, Any] | None) -> Config:
    """The shipped default config (sandbox placeholders), with per-scenario overrides."""
    path = Path(__file__).resolve().parents[2] / "config" / "orchestrator.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data = _merge(data, dict(overrides or {}))
    data.setdefault("service", {})["mode"] = "sandbox"
    return build_config(data, f"{path} + scenario overrides", env={"ORCHESTRATOR_MODE": "sandbox"})


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


async def run_file(path: Path, database_url: str) -> ScenarioResult:
    started = time.perf_counter()
    result = ScenarioResult(name=path.stem, path=str(path))
    try:
        data = load(path)
        result.name = str(data.get("name") or path.stem)
        config = scenario_config(data.get("config"))
        faults = Faults(**data["faults"]) if data.get("faults") else None
        async with Sandbox(config, database_url, faults=faults) as sb:
            await Runner(sb).run(data, result)
    except ScenarioError as exc:
        result.error = str(exc)
    result.seconds = time.perf_counter() - started
    return result


def render(result: ScenarioResult) -> str:
    lines = [f"{'PASS' if result.ok else 'FAIL'}  {result.name}  ({result.path}, "
             f"{result.seconds:.1f}s)"]  # fmt: skip
    for s in result.steps:
        lines.append(f"   {s.index:>3}  {'ok ' if s.ok else 'ERR'}  {s.label}")
        if s.problem:
            lines.append(f"             → {s.problem}")
    if result.error:
        lines.append(f"         scenario error: {result.error}")
    return "\n".join(lines)


def discover(paths: Sequence[str]) -> list[Path]:
    targets = [Path(p) for p in paths] or [DEFAULT_DIR]
    files: list[Path] = []
    for t in targets:
        if t.is_dir():
            files.extend(sorted(t.glob("*.yaml")))
        elif t.is_file():
            files.append(t)
        else:
            raise ScenarioError(f"{t}: no such scenario file or folder")
    return files


async def run_cli(paths: Sequence[str]) -> int:
    """`orchestrator scenarios run [PATHS]`: a table per scenario, non-zero on any failure."""
    import logging
    import os

    from orchestrator.ops import logs
    from orchestrator.store.database import resolve

    logs.configure(level="WARNING")  # the table is the output; the service's own log is noise
    logging.getLogger("aiohttp").setLevel(logging.ERROR)
    try:
        files = discover(paths)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if not files:
        print("no scenario files found", file=sys.stderr)
        return 2
    target = resolve(os.environ, ".pgtest")
    failures = 0
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
            result = await run_file(path, url)
        finally:
            admin = await asyncpg.connect(target.url)
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            finally:
                await admin.close()
        print(render(result))
        if not result.ok:
            failures += 1
            print(f"   first difference: {result.first_failure}")
    print(f"{len(files) - failures} passed, {failures} failed")
    if target.server is not None:
        target.server.cleanup()
    return 1 if failures else 0
