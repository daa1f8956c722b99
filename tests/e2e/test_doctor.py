"""`orchestrator doctor` end to end (issue 11, item 5): the simulator answers the same Graph
calls as Meta, the orchestrator serves its webhooks over real HTTPS, and the doctor reports a
correct setup as passing and every broken piece with its fix."""

from __future__ import annotations

import dataclasses
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from orchestrator.config import Config
from orchestrator.graph import GraphClient
from orchestrator.ops.doctor import Check, Doctor, render
from orchestrator.ops.subscriptions import FIELDS
from orchestrator.sandbox.runner import Sandbox
from orchestrator.sandbox.simulator.model import AppState
from orchestrator.sandbox.simulator.reads import normalise_fields
from tests.conftest import BOT_APP_ID, SUPPORT_APP_ID, config_data, make_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the test trusts it explicitly)."""
    if shutil.which("openssl") is None:
        pytest.fail("the doctor's HTTPS test needs the openssl command (Debian: openssl)")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
async def setup(
    certificate: tuple[Path, Path], db_url: str
) -> AsyncIterator[tuple[Sandbox, Config, ssl.SSLContext]]:
    """A correct go-live setup: HTTPS public URL served by the orchestrator, every app
    subscribed with every field, its dashboard webhook pointing at us, routing on."""
    cert, key = certificate
    tls_port = _free_port()
    data = config_data()
    data["service"]["public_url"] = f"https://127.0.0.1:{tls_port}"
    config = make_config(data)
    async with Sandbox(config, db_url) as sb:
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert, key)
        await web.TCPSite(sb._runners[1], "127.0.0.1", tls_port, ssl_context=server_ctx).start()
        for app in config.apps:  # what the App Dashboard would hold after a correct set-up
            state = sb.world.app_states[app.app_id]
            state.webhook_url = f"{config.service.public_url}/webhooks/{app.name}"
            state.fields = normalise_fields(FIELDS)
        client_ctx = ssl.create_default_context(cafile=str(cert))
        yield sb, config, client_ctx


async def run_doctor(
    sb: Sandbox, config: Config, ctx: ssl.SSLContext | None
) -> dict[tuple[str, str], Check]:
    assert sb.http is not None
    graph = GraphClient(
        sb.http,
        api_version=config.service.graph_api_version,
        facebook_base_url=sb.sim_url,
        instagram_base_url=sb.sim_url,
    )
    checks = await Doctor(config, graph, sb.http, ssl_context=ctx).run()
    print(render(checks))
    return {(c.scope.rsplit(" ", 1)[-1], c.name): c for c in checks}


async def test_a_correct_setup_passes(setup: tuple[Sandbox, Config, ssl.SSLContext]) -> None:
    sb, config, ctx = setup
    checks = await run_doctor(sb, config, ctx)
    failed = [c for c in checks.values() if c.status == "fail"]
    assert failed == []
    for app in ("bot", "support"):
        for name in (
            "token",
            "permissions",
            "page subscription",
            "app webhook",
            "conversations API",
            "webhook handshake",
        ):
            assert checks[(app, name)].status == "ok", checks[(app, name)]
    assert checks[("shop", "routing")].status == "ok"
    # Not readable through the Graph API: printed as manual steps with the place to set them.
    assert checks[("shop", "default app")].status == "manual"
    assert "bot (app id 1111111111)" in (checks[("shop", "default app")].fix or "")
    assert "Take control of conversations" in (checks[("shop", "take control")].fix or "")


async def test_every_broken_piece_is_reported_with_its_fix(
    setup: tuple[Sandbox, Config, ssl.SSLContext],
) -> None:
    sb, config, ctx = setup
    world = sb.world
    world.config = dataclasses.replace(
        world.config, routing_enabled=False, messaging_available=False
    )
    support: AppState = world.app_states[SUPPORT_APP_ID]
    support.scopes = frozenset({"instagram_basic", "pages_manage_metadata"})
    support.webhook_url = "https://old-host.example/hook"
    support.fields = normalise_fields(["messages"])
    world.unsubscribe(SUPPORT_APP_ID)
    checks = await run_doctor(sb, config, ctx)

    routing = checks[("shop", "routing")]
    assert routing.status == "fail" and "Instagram Conversation Routing" in (routing.fix or "")
    perms = checks[("support", "permissions")]
    assert perms.status == "fail" and "instagram_manage_messages" in perms.detail
    sub = checks[("support", "page subscription")]
    assert sub.status == "fail" and "orchestrator subscribe" in (sub.fix or "")
    hook = checks[("support", "app webhook")]
    assert hook.status == "fail" and "https://old-host.example/hook" in hook.detail
    assert "missing fields: messaging_postbacks" in hook.detail
    conv = checks[("support", "conversations API")]
    assert conv.status == "fail" and "36103" in (conv.fix or "")
    assert "Allow access to messages" in (conv.fix or "")


async def test_an_invalid_page_token_is_named(
    setup: tuple[Sandbox, Config, ssl.SSLContext],
) -> None:
    sb, config, ctx = setup
    sb.world.app_states[BOT_APP_ID].token_valid = False
    checks = await run_doctor(sb, config, ctx)
    token = checks[("bot", "token")]
    assert token.status == "fail" and "page_token is not valid" in token.detail
    assert "long-lived user token" in (token.fix or "")
    assert checks[("support", "token")].status == "ok"


async def test_a_wrong_app_secret_is_named(
    setup: tuple[Sandbox, Config, ssl.SSLContext],
) -> None:
    sb, config, ctx = setup
    data = config_data()
    data["service"]["public_url"] = config.service.public_url
    broken = make_config(data, env={**_env(), "BOT_APP_SECRET": "not-the-secret"})
    checks = await run_doctor(sb, broken, ctx)
    token = checks[("bot", "token")]
    assert token.status == "fail" and "app_secret" in (token.fix or "")


async def test_webhook_handshake_failures(
    setup: tuple[Sandbox, Config, ssl.SSLContext],
) -> None:
    sb, config, _ = setup
    # An untrusted certificate: Meta refuses self-signed ones, and so does the doctor.
    checks = await run_doctor(sb, config, None)
    shake = checks[("bot", "webhook handshake")]
    assert shake.status == "fail" and "TLS failed" in shake.detail
    # Nothing listening at the public URL.
    data = config_data()
    data["service"]["public_url"] = f"https://127.0.0.1:{_free_port()}"
    checks = await run_doctor(sb, make_config(data), None)
    shake = checks[("bot", "webhook handshake")]
    assert shake.status == "fail" and "not reachable" in shake.detail
    # A different verify token behind the public URL.
    data = config_data()
    data["service"]["public_url"] = config.service.public_url
    other = make_config(data, env={**_env(), "BOT_VERIFY_TOKEN": "another-deployment"})
    checks = await run_doctor(sb, other, setup[2])
    shake = checks[("bot", "webhook handshake")]
    assert shake.status == "fail" and "403" in shake.detail


def _env() -> dict[str, str]:
    from tests.conftest import TEST_ENV

    return dict(TEST_ENV)


async def test_the_command_checks_a_running_sandbox(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`orchestrator doctor` in sandbox mode asks the simulator of a running `make run`."""
    import asyncio

    from orchestrator.cli import main
    from orchestrator.config import load_config

    for var in ("ORCHESTRATOR_CONFIG", "ORCHESTRATOR_MODE", "DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    async with Sandbox(load_config(None, {}), db_url) as sb:
        monkeypatch.setenv("PORT", sb.url.rsplit(":", 1)[1])
        monkeypatch.setenv("SIMULATOR_PORT", sb.sim_url.rsplit(":", 1)[1])
        assert await asyncio.to_thread(main, ["doctor"]) == 0
        assert "0 failed" in capsys.readouterr().out
        sb.world.app_states[SUPPORT_APP_ID].scopes = frozenset({"instagram_basic"})
        assert await asyncio.to_thread(main, ["doctor"]) == 1
        out = capsys.readouterr().out
        assert "[FAIL] permissions: apps[1].page_token lacks instagram_manage_messages" in out


async def test_a_messenger_account_needs_the_messenger_fields_and_page_webhook(
    certificate: tuple[Path, Path], db_url: str
) -> None:
    """With channels = ["instagram", "messenger"] the Page subscription must carry the
    Messenger-only fields, and the app's dashboard needs a Page webhook."""
    data = config_data()
    data["accounts"][0]["channels"] = ["instagram", "messenger"]
    config = make_config(data)
    async with Sandbox(config, db_url) as sb:
        for app in config.apps:
            state = sb.world.app_states[app.app_id]
            state.webhook_url = f"{config.service.public_url}/webhooks/{app.name}"
            state.fields = normalise_fields(FIELDS)  # Instagram's fields only
        checks = await run_doctor(sb, config, None)
        sub = checks[("support", "page subscription")]
        assert sub.status == "fail" and "message_deliveries" in sub.detail
        assert checks[("support", "messenger webhook")].status == "ok"
        assert checks[("shop", "messenger routing")].status == "ok"
