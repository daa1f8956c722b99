"""The command line as an operator uses it: check-config, diagram, migrate, dead letters."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from orchestrator.cli import main
from tests.conftest import ROOT


def test_check_config_reports_every_problem_with_its_key_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_MODE", "live")
    for var in ("BOT_APP_SECRET", "SUPPORT_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    code = main(["--config", str(ROOT / "config" / "orchestrator.toml"), "check-config"])
    err = capsys.readouterr().err
    assert code == 2
    assert "apps[0].app_secret: environment variable BOT_APP_SECRET is not set" in err
    assert "apps[1].api_key: environment variable SUPPORT_API_KEY is not set" in err


def test_check_config_accepts_the_shipped_sandbox_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ORCHESTRATOR_MODE", raising=False)
    assert main(["--config", str(ROOT / "config" / "orchestrator.toml"), "check-config"]) == 0
    out = capsys.readouterr().out
    assert "OK (sandbox mode)" in out and "app bot: id 1111111111, primary, bot" in out
    assert "receives via apps.faq_bot:FaqBot (inline, in the worker's step)" in out


def test_check_config_says_a_handler_without_inline_goes_through_the_outbox(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The integrator's first LLM bot: check-config says how it will be called."""
    monkeypatch.delenv("ORCHESTRATOR_MODE", raising=False)
    text = (ROOT / "config" / "orchestrator.toml").read_text(encoding="utf-8")
    config = tmp_path / "orchestrator.toml"
    config.write_text(
        text.replace("apps.faq_bot:FaqBot", "tests.e2e.test_slow_handler:GatedBot"),
        encoding="utf-8",
    )
    assert main(["--config", str(config), "check-config"]) == 0
    out = capsys.readouterr().out
    assert (
        "receives via tests.e2e.test_slow_handler:GatedBot (through the outbox, in its own "
        "lane: the class does not declare inline = True)" in out
    )


def test_diagram_prints_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stateDiagram-v2") and "pending_human --> human" in out


async def test_dead_letters_list_and_replay(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    conn = await asyncpg.connect(db_url)
    try:
        cid = await conn.fetchval(
            "INSERT INTO conversations (account_id, customer_id) VALUES ('1', '2') RETURNING id"
        )
        dead = await conn.fetchval(
            "INSERT INTO outbox (conversation_id, kind, app, payload, status, attempts, last_error)"
            " VALUES ($1, 'deliver', 'support', '{}', 'dead', 8, 'vendor unreachable') RETURNING id",
            cid,
        )
    finally:
        await conn.close()
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("ORCHESTRATOR_MODE", "sandbox")
    config = str(ROOT / "config" / "orchestrator.toml")
    # The CLI runs its own event loop: call it from a worker thread, as a terminal would.
    code = await asyncio.to_thread(main, ["--config", config, "dead-letters", "list"])
    out = capsys.readouterr().out
    assert code == 0 and "vendor unreachable" in out and "1 dead letter(s)" in out
    code = await asyncio.to_thread(main, ["--config", config, "dead-letters", "replay", str(dead)])
    assert code == 0 and "replayed 1 row(s)" in capsys.readouterr().out
    conn = await asyncpg.connect(db_url)
    try:
        row = await conn.fetchrow("SELECT status, attempts FROM outbox WHERE id = $1", dead)
    finally:
        await conn.close()
    assert (row["status"], row["attempts"]) == ("pending", 0)
    code = await asyncio.to_thread(main, ["--config", config, "dead-letters", "replay", "999999"])
    assert code == 1


async def test_agents_add_list_disable(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import io

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("ORCHESTRATOR_MODE", "sandbox")
    config = str(ROOT / "config" / "orchestrator.toml")

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["--config", config, "agents", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, _ = await asyncio.to_thread(cli, "add", "Zoe", "--role", "admin", "--name", "Zoe Z")
    assert code == 0 and "agent zoe (admin) saved" in out
    password = out.split("password: ")[1].strip()
    assert len(password) >= 12
    code, _, err = await asyncio.to_thread(cli, "add", "zoe")
    assert code == 1 and "exists" in err
    code, _, err = await asyncio.to_thread(cli, "add", "Not Valid!")
    assert code == 1 and "lowercase" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("a chosen passphrase\n"))
    code, out, _ = await asyncio.to_thread(cli, "add", "zoe", "--password-stdin", "--reset")
    assert code == 0 and "password:" not in out
    code, out, _ = await asyncio.to_thread(cli, "list")
    assert code == 0 and "zoe" in out and "admin" in out and "active" in out
    code, out, _ = await asyncio.to_thread(cli, "disable", "zoe")
    assert code == 0 and "disabled" in out
    code, out, _ = await asyncio.to_thread(cli, "list")
    assert "disabled" in out
    code, _, err = await asyncio.to_thread(cli, "disable", "nobody")
    assert code == 1

    from apps.inbox.auth import SignInRefused, sign_in

    conn_pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        with pytest.raises(SignInRefused):
            await sign_in(conn_pool, "zoe", "a chosen passphrase", "test")
    finally:
        await conn_pool.close()


def test_check_config_names_each_missing_account_token_and_lists_token_sources(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Two accounts in a copy of the shipped config: the second names only the bot's token,
    so check-config (live mode) names the missing (account, app) pair and its key."""
    text = (ROOT / "config" / "orchestrator.toml").read_text(encoding="utf-8")
    second = (
        '\n[[accounts]]\nname = "shop2"\ninstagram_account_id = "17841400000000002"\n'
        'page_id = "100000000000002"\nlocale = "de"\n'
        '[accounts.tokens]\nbot = "${SHOP2_BOT_TOKEN}"\n'
    )
    first = '[accounts.tokens]\nbot = "${SHOP_BOT_TOKEN}"\nsupport = "${SHOP_SUPPORT_TOKEN}"\n'
    text = text.replace("\n[[apps]]", "\n" + first + second + "\n[[apps]]", 1)
    path = tmp_path / "two.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("ORCHESTRATOR_MODE", "live")
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(path))
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert "accounts[1].tokens.support: is required: app 'support' has no token for account" in err
    assert 'add support = "${SHOP2_SUPPORT_TOKEN}" under [accounts.tokens] of accounts[1]' in err

    monkeypatch.setenv("ORCHESTRATOR_MODE", "sandbox")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "token of support: accounts[1].tokens.support" in out
    assert "token of bot: accounts[0].tokens.bot" in out
