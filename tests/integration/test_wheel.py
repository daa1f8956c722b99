"""A wheel that runs anywhere (issue 11, item 3): build it, install it into a fresh virtualenv,
start `orchestrator serve` from an empty directory with the built-in sandbox config, then stop
it. Package data (SQL, the simulator's page, the sandbox config, the FAQ rules) must be inside
the wheel; nothing may be read relative to a source checkout."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.test_embedded_recovery import Service, _free_port

PIP_TIMEOUT_S = 600  # installs from the package index (or its local cache)


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="orchestrator-wheel-"))
    work.chmod(0o755)
    try:
        wheels = work / "wheels"
        # Built from a copy: setuptools writes build/ into the source tree it builds.
        source = work / "source"
        shutil.copytree(
            ROOT,
            source,
            ignore=shutil.ignore_patterns(
                ".git",
                ".venv",
                ".pgdata",
                ".pgtest",
                "build",
                "*.egg-info",
                "__pycache__",
                ".mypy_cache",
                ".ruff_cache",
                ".pytest_cache",
            ),
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "-w",
                str(wheels),
                str(source),
            ],
            check=True,
            timeout=PIP_TIMEOUT_S,
            capture_output=True,
        )
        (wheel,) = wheels.glob("*.whl")
        venv = work / "venv"
        subprocess.run(
            [getattr(sys, "_base_executable", sys.executable), "-m", "venv", str(venv)],
            check=True,
            timeout=120,
        )
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)],
            check=True,
            timeout=PIP_TIMEOUT_S,
            capture_output=True,
        )
        yield venv
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.read()


@pytest.mark.slow
def test_the_installed_wheel_serves_from_any_directory(installed: Path) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="orchestrator-anywhere-"))
    workdir.chmod(0o755)
    port, sim_port = _free_port(), _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "PORT", "PYTHONPATH", "ORCHESTRATOR_CONFIG", "VIRTUAL_ENV")
    }
    env.update(PORT=str(port), SIMULATOR_PORT=str(sim_port))
    probe = Service(workdir)
    probe.data = workdir / ".pgdata"  # the built-in config's data_dir, relative to cwd
    try:
        with open(workdir / "serve.log", "ab") as log:
            proc = subprocess.Popen(
                [str(installed / "bin" / "orchestrator"), "serve"],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=log,
            )
        probe.proc = proc  # type: ignore[assignment]
        probe.port = port
        assert probe.ready(), probe.output()
        # The bot answers from the FAQ rules inside the wheel: a greeting gets its reply.
        body = json.dumps({"text": "Hallo"}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{sim_port}/sim/customers/1234567890123456/say",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status == 200
        deadline = time.monotonic() + 60
        texts: list[str] = []
        while time.monotonic() < deadline and not any("Öffnungszeiten" in t for t in texts):
            with contextlib.suppress(OSError, urllib.error.URLError):
                _, raw = _get(f"http://127.0.0.1:{sim_port}/sim/customers/1234567890123456")
                texts = [m.get("text") or "" for m in json.loads(raw).get("timeline", [])]
            time.sleep(0.2)
        assert any("Öffnungszeiten" in t for t in texts), (texts, probe.output())
        status, page = _get(f"http://127.0.0.1:{sim_port}/phone")
        assert status == 200 and b"<html" in page.lower()
        assert "built-in sandbox config" in (workdir / "serve.log").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(90) == 0
        assert probe.no_postgres_left()
    finally:
        if probe.proc is not None and probe.proc.poll() is None:
            probe.proc.kill()
        for leftover in probe.postgres_processes():
            leftover.kill()
        shutil.rmtree(workdir, ignore_errors=True)
