"""The embedded PostgreSQL survives `kill -9` (issue 10, item 3), with real processes.

After `kill -9` of the service, of PostgreSQL, or of both, a new `orchestrator serve` starts
at once and serves; a stopped (or killed) service never leaves PostgreSQL running. Every wait
is bounded; the assertions are about what happens, not how fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import ROOT

BOUND_S = 90.0  # generous: two cores shared by many test runs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = _free_port()
        self.sim_port = _free_port()
        self.data = workdir / "data"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
        env.update(
            PORT=str(self.port),
            SIMULATOR_PORT=str(self.sim_port),
            PYTHONPATH=str(ROOT),
        )
        config = (ROOT / "orchestrator" / "config" / "sandbox.toml").read_text()
        config, n = re.subn(r"(?m)^workers = .*$", f'workers = 1\ndata_dir = "{self.data}"', config)
        assert n == 1, "the sandbox config has no [service] workers line to replace"
        (self.workdir / "orchestrator.toml").write_text(config)
        with open(self.workdir / "serve.log", "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "orchestrator", "--config", "orchestrator.toml", "serve"],
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=log,
            )

    def ready(self) -> bool:
        """Wait until /readyz answers 200; False if the process died or the bound passed."""
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/readyz", timeout=5
                ) as resp:
                    if resp.status == 200 and json.load(resp).get("status") == "ready":
                        return True
            time.sleep(0.2)
        return False

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(BOUND_S)

    def output(self) -> str:
        return (self.workdir / "serve.log").read_text(errors="replace")[-3000:]

    def postmaster(self) -> int | None:
        try:
            pid = int((self.data / "pg" / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if psutil.pid_exists(pid) else None

    def postgres_processes(self) -> list[psutil.Process]:
        out = []
        for proc in psutil.process_iter(["name"]):
            with contextlib.suppress(psutil.Error):
                if proc.info["name"] == "postgres" and Path(proc.cwd()) == self.data / "pg":
                    out.append(proc)
        return out

    def no_postgres_left(self) -> bool:
        deadline = time.monotonic() + BOUND_S
        while time.monotonic() < deadline:
            if not self.postgres_processes():
                return True
            time.sleep(0.2)
        return False


@pytest.fixture
def service() -> Iterator[Service]:
    # Not pytest's tmp_path: pytest keeps its base folder private (0700, reset by every run),
    # and PostgreSQL runs as another user that must reach the data folder.
    workdir = Path(tempfile.mkdtemp(prefix="orchestrator-embedded-"))
    workdir.chmod(0o755)
    svc = Service(workdir)
    yield svc
    if svc.proc is not None and svc.proc.poll() is None:
        svc.proc.kill()
        svc.proc.wait(10)
    for proc in svc.postgres_processes():  # never leave a server behind, even on failure
        with contextlib.suppress(psutil.Error):
            proc.kill()
    shutil.rmtree(workdir, ignore_errors=True)


def test_kill_9_of_service_and_postgres_then_an_immediate_restart_serves(
    service: Service,
) -> None:
    service.start()
    assert service.ready(), service.output()
    postmaster = service.postmaster()
    assert postmaster is not None
    service.kill9()
    os.kill(postmaster, signal.SIGKILL)
    service.start()
    assert service.ready(), service.output()
    assert service.stop() == 0
    assert service.no_postgres_left(), [p.pid for p in service.postgres_processes()]


def test_a_killed_service_leaves_no_postgres_behind(service: Service) -> None:
    service.start()
    assert service.ready(), service.output()
    service.kill9()
    assert service.no_postgres_left(), [p.pid for p in service.postgres_processes()]
    service.start()  # and the next start is clean
    assert service.ready(), service.output()
    assert service.stop() == 0
    assert service.no_postgres_left()


def test_postgres_killed_under_a_running_service_comes_back(service: Service) -> None:
    service.start()
    assert service.ready(), service.output()
    postmaster = service.postmaster()
    assert postmaster is not None
    os.kill(postmaster, signal.SIGKILL)
    # A backend of the killed server may still answer /readyz for a moment: wait (bounded)
    # for the service to have started a new server, then for it to serve through that one.
    deadline = time.monotonic() + BOUND_S
    while service.postmaster() in (None, postmaster) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert service.postmaster() not in (None, postmaster), service.output()
    assert service.ready(), service.output()  # the same process serves again
    assert service.stop() == 0
    assert service.no_postgres_left()


def _post(url: str, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def _conversations(port: int) -> list[dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/conversations",
        headers={"Authorization": "Bearer sandbox-SUPPORT_API_KEY"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        data = json.load(resp)
    return list(data["conversations"] if isinstance(data, dict) else data)


def test_a_restarted_sandbox_is_fresh_on_both_sides(service: Service) -> None:
    """The simulator forgets its world on restart, so the database is emptied too (issue 11,
    item 4): never an empty phone over a database that remembers old conversations."""
    service.start()
    assert service.ready(), service.output()
    _post(
        f"http://127.0.0.1:{service.sim_port}/sim/customers/1234567890123456/say", {"text": "Hallo"}
    )
    deadline = time.monotonic() + BOUND_S
    while not _conversations(service.port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _conversations(service.port)
    assert service.stop() == 0
    service.start()
    assert service.ready(), service.output()
    assert _conversations(service.port) == []
    assert "SANDBOX RESET" in (service.workdir / "serve.log").read_text()
    assert service.stop() == 0
