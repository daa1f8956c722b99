"""`orchestrator serve`: the service in the foreground until Ctrl-C.

Start-up opens, in this order: the listening sockets (so a port in use fails before anything
else starts), the database (embedded PostgreSQL unless DATABASE_URL is set; reachable and
migrated), in sandbox mode the Meta simulator, then the service (pool, Graph client,
sub-apps, workers and dispatchers). Every failure on the way is one line naming the fix
(`StartupError`); what was opened is closed in reverse order. On SIGINT/SIGTERM it stops
accepting requests, lets workers and dispatchers finish what they hold (claimed work is either
finished or rolled back and left claimable), closes the pool, then leaves the embedded
database (stopped when no other process uses it).

A sandbox restarts empty on both sides: the simulator keeps its world in memory, so the
database is emptied at start-up too (logged loudly); a half-remembered sandbox (old
conversations in the database, none on the phone) would skip disclosures and accept replies
Meta can no longer deliver.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket

import asyncpg
import structlog
from aiohttp import web

from orchestrator.config import Config
from orchestrator.errors import OrchestratorError, StoreUnavailable, SubAppLoadError
from orchestrator.ops.deadlines import header_timeout, listen
from orchestrator.store.database import DatabaseTarget, connect, resolve
from orchestrator.store.migrations import migrate

log = structlog.get_logger("orchestrator")

DB_CONNECT_TIMEOUT_S = 10.0


class StartupError(OrchestratorError):
    """The service cannot start; the message is one line with the fix."""


async def serve(config: Config, *, role: str = "all") -> int:
    """Run until SIGINT/SIGTERM. Raises StartupError (one line) when it cannot start.

    `role`: "all" serves HTTP and runs the background work; "ingress" only HTTP (webhooks,
    REST API); "workers" only the background work (no port). Any mix of processes may share
    one database: ordering and exclusivity live there."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    s = config.service
    async with contextlib.AsyncExitStack() as stack:
        # 1. Ports first: nothing else starts when one is taken.
        service_sock = None
        if role != "workers":
            service_sock = bind(s.host, s.port, "the orchestrator", "PORT")
            stack.callback(service_sock.close)
        sim_sock = None
        if config.sandbox:
            sim_sock = bind("127.0.0.1", s.simulator_port, "the Meta simulator", "SIMULATOR_PORT")
            stack.callback(sim_sock.close)
        # 2. The database: reachable, migrated (and emptied for a fresh sandbox).
        target = open_database(config)
        if target.server is not None:
            stack.callback(_leave_embedded, target)
        await prepare_database(config, target)
        # 3. The simulator, in sandbox mode.
        graph_base_url = None
        clock = None
        if config.sandbox:
            from orchestrator.sandbox.runner import WorldClock, start_simulator

            assert sim_sock is not None
            sim_runner, graph_base_url, world = await start_simulator(config, sock=sim_sock)
            stack.push_async_callback(sim_runner.cleanup)
            clock = WorldClock(world)  # /sim/clock/advance moves Meta's rules and our timers
        # 4. The service: its cleanup contexts (pool, runtime, workers) close in reverse.
        from orchestrator.app import create_app

        app = create_app(
            config,
            database_url=target.url,
            graph_base_url=graph_base_url,
            clock=clock,
            background=role != "ingress",
        )
        runner = make_runner(app, config)
        stack.push_async_callback(runner.cleanup)
        try:
            await runner.setup()
        except SubAppLoadError as exc:
            raise StartupError(f"a sub-app cannot start: {exc}") from exc
        except StoreUnavailable as exc:
            raise StartupError(_db_hint(target, str(exc))) from exc
        if service_sock is not None:
            listener = await listen(runner, service_sock, config)
            stack.push_async_callback(_close_listener, listener)  # before the runner's cleanup
        _log_started(config, target, role)
        await stop.wait()
        log.info("shutting_down")
    return 0


async def _close_listener(listener: asyncio.AbstractServer) -> None:
    listener.close()
    await listener.wait_closed()


def make_runner(app: web.Application, config: Config) -> web.AppRunner:
    """The service's runner: no access log (structured logs instead), our own signal
    handling, and the header deadline (`ops/deadlines.py`)."""
    return web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=header_timeout(config),
        # After an early answer (408, 413) aiohttp drains the unread body this long before
        # closing; a stalled client sends nothing, so keep it short.
        lingering_time=1.0,
    )


