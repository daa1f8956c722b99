"""`orchestrator` command line: serve, migrate, check-config, diagram, scenarios, sandbox,
dead-letters."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

import structlog

from orchestrator.config import Config, load_config
from orchestrator.errors import ConfigError, OrchestratorError

log = structlog.get_logger("orchestrator")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator", description=__doc__)
    parser.add_argument("--config", help="config file (default: $ORCHESTRATOR_CONFIG or "
                        "config/orchestrator.toml)")  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service (and, in sandbox mode, the Meta simulator)")
    sub.add_parser("migrate", help="apply pending database migrations")
    sub.add_parser("check-config", help="validate the config file and report every mistake")
    sub.add_parser("diagram", help="print the conversation state machine as Mermaid")
    sub.add_parser("table", help="print the full transition table (Markdown)")
    scen = sub.add_parser("scenarios", help="QA scenarios")
    scen_sub = scen.add_subparsers(dest="scenario_command", required=True)
    run = scen_sub.add_parser("run", help="run scenario files (default: tests/scenarios)")
    run.add_argument("paths", nargs="*")
    sandbox = sub.add_parser("sandbox", help="play the customer against a running sandbox")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    say = sandbox_sub.add_parser("say", help="send a customer message")
    say.add_argument("text")
    say.add_argument("--customer", default="1234567890123456", help="the customer's IGSID")
    show = sandbox_sub.add_parser("show", help="show what the customer received")
    show.add_argument("--customer", default="1234567890123456")
    dead = sub.add_parser("dead-letters", help="list or replay dead-lettered outbox rows")
    dead_sub = dead.add_subparsers(dest="dead_command", required=True)
    dead_sub.add_parser("list")
    replay = dead_sub.add_parser("replay")
    replay.add_argument("ids", nargs="+", type=int)
    args = parser.parse_args(argv)

    from orchestrator import logs

    logs.configure()
    try:
        if args.command == "diagram":
            from state_machines.diagram import mermaid

            print(mermaid())
            return 0
        if args.command == "table":
            from state_machines.diagram import markdown_table

            print(markdown_table())
            return 0
        config = _config(args.config)
        if args.command == "check-config":
            return _check_config(config)
        if args.command == "serve":
            from orchestrator.serve import serve

            return asyncio.run(serve(config))
        if args.command == "migrate":
            return asyncio.run(_migrate(config))
        if args.command == "scenarios":
            from orchestrator.scenarios import run_cli

            return asyncio.run(run_cli(args.paths))
        if args.command == "sandbox":
            return asyncio.run(_sandbox(config, args))
        if args.command == "dead-letters":
            return asyncio.run(_dead_letters(config, args))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 2


def _config(path: str | None) -> Config:
    return load_config(path)


def _check_config(config: Config) -> int:
    print(f"{config.path}: OK ({config.service.mode} mode)")
    for a in config.accounts:
        print(f"  account {a.name}: instagram {a.instagram_account_id}, page {a.page_id}, "
              f"locale {a.locale}, login {a.login}")  # fmt: skip
    for a in config.apps:
        how = a.handler or a.url or "REST API only"
        print(f"  app {a.name}: id {a.app_id}, {a.role}, {a.kind}, receives via {how}")
    if config.generated_secrets:
        print(f"  sandbox placeholders for: {', '.join(config.generated_secrets)}")
    return 0


async def _with_db(config: Config) -> Any:
    from orchestrator.database import resolve

    return resolve(os.environ, config.service.data_dir)


async def _migrate(config: Config) -> int:
    from orchestrator.database import connect
    from orchestrator.migrations import migrate

    target = await _with_db(config)
    async with connect(target.url) as conn:
        applied = await migrate(conn)
    print(f"applied {len(applied)} migration(s)" if applied else "schema is current")
    return 0


async def _dead_letters(config: Config, args: argparse.Namespace) -> int:
    from orchestrator.database import connect
    from orchestrator.queries import q

    target = await _with_db(config)
    async with connect(target.url) as conn:
        if args.dead_command == "list":
            rows = await conn.fetch(q("outbox_dead_list"), None, 500)
            for r in rows:
                print(f"{r['id']:>8}  conv {r['conversation_id']:<6} {r['kind']:<15} "
                      f"{r['app']:<12} attempts {r['attempts']:<3} {r['last_error']}")  # fmt: skip
            print(f"{len(rows)} dead letter(s)")
            return 0
        replayed = 0
        for outbox_id in args.ids:
            row = await conn.fetchrow(q("outbox_replay"), outbox_id)
            if row is None:
                print(f"{outbox_id}: not a dead letter", file=sys.stderr)
            else:
                replayed += 1
        await conn.execute(q("notify_outbox"))
        print(f"replayed {replayed} row(s)")
        return 0 if replayed == len(args.ids) else 1


async def _sandbox(config: Config, args: argparse.Namespace) -> int:
    import aiohttp

    base = f"http://127.0.0.1:{config.service.simulator_port}"
    async with aiohttp.ClientSession() as session:
        try:
            if args.sandbox_command == "say":
                async with session.post(
                    f"{base}/sim/customers/{args.customer}/say", json={"text": args.text}
                ) as resp:
                    resp.raise_for_status()
                # Give the orchestrator a moment to answer, then show the chat.
                await asyncio.sleep(1.5)
            async with session.get(f"{base}/sim/customers/{args.customer}") as resp:
                resp.raise_for_status()
                data = await resp.json()
        except aiohttp.ClientError as exc:
            print(f"the sandbox is not reachable at {base} ({exc}); start it with `make run`",
                  file=sys.stderr)  # fmt: skip
            return 1
    for m in data.get("messages", []):
        who = "you" if m.get("direction") == "in" or m.get("from") == "customer" else m.get(
            "app_name", m.get("app", "business")
        )
        print(f"{who:>10}: {m.get('text') or json.dumps(m.get('message', m))}")
    return 0


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


if __name__ == "__main__":
    sys.exit(main())
