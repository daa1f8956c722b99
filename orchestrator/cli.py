"""`orchestrator` command line: serve, migrate, check-config, diagram, scenarios, sandbox,
dead-letters, agents."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

import structlog

from apps.inbox import cli as inbox_cli
from orchestrator.config import Config, load_config
from orchestrator.errors import ConfigError, OrchestratorError

log = structlog.get_logger("orchestrator")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="orchestrator", description=__doc__)
    parser.add_argument(
        "--config", help="config file (default: $ORCHESTRATOR_CONFIG or config/orchestrator.toml)"
    )
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
    subscribe = sub.add_parser(
        "subscribe", help="subscribe every app to every account's webhooks, then check"
    )
    subscribe.add_argument(
        "--check", action="store_true", help="only compare Meta's subscriptions with ours"
    )
    dead = sub.add_parser("dead-letters", help="list or replay dead-lettered outbox rows")
    dead_sub = dead.add_subparsers(dest="dead_command", required=True)
    dead_sub.add_parser("list")
    replay = dead_sub.add_parser("replay")
    replay.add_argument("ids", nargs="+", type=int)
    inbox_cli.register(sub)  # `agents add|list|disable` (the built-in inbox)
    args = parser.parse_args(argv)

    from orchestrator.ops import logs

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
            from orchestrator.sandbox.scenarios import run_cli

            return asyncio.run(run_cli(args.paths))
        if args.command == "sandbox":
            return asyncio.run(_sandbox(config, args))
        if args.command == "subscribe":
            return asyncio.run(_subscribe(config, check_only=args.check))
        if args.command == "dead-letters":
            return asyncio.run(_dead_letters(config, args))
        if args.command == "agents":
            return asyncio.run(inbox_cli.run(config, args))
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
    for acc in config.accounts:
        print(
            f"  account {acc.name}: instagram {acc.instagram_account_id}, page {acc.page_id}, "
            f"locale {acc.locale}, login {acc.login}"
        )
    for app in config.apps:
        how = app.handler or app.url or "REST API only"
        print(f"  app {app.name}: id {app.app_id}, {app.role}, {app.kind}, receives via {how}")
    if config.generated_secrets:
        print(f"  sandbox placeholders for: {', '.join(config.generated_secrets)}")
    return 0


async def _with_db(config: Config) -> Any:
    from orchestrator.store.database import resolve

    return resolve(os.environ, config.service.data_dir)


async def _migrate(config: Config) -> int:
    from orchestrator.store.database import connect
    from orchestrator.store.migrations import migrate

    target = await _with_db(config)
    async with connect(target.url) as conn:
        applied = await migrate(conn)
    print(f"applied {len(applied)} migration(s)" if applied else "schema is current")
    return 0


async def _subscribe(config: Config, *, check_only: bool) -> int:
    import aiohttp

    from orchestrator.graph import GraphClient
    from orchestrator.ops.subscriptions import subscribe_all

    s = config.service
    # In sandbox mode the simulator of a running `make run` stands in for Meta.
    sim = f"http://127.0.0.1:{s.simulator_port}" if config.sandbox else None
    async with aiohttp.ClientSession() as session:
        graph = GraphClient(
            session,
            api_version=s.graph_api_version,
            facebook_base_url=sim or s.facebook_graph_url,
            instagram_base_url=sim or s.instagram_graph_url,
        )
        reports = await subscribe_all(config, graph, check_only=check_only)
    for r in reports:
        print(f"{'ok ' if r.ok else 'ERR'}  account {r.account}  app {r.app}: {r.detail}")
    return 0 if all(r.ok for r in reports) else 1


async def _dead_letters(config: Config, args: argparse.Namespace) -> int:
    from orchestrator.store.database import connect
    from orchestrator.store.queries import q

    target = await _with_db(config)
    async with connect(target.url) as conn:
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
                async with session.post(f"{customer_url}/say", json={"text": args.text}) as resp:
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
    owner = data.get("owner_app_name") or data.get("owner_app_id") or "nobody"
    window = "open" if data.get("window_open") else "closed"
    print(f"-- thread owner: {owner} · 24h window {window}")
    for note in notes:
        print(f"-- {note}", file=sys.stderr)
    return 0


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


if __name__ == "__main__":
    sys.exit(main())
