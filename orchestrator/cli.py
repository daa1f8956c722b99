"""`orchestrator` command line: serve, check-config, doctor, subscribe, migrate, dead-letters,
sandbox, scenarios, agents, diagram, table.

Every command accepts `--config PATH` (before or after the command's name) and `--debug`.
Failures are one line naming the fix (exit 1; configuration mistakes: the full list, exit 2);
`--debug` adds the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import traceback
from collections.abc import AsyncIterator
from typing import Any

import structlog

from orchestrator.config import Config, load_config
from orchestrator.errors import ConfigError, OrchestratorError

log = structlog.get_logger("orchestrator")

CONFIG_HELP = (
    "config file (default: $ORCHESTRATOR_CONFIG, else config/orchestrator.toml in the working "
    "directory, else the built-in sandbox config)"
)
# Commands whose output is a report: logs below warnings would mix into it.
QUIET_COMMANDS = ("check-config", "doctor", "subscribe", "sandbox", "scenarios", "dead-letters")


def build_parser() -> argparse.ArgumentParser:
    # `--config`/`--debug` may come before or after the command: the copy on each
    # sub-command defaults to SUPPRESS, so it never overwrites a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks and debug logs",
    )
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Handover orchestrator for Instagram messaging (bot and human support).",
        epilog="Run `orchestrator COMMAND --help` for a command's options.",
    )
    parser.add_argument("--config", default=None, help=CONFIG_HELP)
    parser.add_argument("--debug", action="store_true", default=False, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, description=help, parents=[common])

    serve_cmd = command("serve", "run the service (and, in sandbox mode, the Meta simulator)")
    serve_cmd.add_argument(
        "--role",
        choices=("all", "ingress", "workers"),
        default="all",
        help="all: HTTP (webhooks, API) and background work; ingress: HTTP only; workers: "
        "event workers, dispatchers and timers only, no port (run several of any kind "
        "against one database)",
    )
    command("check-config", "validate the config file and report every mistake")
    command(
        "doctor",
        "check with Meta, per account and app, everything needed before going live",
    )
    subscribe = command("subscribe", "subscribe every app to every account's webhooks, then check")
    subscribe.add_argument(
        "--check", action="store_true", help="only compare Meta's subscriptions with ours"
    )
    command("migrate", "apply pending database migrations")
    dead = command("dead-letters", "list or replay dead-lettered outbox rows")
    dead_sub = dead.add_subparsers(dest="dead_command", required=True, metavar="ACTION")
    dead_sub.add_parser("list", help="list dead letters (newest first)", parents=[common])
    replay = dead_sub.add_parser("replay", help="send dead letters again", parents=[common])
    replay.add_argument("ids", nargs="+", type=int, metavar="ID", help="outbox row ids to replay")
    sandbox = command("sandbox", "play the customer against a running sandbox")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True, metavar="ACTION")
    say = sandbox_sub.add_parser("say", help="send a customer message", parents=[common])
    say.add_argument("text", help="what the customer writes")
    say.add_argument("--customer", default="1234567890123456", help="the customer's IGSID or PSID")
    say.add_argument(
        "--channel",
        choices=("instagram", "messenger"),
        default=None,
        help="a new customer writes on Instagram (default) or to the Page on Messenger",
    )
    show = sandbox_sub.add_parser("show", help="show what the customer received", parents=[common])
    show.add_argument("--customer", default="1234567890123456", help="the customer's IGSID")
    scen = command("scenarios", "QA scenarios: run, check, reference, coverage")
    from orchestrator.sandbox.scenario_commands import add_commands

    add_commands(scen, parents=[common])
    from apps.inbox import cli as inbox_cli  # the built-in inbox's accounts

    inbox_cli.register(sub, parents=[common])  # `agents add|list|disable`
    command("diagram", "print the conversation state machine as Mermaid")
    command("table", "print the full transition table (Markdown)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))

    from orchestrator.ops import logs

    quiet = args.command in QUIET_COMMANDS and not debug
    logs.configure(level="DEBUG" if debug else ("CRITICAL" if quiet else "INFO"))
    try:
        return _run(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except OrchestratorError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {exc} "
            "(run again with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "diagram":
        from state_machines.diagram import mermaid

        print(mermaid())
        return 0
    if args.command == "table":
        from state_machines.diagram import markdown_table

        print(markdown_table())
        return 0
    if args.command == "scenarios":  # each scenario brings its own config
        from orchestrator.sandbox.scenario_commands import main as scenarios_main

        return scenarios_main(args)
    config = _config(args.config)
    if args.command == "check-config":
        return _check_config(config)
    if args.command == "serve":
        from orchestrator.serve import serve

        return asyncio.run(serve(config, role=args.role))
    if args.command == "doctor":
        return asyncio.run(_doctor(config))
    if args.command == "migrate":
        return asyncio.run(_migrate(config))
    if args.command == "sandbox":
        return asyncio.run(_sandbox(config, args))
    if args.command == "subscribe":
        return asyncio.run(_subscribe(config, check_only=args.check))
    if args.command == "dead-letters":
        return asyncio.run(_dead_letters(config, args))
    if args.command == "agents":
        from apps.inbox import cli as inbox_cli

        return asyncio.run(inbox_cli.run(config, args))
    return 2


def _config(path: str | None) -> Config:
    return load_config(path)


def _check_config(config: Config) -> int:
    print(f"{config.path}: OK ({config.service.mode} mode)")
    for acc in config.accounts:
        print(
            f"  account {acc.name}: instagram {acc.instagram_account_id}, page {acc.page_id}, "
            f"locale {acc.locale}, login {acc.login}, channels {', '.join(acc.channels)}"
        )
        # Every (account, app) pair and where its token comes from (never the token itself).
        for app in config.apps:
            print(f"    token of {app.name}: {config.token_key(acc, app)}")
    from orchestrator.engine.subapps import AppContext, how_called, load_subapp

    for i, app in enumerate(config.apps):
        how = app.handler or app.url or "REST API only"
        # Built again as `serve` builds it (the config check built it once already).
        called = how_called(app, load_subapp(i, app, AppContext(app=app, config=config)))
        print(
            f"  app {app.name}: id {app.app_id}, {app.role}, {app.kind}, receives via {how}"
            f" ({called})"
        )
    if config.generated_secrets:
        print(f"  sandbox placeholders for: {', '.join(config.generated_secrets)}")
    return 0


@contextlib.asynccontextmanager
async def _with_db(config: Config) -> AsyncIterator[Any]:
    """A connection to DATABASE_URL or the embedded server (left again afterwards)."""
    from orchestrator.serve import open_database
    from orchestrator.store.database import connect

    target = open_database(config)
    try:
        async with connect(target.url) as conn:
            yield conn
    finally:
        if target.server is not None:
            target.server.cleanup()


async def _migrate(config: Config) -> int:
    from orchestrator.store.migrations import migrate

    async with _with_db(config) as conn:
        applied = await migrate(conn)
    print(f"applied {len(applied)} migration(s)" if applied else "schema is current")
    return 0


def _graph(config: Config, session: Any) -> Any:
    from orchestrator.graph import GraphClient

    s = config.service
    # In sandbox mode the simulator of a running `make run` stands in for Meta.
    sim = f"http://127.0.0.1:{s.simulator_port}" if config.sandbox else None
    return GraphClient(
        session,
        api_version=s.graph_api_version,
        facebook_base_url=sim or s.facebook_graph_url,
        instagram_base_url=sim or s.instagram_graph_url,
    )


async def _doctor(config: Config) -> int:
    import aiohttp

    from orchestrator.ops.doctor import Doctor, render

    if config.sandbox:
        print(
            "sandbox mode: asking the simulator of a running `make run` instead of Meta\n",
            file=sys.stderr,
        )
    async with aiohttp.ClientSession() as session:
        checks = await Doctor(config, _graph(config, session), session).run()
    print(render(checks))
    return 1 if any(c.status == "fail" for c in checks) else 0


async def _subscribe(config: Config, *, check_only: bool) -> int:
    import aiohttp

    from orchestrator.ops.subscriptions import subscribe_all

    async with aiohttp.ClientSession() as session:
        reports = await subscribe_all(config, _graph(config, session), check_only=check_only)
    for r in reports:
        print(f"{'ok ' if r.ok else 'ERR'}  account {r.account}  app {r.app}: {r.detail}")
    return 0 if all(r.ok for r in reports) else 1


async def _dead_letters(config: Config, args: argparse.Namespace) -> int:
    from orchestrator.store.queries import q

    async with _with_db(config) as conn:
        if args.dead_command == "list":
            rows = await conn.fetch(q("outbox_dead_list"), None, 500)
            for r in rows:
                print(
                    f"{r['id']:>8}  conv {r['conversation_id']:<6} {r['kind']:<15} "
                    f"{r['app']:<12} attempts {r['attempts']:<3} {r['last_error']}"
                )
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
    """`sandbox say` / `sandbox show`: play the customer against a running sandbox.

    `say` posts the message to the simulator (which delivers the signed webhook), waits until
    the orchestrator has nothing left to do (its /metrics report no pending event and no open
    outbox row — behaviour, not a fixed sleep) and prints the chat from that message on;
    `show` prints the whole chat. Ports come from the config (`service.simulator_port`,
    `service.port` or env PORT), so `--config`/ORCHESTRATOR_CONFIG select another sandbox.
    """
    import aiohttp

    s = config.service
    sim = f"http://127.0.0.1:{s.simulator_port}"
    orch = f"http://127.0.0.1:{s.port}"
    customer_url = f"{sim}/sim/customers/{args.customer}"
    timeout = aiohttp.ClientTimeout(total=10)

    async def quiet(session: aiohttp.ClientSession) -> bool:
        async with session.get(f"{orch}/metrics") as resp:
            resp.raise_for_status()
            text = await resp.text()
        gauges = {"orchestrator_queue_depth": -1.0, "orchestrator_outbox_depth": -1.0}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in gauges:
                gauges[name] = float(value)
        return all(v == 0 for v in gauges.values())

    async def settle(session: aiohttp.ClientSession, bound: float = 15.0) -> str | None:
        """Wait until the orchestrator is idle twice in a row; a reason if it did not."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bound
        streak = 0
        while streak < 2:
            try:
                streak = streak + 1 if await quiet(session) else 0
            except (aiohttp.ClientError, TimeoutError) as exc:
                return f"the orchestrator is not reachable at {orch} ({exc})"
            if loop.time() > deadline:
                return f"the orchestrator was still busy after {bound:.0f}s"
            await asyncio.sleep(0.05)
        return None

    def line(m: dict[str, Any]) -> str:
        mine = m.get("direction") == "out"  # the simulator's view is the customer's phone
        who = "you" if mine else (m.get("app_name") or m.get("app_id") or "business")
        if m.get("deleted"):
            body = "(unsent)" if mine else "(deleted)"
        else:
            parts = [m.get("text") or ""]
            for a in m.get("attachments") or []:
                payload = a.get("payload") or {}
                ref = payload.get("url") or payload.get("title") or json.dumps(payload)
                parts.append(f"[{a.get('type') or 'attachment'}] {ref}")
            body = " ".join(p for p in parts if p)
        if m.get("tag"):
            body += f"  ({m['tag']})"
        reaction = m.get("business_reaction") if mine else m.get("customer_reaction")
        if reaction:
            body += f"  [{reaction}]"
        out = f"{who}: {body}"
        replies = [q.get("title") for q in m.get("quick_replies") or [] if q.get("title")]
        if replies:
            out += "\n     quick replies: " + " | ".join(f"[{t}]" for t in replies)
        return out

    notes: list[str] = []
    mid: str | None = None
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            if args.sandbox_command == "say":
                said = {"text": args.text}
                if args.channel:
                    said["channel"] = args.channel
                async with session.post(f"{customer_url}/say", json=said) as resp:
                    result = await resp.json(content_type=None)
                    if resp.status >= 400:
                        err = result.get("error") if isinstance(result, dict) else result
                        if isinstance(err, dict):
                            err = err.get("message")
                        print(f"the simulator refused the message: {err}", file=sys.stderr)
                        return 1
                mid = result.get("mid")
                failed = [d for d in result.get("deliveries", []) if not d.get("ok")]
                for d in failed:
                    notes.append(
                        f"webhook to {d.get('app')} failed: {d.get('error') or d.get('status')}"
                    )
                reason = await settle(session)
                if reason:
                    notes.append(reason)
            async with session.get(customer_url) as resp:
                resp.raise_for_status()
                data = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            print(
                f"the sandbox is not reachable at {sim} ({exc}); start it with `make run`",
                file=sys.stderr,
            )
            return 1
    timeline: list[dict[str, Any]] = data.get("timeline", [])
    if mid is not None:
        start = next((i for i, m in enumerate(timeline) if m.get("mid") == mid), 0)
        timeline = timeline[start:]
    if not timeline:
        print(f"(no messages with customer {args.customer} yet)")
    for m in timeline:
        print(line(m))
    if mid is not None and not any(m.get("direction") == "in" for m in timeline):
        notes.append("no reply")
    owner = data.get("owner_app_name") or data.get("owner_app_id")
    window = "open" if data.get("window_open") else "closed"
    # Same words as the phone page: no owner means the thread is idle (the default app answers).
    print(f"-- thread owner: {owner or 'idle (no app in control)'} · 24h window {window}")
    for note in notes:
        print(f"-- {note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
