"""What the benchmark measures: its own PostgreSQL, the real service started exactly as
`orchestrator serve` runs it (live mode, a TOML config with secrets from the environment),
and the baseline handler. Each runs in its own process, pinned when asked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import asyncpg

from tests.bench import procs

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "17841400000000001"
PAGE_ID = "100000000000001"
BOT_APP_ID = "1111111111"
SUPPORT_APP_ID = "2222222222"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_database(url: str, name: str) -> str:
    """Same server, another database (TCP URLs and pgserver's socket URLs alike)."""
    base, _, query = url.partition("?")
    head, _, _db = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


class Database:
    """PostgreSQL for the run: an embedded server of our own (pinnable, in a temporary
    folder unless `data_dir` is given) or the server of DATABASE_URL (not pinned)."""

    def __init__(self, url: str | None, data_dir: str | None) -> None:
        self._tmp: str | None = None
        self.server: Any = None
        if url:
            self.url, self.pid, self.embedded = url, None, False
            return
        if data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="ig-bench-pg-")
            data_dir = self._tmp
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset
            import pgserver

            self.server = pgserver.get_server(Path(data_dir), cleanup_mode="stop")
        self.url = self.server.get_uri()
        self.pid = self.server.get_pid()
        self.embedded = True

    def pin(self, cores: set[int]) -> None:
        if self.pid:
            procs.pin(procs.tree(self.pid), cores)

    async def create(self, name: str) -> str:
        admin = await asyncpg.connect(self.url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.execute(f"CREATE DATABASE {name}")
        finally:
            await admin.close()
        return with_database(self.url, name)

    async def drop(self, name: str) -> None:
        admin = await asyncpg.connect(self.url)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await admin.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def secrets_env() -> dict[str, str]:
    """Fresh secrets for one run, passed as environment variables like in production."""
    names = [
        "BOT_APP_SECRET",
        "BOT_VERIFY_TOKEN",
        "BOT_PAGE_TOKEN",
        "SUPPORT_APP_SECRET",
        "SUPPORT_VERIFY_TOKEN",
        "SUPPORT_PAGE_TOKEN",
        "SUPPORT_API_KEY",
    ]
    return {n: f"bench-{secrets.token_hex(12)}" for n in names}


def config_toml(
    graph_url: str,
    *,
    standby: bool = True,
    retention: str | None = None,
    workers: int | None = None,
) -> str:
    """Live mode, the echo bot as the primary in-process app and a human helpdesk in
    standby (as in config/orchestrator.toml), Graph hosts at the stand-in, rate limits
    lifted (the stand-in is not Meta: the benchmark measures the engine, not the limiter).
    `retention` (e.g. "2m"): `[service] retention`, for a soak that shows the tables
    bounded; None leaves the service's default. `workers`: `[service] workers`, likewise."""
    service_lines = f'retention = "{retention}"\n' if retention else ""
    if workers is not None:
        service_lines += f"workers = {workers}\n"
    return f"""\
# Written by tests/bench for one run.
[service]
mode = "live"
host = "127.0.0.1"
port = 8080                 # PORT overrides, per process
public_url = "https://bench.example.test"   # live mode requires an https public URL
facebook_graph_url = "{graph_url}"
instagram_graph_url = "{graph_url}"
{service_lines}
[[accounts]]
name = "bench-shop"
instagram_account_id = "{ACCOUNT_ID}"
page_id = "{PAGE_ID}"
locale = "de"
market = "DE"
login = "facebook"

[[apps]]
name = "bot"
app_id = "{BOT_APP_ID}"
role = "primary"
kind = "bot"
app_secret = "${{BOT_APP_SECRET}}"
verify_token = "${{BOT_VERIFY_TOKEN}}"
page_token = "${{BOT_PAGE_TOKEN}}"
handler = "tests.bench.echo_bot:EchoBot"

[[apps]]
name = "support"
app_id = "{SUPPORT_APP_ID}"
role = "secondary"
kind = "human"
app_secret = "${{SUPPORT_APP_SECRET}}"
verify_token = "${{SUPPORT_VERIFY_TOKEN}}"
page_token = "${{SUPPORT_PAGE_TOKEN}}"
api_key = "${{SUPPORT_API_KEY}}"
standby = {"true" if standby else "false"}

[handover]
pending_timeout = "10m"
human_idle_timeout = "4h"

[handover.escalation_keywords]
de = ["mensch", "mitarbeiter"]
en = ["human", "agent"]

[disclosure]
lapse = "24h"
default_locale = "en"

[disclosure.text]
de = "Hinweis: Sie schreiben mit einem automatisierten Assistenten."
en = "Please note: you are chatting with an automated assistant."

[rate_limits]
send_text = 1000000
send_media = 1000000
conversations = 1000000
thread_control = 1000000
private_reply_per_hour = 1000000
"""


def serve_supports_role() -> bool:
    """Whether `orchestrator serve --role` exists yet (ingress and workers apart)."""
    out = subprocess.run(
        [sys.executable, "-m", "orchestrator", "serve", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return "--role" in out.stdout


@dataclass
class Proc:
    """One child process (a service process or the baseline) and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int | None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join(text[-lines:])
        return ""

    async def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the service finishes what it holds), then SIGKILL after `timeout`.
        Waits without blocking the event loop: the Graph stand-in must keep answering
        while the service shuts down."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.popen.wait, timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                await asyncio.to_thread(self.popen.wait)
        if self._log is not None:
            self._log.close()
            self._log = None


def spawn(
    name: str,
    argv: list[str],
    env: dict[str, str],
    log_dir: Path | None,
    port: int | None,
    cores: set[int] | None,
) -> Proc:
    """Start one child with its output in `log_dir/<name>.log` (None: discarded, for long
    soaks whose logs would fill the disk)."""
    log_path = log_dir / f"{name}.log" if log_dir else Path(os.devnull)
    log = log_path.open("wb")

    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if cores:
        # At once, while the new interpreter is still starting: the threads and processes
        # it creates later inherit the affinity.
        procs.pin([popen.pid], cores)
    return Proc(name=name, popen=popen, log_path=log_path, port=port, _log=log)


def start_services(
    *,
    config_path: Path,
    database_url: str,
    env: dict[str, str],
    processes: int,
    split: bool,
    log_dir: Path | None,
    cores: set[int] | None,
) -> list[Proc]:
    """N x `orchestrator serve` (role all) on their own ports, or, with `split`, one
    ingress and N workers (needs `serve --role`)."""
    base = [sys.executable, "-m", "orchestrator", "--config", str(config_path), "serve"]
    roles: list[str | None] = [None] * processes
    if split:
        roles = ["ingress", *(["workers"] * processes)]
    out = []
    for i, role in enumerate(roles):
        port = free_port()
        argv = base + (["--role", role] if role else [])
        penv = {**env, "DATABASE_URL": database_url, "PORT": str(port)}
        name = f"service-{i}" + (f"-{role}" if role else "")
        out.append(spawn(name, argv, penv, log_dir, port if role != "workers" else None, cores))
    return out


async def wait_ready(procs_: list[Proc], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        for p in procs_:
            if p.port is None:
                continue
            url = f"http://127.0.0.1:{p.port}/readyz"
            while True:
                if p.popen.poll() is not None:
                    raise RuntimeError(f"{p.name} exited with {p.popen.returncode}:\n{p.tail()}")
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with session.get(url) as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{p.name} was not ready within {timeout}s:\n{p.tail()}")
                await asyncio.sleep(0.1)
    # Processes without a port (workers) must at least still be running.
    for p in procs_:
        if p.popen.poll() is not None:
            raise RuntimeError(f"{p.name} exited with {p.popen.returncode}:\n{p.tail()}")