def bind(host: str, port: int, what: str, env_var: str) -> socket.socket:
    """A listening socket, or StartupError naming who holds the port and how to move."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            holder = _port_holder(port)
            raise StartupError(
                f"port {port} for {what} is already in use{holder}: stop that process, "
                f"or start with another port, e.g. {env_var}={_suggest_port(port)} make run"
            ) from None
        if exc.errno == errno.EACCES:
            raise StartupError(
                f"port {port} for {what} needs privileges: use a port above 1023 "
                f"(e.g. {env_var}=8080) behind a proxy"
            ) from None
        raise StartupError(f"cannot listen on {host}:{port} for {what}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def _port_holder(port: int) -> str:
    """` by <name> (pid N)` when the listening process can be found."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
                if conn.pid:
                    proc = psutil.Process(conn.pid)
                    cmd = " ".join(proc.cmdline()[:3]) or proc.name()
                    return f" by {cmd} (pid {conn.pid})"
    except Exception:  # best effort: the hint must never hide the real message
        return ""
    return ""


def _suggest_port(port: int) -> int:
    for candidate in range(port + 10, port + 100, 10):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
                return candidate
            except OSError:
                continue
    return port + 10


def open_database(config: Config) -> DatabaseTarget:
    try:
        return resolve(os.environ, config.service.data_dir)
    except StoreUnavailable as exc:
        raise StartupError(str(exc)) from exc
    except Exception as exc:  # pgserver, permissions, a full disk: one line, not a traceback
        raise StartupError(
            f"the embedded PostgreSQL in {config.service.data_dir} did not start: "
            f"{type(exc).__name__}: {exc}; set DATABASE_URL to use your own server"
        ) from exc


async def prepare_database(config: Config, target: DatabaseTarget) -> None:
    try:
        async with asyncio.timeout(DB_CONNECT_TIMEOUT_S), connect(target.url) as conn:
            await migrate(conn)
            if config.sandbox:
                await _reset_sandbox(conn, target)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise StartupError(_db_hint(target, f"{type(exc).__name__}: {exc}")) from exc


def _db_hint(target: DatabaseTarget, reason: str) -> str:
    if target.embedded:
        return (
            f"cannot use the embedded PostgreSQL at {target.display} ({reason}); "
            "stop other `orchestrator` processes or run `make clean` for a fresh database"
        )
    return (
        f"cannot connect to PostgreSQL at {target.display} (DATABASE_URL) ({reason}); "
        "check that the server runs and accepts this user and database, or unset "
        "DATABASE_URL to use the embedded server"
    )


async def _reset_sandbox(conn: asyncpg.Connection, target: DatabaseTarget) -> None:
    """Empty every table but the migration log: the simulator starts with an empty world."""
    tables = [
        r["name"]
        for r in await conn.fetch(
            "SELECT quote_ident(tablename) AS name FROM pg_tables"
            " WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'"
        )
    ]
    count = 0
    if "conversations" in tables:
        count = await conn.fetchval("SELECT count(*) FROM conversations")
    if tables:
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    log.warning(
        "sandbox_reset",
        message="SANDBOX RESET: the simulator starts empty, so the sandbox database was "
        "emptied too (conversation ids start at 1 again)",
        conversations_dropped=count,
        database=target.display,
    )


def _leave_embedded(target: DatabaseTarget) -> None:
    target.server.cleanup()
    if target.server.is_running():  # another process still uses it
        log.info("embedded_database_left", reason="still used by another process")
    else:
        log.info("embedded_database_stopped")


def _log_started(config: Config, target: DatabaseTarget, role: str) -> None:
    s = config.service
    log.info(
        "database",
        url=target.display,
        embedded=target.embedded,
        hint=None if target.embedded else "DATABASE_URL is set",
    )
    log.info(
        "listening" if role != "workers" else "working",
        url=f"http://{s.host}:{s.port}" if role != "workers" else None,
        role=role,
        mode=s.mode,
        workers=s.workers if role != "ingress" else 0,
        max_in_flight=s.max_in_flight if role != "ingress" else 0,
        config=config.path,
    )
    for acc in config.accounts:
        log.info(
            "account",
            name=acc.name,
            instagram_account_id=acc.instagram_account_id,
            page_id=acc.page_id,
            locale=acc.locale,
            login=acc.login,
            channels=list(acc.channels),
        )
    for app_cfg in config.apps:
        log.info(
            "app",
            name=app_cfg.name,
            app_id=app_cfg.app_id,
            role=app_cfg.role,
            kind=app_cfg.kind,
            receives=app_cfg.handler or app_cfg.url or "REST API only",
            webhook=f"{s.public_url}/webhooks/{app_cfg.name}",
        )
    if config.sandbox:
        sim = f"http://127.0.0.1:{s.simulator_port}"
        log.info(
            "sandbox",
            message="SANDBOX MODE: a local Meta simulator stands in for Meta; "
            "no real credentials are used",
            phone=f"{sim}/phone",
            simulator=sim,
            placeholders=len(config.generated_secrets),
        )
