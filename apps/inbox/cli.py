"""`orchestrator agents add|list|disable`: agent accounts of the built-in inbox."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from typing import Any


def register(sub: Any, parents: Sequence[argparse.ArgumentParser] = ()) -> None:
    """`parents`: options every command shares (`--config`, `--debug`)."""
    p = list(parents)
    agents = sub.add_parser("agents", help="agent accounts of the built-in inbox", parents=p)
    agents_sub = agents.add_subparsers(dest="agents_command", required=True, metavar="ACTION")
    add = agents_sub.add_parser(
        "add", help="create an agent (prints a generated password)", parents=p
    )
    add.add_argument("login")
    add.add_argument("--name", help="the name customers' transcripts show (default: login)")
    add.add_argument("--role", choices=["agent", "admin"], help="default: agent")
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin instead of generating one",
    )
    add.add_argument(
        "--reset", action="store_true", help="set a new password (and role) for an existing agent"
    )
    agents_sub.add_parser("list", help="list agents", parents=p)
    disable = agents_sub.add_parser(
        "disable", help="disable an agent and end its sessions", parents=p
    )
    disable.add_argument("login")


async def run(config: Any, args: argparse.Namespace) -> int:
    from apps.inbox.agents import (
        AgentError,
        add_agent,
        disable_agent,
        generate_password,
        list_agents,
    )
    from orchestrator.store.database import connect, resolve
    from orchestrator.store.migrations import migrate

    target = resolve(os.environ, config.service.data_dir)
    try:
        async with connect(target.url) as conn:
            await migrate(conn)
            if args.agents_command == "add":
                generated = not args.password_stdin
                if generated:
                    password = generate_password()
                elif sys.stdin.isatty():
                    password = getpass.getpass("password: ")
                else:
                    password = sys.stdin.readline().rstrip("\n")
                await add_agent(
                    conn,
                    args.login,
                    password,
                    display_name=args.name,
                    role=args.role,
                    reset=args.reset,
                    generated=generated,
                )
                role = args.role or ("role kept" if args.reset else "agent")
                print(f"agent {args.login.lower()} ({role}) saved")
                if generated:
                    print(f"password: {password}")
                return 0
            if args.agents_command == "list":
                rows = await list_agents(conn)
                for r in rows:
                    status = "disabled" if r["disabled_at"] else "active"
                    print(f"{r['login']:<24} {r['role']:<6} {status:<9} {r['display_name']}")
                print(f"{len(rows)} agent(s)")
                return 0
            if await disable_agent(conn, args.login):
                print(f"agent {args.login.lower()} disabled; its sessions ended")
                return 0
            print(f"no agent {args.login!r}", file=sys.stderr)
            return 1
    except AgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
