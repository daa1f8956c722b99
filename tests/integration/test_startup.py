"""Start-up failures are one line with the fix; serve refuses a bad config with check-config's
list (issue 11, items 1 and 2). Real processes: the `orchestrator` command of this venv."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

ORCHESTRATOR = [sys.executable, "-m", "orchestrator"]
SANDBOX_CONFIG = ROOT / "orchestrator" / "config" / "sandbox.toml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
    full_env.update(env)
    full_env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        ORCHESTRATOR + args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60
    )


def test_port_in_use_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _run(["serve"], tmp_path, PORT=str(port), SIMULATOR_PORT=str(_free_port()))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: port {port} for the orchestrator is already in use")
    assert "PORT=" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / ".pgdata").exists()  # nothing else started


def test_simulator_port_in_use_names_simulator_port(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _run(["serve"], tmp_path, PORT=str(_free_port()), SIMULATOR_PORT=str(port))
    (line,) = result.stderr.strip().splitlines()
    assert "for the Meta simulator is already in use" in line and "SIMULATOR_PORT=" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = _run(
            ["serve", "--debug"], tmp_path, PORT=str(port), SIMULATOR_PORT=str(_free_port())
        )
    assert "Traceback" in result.stderr and "StartupError" in result.stderr


def test_unreachable_database_is_one_line_with_the_url_and_what_to_try(tmp_path: Path) -> None:
    url = f"postgresql://shop:secret@127.0.0.1:{_free_port()}/orders"
    result = _run(
        ["serve"],
        tmp_path,
        DATABASE_URL=url,
        PORT=str(_free_port()),
        SIMULATOR_PORT=str(_free_port()),
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1
    assert len(lines) == 1, result.stderr
    assert "cannot connect to PostgreSQL at postgresql://shop:***@127.0.0.1" in lines[0]
    assert "unset DATABASE_URL" in lines[0] and "secret" not in lines[0]


MISTAKES = [
    # (what the shipped file says, the mistake, the line check-config and serve must print)
    (
        'handler = "apps.faq_bot:FaqBot"',
        'handler = "apps.faq_bott:FaqBot"',
        "apps[0].handler: cannot import module 'apps.faq_bott'",
    ),
    ('locale = "de"', 'locle = "de"', "accounts[0].locle: unknown key; did you mean 'locale'?"),
    (
        'pending_timeout = "10m"',
        'pending_timout = "10m"',
        "handover.pending_timout: unknown key; did you mean 'pending_timeout'?",
    ),
    ('lapse = "24h"', 'lapes = "24h"', "disclosure.lapes: unknown key; did you mean 'lapse'?"),
    ("port = 8080", "prot = 8080", "service.prot: unknown key; did you mean 'port'?"),
    (
        "[disclosure.no_agent_text]",
        "[disclosure.no_agent_txt]",
        "disclosure.no_agent_txt: unknown section; did you mean 'no_agent_text'?",
    ),
]


def test_serve_refuses_a_bad_config_with_the_same_list_as_check_config(tmp_path: Path) -> None:
    text = SANDBOX_CONFIG.read_text()
    for old, new, _ in MISTAKES:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    checked = _run(["check-config", "--config", str(bad)], tmp_path)
    served = _run(["serve", "--config", str(bad)], tmp_path, PORT=str(_free_port()))
    assert checked.returncode == served.returncode == 2
    assert checked.stderr == served.stderr
    for _, _, line in MISTAKES:
        assert line in served.stderr
    assert "Traceback" not in served.stderr
    assert not (tmp_path / ".pgdata").exists()


def test_live_mode_with_http_public_url_is_refused(tmp_path: Path) -> None:
    text = SANDBOX_CONFIG.read_text().replace(
        'mode = "sandbox"', 'mode = "live"\npublic_url = "http://127.0.0.1:8080"'
    )
    cfg = tmp_path / "live.toml"
    cfg.write_text(text)
    secrets = {
        f"{app}_{kind}": "x"
        for app in ("BOT", "SUPPORT")
        for kind in ("APP_SECRET", "VERIFY_TOKEN", "PAGE_TOKEN", "API_KEY")
    }
    result = _run(["check-config", "--config", str(cfg)], tmp_path, **secrets)
    assert result.returncode == 2
    assert (
        "service.public_url: 'http://127.0.0.1:8080': Meta only calls webhooks over HTTPS"
        in result.stderr
    )


def test_help_lists_every_command() -> None:
    result = _run(["--help"], ROOT)
    for command in (
        "serve",
        "check-config",
        "doctor",
        "subscribe",
        "migrate",
        "dead-letters",
        "sandbox",
        "scenarios",
        "diagram",
        "table",
    ):
        assert command in result.stdout
