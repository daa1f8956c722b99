"""`orchestrator scenarios run|check|reference|coverage`: the tester's commands.

Kept light to import (the CLI builds its parser on every start); the work is imported when a
command runs. The service's log goes to a file whose path is printed, never into the table.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO


def add_commands(
    scenarios: argparse.ArgumentParser, parents: Sequence[argparse.ArgumentParser] = ()
) -> None:
    """The `orchestrator scenarios …` subcommands (`parents`: options every command shares)."""
    sub = scenarios.add_subparsers(dest="scenario_command", required=True, metavar="ACTION")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=list(parents))

    run = add("run", "run scenario files (default: tests/scenarios)")
    run.add_argument("paths", nargs="*")
    run.add_argument("--keep-going", action="store_true", help="report every failing step")
    run.add_argument("--junit", metavar="FILE", help="also write JUnit XML results to FILE")
    run.add_argument("--log", metavar="FILE", help="the service's log (default: a temp file)")
    check = add("check", "only check scenario files (nothing runs)")
    check.add_argument("paths", nargs="*")
    add("reference", "every step and expectation, with an example")
    cov = add("coverage", "run the scenarios; print the (state, trigger) pairs they exercise")
    cov.add_argument("paths", nargs="*")
    cov.add_argument("--log", metavar="FILE", help="the service's log (default: a temp file)")
    cov.add_argument("--readme", action="store_true", help="also write the README's matrix")


def main(args: argparse.Namespace) -> int:
    import asyncio

    from orchestrator.sandbox.scenario_files import ScenarioError, check_files, discover

    command = args.scenario_command
    if command == "reference":
        from orchestrator.sandbox.scenario_reference import reference

        print(reference())
        return 0
    try:
        files = discover(args.paths)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if not files:
        print("no scenario files found", file=sys.stderr)
        return 2
    if command == "check":
        problems = check_files(files)
        for p in problems:
            print(p)
        print(f"{len(files) - len(problems)} of {len(files)} file(s) OK")
        return 1 if problems else 0
    if command == "coverage":
        return asyncio.run(_coverage(files, args))
    return asyncio.run(_run(files, args))


def _log_to_file(path: str | None) -> tuple[Path, TextIO]:
    """The service's log goes to a file, never into the table."""
    import structlog

    from orchestrator.ops import logs

    if path is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        fd, name = tempfile.mkstemp(prefix=f"scenarios-{stamp}-", suffix=".log")
        os.close(fd)
        path = name
    handle = open(path, "w", encoding="utf-8")  # closed by the caller
    logs.configure(json=True)
    structlog.configure(logger_factory=lambda *_: structlog.PrintLogger(file=handle))
    root = logging.getLogger()
    root.handlers = [logging.StreamHandler(handle)]
    root.setLevel(logging.INFO)
    return Path(path), handle


def _close_log(handle: TextIO) -> None:
    logging.getLogger().handlers = [logging.NullHandler()]
    handle.close()


async def _run(files: Sequence[Path], args: argparse.Namespace) -> int:
    from orchestrator.sandbox.scenario_report import junit, render
    from orchestrator.sandbox.scenarios import run_all

    log_path, handle = _log_to_file(args.log)
    try:
        results = await run_all(
            files, keep_going=args.keep_going, each=lambda r: print(render(r), flush=True)
        )
    finally:
        _close_log(handle)
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"   first difference in {r.path}: {r.first_failure}".split("\n")[0])
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if args.junit:
        junit(results, Path(args.junit))
        print(f"JUnit XML: {args.junit}")
    print(f"service log: {log_path}")
    return 1 if failed else 0


async def _coverage(files: Sequence[Path], args: argparse.Namespace) -> int:
    from orchestrator.sandbox.scenario_coverage import matrix
    from orchestrator.sandbox.scenarios import run_all

    log_path, handle = _log_to_file(args.log)
    try:
        results = await run_all(files, keep_going=True)
    finally:
        _close_log(handle)
    covered = set().union(*(r.covered for r in results))
    text = matrix(covered)
    print(text)
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"\nnote: {len(failed)} scenario(s) failed; their later steps may be missing")
    if args.readme:
        from orchestrator.ops.readme import README, write_section

        write_section(README, "scenario-coverage", text)
        print(f"\nwrote the matrix into {README}")
    print(f"service log: {log_path}")
    return 1 if failed else 0


async def run_cli(paths: Sequence[str]) -> int:
    """`orchestrator scenarios run PATHS` with the default options (kept for callers of the
    earlier interface)."""
    from orchestrator.sandbox.scenario_files import ScenarioError, discover

    try:
        files = discover(paths)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    args = argparse.Namespace(paths=list(paths), keep_going=False, junit=None, log=None)
    return await _run(files, args)
