"""The decision core does no I/O: nothing under state_machines/ imports a module that talks
to the network, the disk, the clock or a random source, nor reads the clock through a call
such as `datetime.now()`. Checked on the source (AST), so a branch that never runs in the
tests cannot hide a violation; the checker itself is tested on snippets that must fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "state_machines"

# Top-level modules the core must not import: I/O, the clock, randomness, processes, logging
# (the edge logs decisions), and the edge itself.
FORBIDDEN_MODULES = frozenset(
    {
        "aiohttp",
        "aioresponses",
        "apps",
        "asyncio",
        "asyncpg",
        "concurrent",
        "ftplib",
        "http",
        "httpx",
        "importlib",
        "io",
        "logging",
        "multiprocessing",
        "orchestrator",
        "os",
        "pathlib",
        "random",
        "requests",
        "secrets",
        "select",
        "selectors",
        "shutil",
        "signal",
        "smtplib",
        "socket",
        "sqlite3",
        "ssl",
        "structlog",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
        "urllib",
        "uuid",
    }
)
# Calls that read the clock, whatever they are called on (datetime.now(), date.today(), ...).
CLOCK_CALLS = frozenset({"now", "utcnow", "today", "monotonic", "perf_counter", "time_ns"})
# Builtins that do I/O or load code.
IO_BUILTINS = frozenset({"open", "print", "input", "breakpoint", "exec", "eval", "__import__"})


def impurities(source: str, filename: str = "<snippet>") -> list[str]:
    """Every I/O import or clock/I/O call in `source`, as 'file:line: what'."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                    found.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{where}: from {module} import ...")
            for alias in node.names:
                if module in ("datetime", "time") and alias.name in CLOCK_CALLS:
                    found.append(f"{where}: from {module} import {alias.name}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in CLOCK_CALLS:
                found.append(f"{where}: call .{func.attr}()")
            elif isinstance(func, ast.Name) and func.id in IO_BUILTINS:
                found.append(f"{where}: call {func.id}()")
    return found


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_core_is_checked_file_by_file() -> None:
    names = {p.relative_to(CORE).as_posix() for p in core_files()}
    assert {"conversation.py", "table.py", "window.py", "handlers/customer.py"} <= names


@pytest.mark.parametrize("path", core_files(), ids=lambda p: p.relative_to(CORE).as_posix())
def test_state_machines_module_does_no_io(path: Path) -> None:
    assert impurities(path.read_text(), path.relative_to(CORE.parent).as_posix()) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import asyncpg",
        "import aiohttp.web",
        "from aiohttp import ClientSession",
        "import socket",
        "import time",
        "from time import monotonic",
        "import os",
        "from os import environ",
        "import random",
        "from random import choice",
        "import structlog",
        "from orchestrator.graph import client",
        "from datetime import datetime\nx = datetime.now()",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
        "from datetime import UTC, datetime\ndef f():\n    return datetime.now(UTC)",
        "data = open('x').read()",
        "print('hello')",
    ],
)
def test_the_checker_catches_io(snippet: str) -> None:
    assert impurities(snippet) != []


def test_the_checker_accepts_pure_code() -> None:
    source = (
        "from __future__ import annotations\n"
        "import dataclasses, json, re\n"
        "from datetime import datetime, timedelta\n"
        "from transitions import Machine\n"
        "def f(now: datetime) -> datetime:\n"
        "    return now + timedelta(hours=24)\n"
        "x = json.loads('{}')\n"
    )
    assert impurities(source) == []
