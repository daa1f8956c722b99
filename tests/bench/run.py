"""`make bench`: the end-to-end benchmark (prints figures and writes JSON; asserts nothing).

The real service runs as `orchestrator serve` does (live mode, a TOML config, secrets from
the environment, the echo bot as the primary in-process app, a human helpdesk in standby)
against its own PostgreSQL. A recording stand-in for the Graph API answers after 0 or
150 ms; this process posts signed Instagram webhooks and matches every reply reaching the
stand-in to its POST. In the same run a baseline (a bare aiohttp handler committing one
INSERT per event) takes the same loads, and the service's figures are printed as a ratio
to it.

With two or more cores, the service processes and PostgreSQL run on core 0, this process
(load generator + Graph stand-in) on core 1.

    python -m tests.bench.run                          # the default scenarios, a few minutes
    python -m tests.bench.run --scenario closed --seconds 5
    python -m tests.bench.run --processes 2            # two `serve` processes, one database
    python -m tests.bench.run --scenario closed --scenario harness-ceiling --repeat 5
                                  # interleaved rounds, each figure's range, ÷ the ceiling
    python -m tests.bench.run --soak 100000            # long soak, RSS over time
    python -m tests.bench.run --soak 300000 --retention 2m --no-baseline  # + tables bounded

Every load is bounded in count and time and talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from orchestrator.config import parse_duration
from tests.bench import procs, report, tables
from tests.bench.load import Completion, Ledger, Poster, Window, burst, closed_loop, open_loop
from tests.bench.service import (
    ACCOUNT_ID,
    BOT_APP_ID,
    Database,
    config_toml,
    free_port,
    secrets_env,
    serve_supports_role,
    spawn,
    start_services,
    wait_ready,
)
from tests.bench.standin import GraphStandIn


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    kind: str  # "closed", "open", "burst", "soak"
    rate: float = 0.0
    graph_latency_ms: int = 0
    baseline: str | None = None  # which baseline load it is compared with


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("closed", "closed loop, Graph 0 ms", "closed", baseline="closed"),
        Scenario("open-50", "open loop 50/s, Graph 0 ms", "open", 50, baseline="open-50"),
        Scenario("open-500", "open loop 500/s, Graph 0 ms", "open", 500, baseline="open-500"),
        Scenario(
            "open-500-graph-150ms",
            "open loop 500/s, Graph 150 ms",
            "open",
            500,
            graph_latency_ms=150,
            baseline="open-500",
        ),
        Scenario("burst-1000", "1,000-item POST + 50/s on other conversations", "burst", 50),
        Scenario("soak", "long soak (--soak N messages), RSS over time", "soak"),
        Scenario(
            "harness-ceiling",
            "closed loop against a bare echo (verify, one INSERT, 200, one Graph call)",
            "ceiling",
        ),
    )
}
DEFAULT = ["closed", "open-50", "open-500", "open-500-graph-150ms", "burst-1000"]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.run", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help=f"run only these (repeatable); default: {', '.join(DEFAULT)}",
    )
    p.add_argument("--seconds", type=float, default=10.0, help="load duration per scenario")
    p.add_argument("--messages", type=int, help="at most this many messages per scenario")
    p.add_argument("--in-flight", type=int, default=32, help="closed loop: customers in flight")
    p.add_argument("--conversations", type=int, default=200, help="conversations per scenario")
    p.add_argument(
        "--drain", type=float, default=20.0, help="seconds to wait for replies after the load"
    )
    p.add_argument("--burst-items", type=int, default=1000)
    p.add_argument("--burst-conversations", type=int, default=10)
    p.add_argument("--soak", type=int, metavar="N", help="soak: N messages (adds the scenario)")
    p.add_argument("--soak-rate", type=float, default=200.0, help="soak: messages per second")
    p.add_argument(
        "--retention",
        metavar="DURATION",
        help='[service] retention in the service\'s config (e.g. "2m"): processed events and '
        "done outbox rows older than this are pruned every 10 s; default: the service's "
        "default (3d). With a soak, shows whether the tables stay bounded",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="[service] workers in the service's config: event workers per process "
        "(default: the service's default)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run the whole set N times, interleaved (round 1: every scenario, round 2: …), "
        "and print each figure's range: on a machine whose speed varies, one run proves little",
    )
    p.add_argument("--processes", type=int, default=1, help="service processes, one database")
    p.add_argument(
        "--split",
        action="store_true",
        help="one `serve --role ingress` + N `serve --role workers` (needs --role)",
    )
    p.add_argument(
        "--no-standby",
        action="store_true",
        help="the human app does not listen in standby (default: it does, as in "
        "config/orchestrator.toml: one more delivery per customer message)",
    )
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline handler")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    p.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL"),
        help="use this PostgreSQL server (default: DATABASE_URL, else an embedded one of "
        "the benchmark's own, which can be pinned)",
    )
    p.add_argument("--pg-dir", help="data folder for the embedded PostgreSQL (default: a temp dir)")
    p.add_argument("--json", default="bench-results.json", help="where to write the results")
    p.add_argument("--keep-logs", action="store_true", help="keep the service logs (path printed)")
    p.add_argument("--quiet", action="store_true", help="print only the table")
    args = p.parse_args(argv)
    names = args.scenario or list(DEFAULT)
    if args.soak and "soak" not in names:
        names.append("soak")
    if "soak" in names and not args.soak:
        p.error("the soak scenario needs --soak N (messages)")
    args.scenario = names
    if args.retention is not None:
        try:
            parse_duration(args.retention)
        except ValueError as exc:
            p.error(f"--retention: {exc}")
    if args.processes < 1:
        p.error("--processes must be at least 1")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.repeat > 1 and "soak" in names:
        p.error("a soak runs once: leave out --repeat, or run the soak on its own")
    return args


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.say: Callable[[str], None] = (lambda _m: None) if args.quiet else self._say
        self.env = secrets_env()
        self.secret = self.env["BOT_APP_SECRET"]
        self.service_cores: set[int] | None = None
        self.load_cores: set[int] | None = None
        self.workdir = Path(tempfile.mkdtemp(prefix="ig-bench-"))
        self.db: Database | None = None
        self.standin = GraphStandIn(BOT_APP_ID, on_send=lambda *_: None)
        self.baselines: dict[str, dict[str, Any]] = {}
        self.graph_url = ""

    @staticmethod
    def _say(message: str) -> None:
        print(message, flush=True)

    # -- set-up ------------------------------------------------------------------------------

    def pinning(self) -> str:
        cores = os.cpu_count() or 1
        if self.args.no_pin:
            return "not pinned (--no-pin)"
        if cores < 2 or not procs.available() or not hasattr(os, "sched_setaffinity"):
            return f"not pinned ({cores} core(s) or no sched_setaffinity)"
        self.service_cores, self.load_cores = {0}, {1}
        os.sched_setaffinity(0, self.load_cores)
        db = "PostgreSQL" if self.args.database_url is None else "(external PostgreSQL: unpinned)"
        return f"core 0: service process(es) + {db}; core 1: load generator + Graph stand-in"

    async def run(self) -> dict[str, Any]:
        args = self.args
        split = args.split
        if split and not serve_supports_role():
            raise SystemExit("--split needs `orchestrator serve --role`, which this build lacks")
        pin_note = self.pinning()
        self.db = Database(args.database_url, args.pg_dir)
        if self.service_cores:
            self.db.pin(self.service_cores)
        graph_url = self.graph_url = await self.standin.start()
        config_path = self.workdir / "orchestrator.toml"
        config_path.write_text(
            config_toml(
                graph_url,
                standby=not args.no_standby,
                retention=args.retention,
                workers=args.workers,
            ),
            encoding="utf-8",
        )
        results: dict[str, Any] = {
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {
                "cores": os.cpu_count(),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            },
            "pinning": pin_note,
            "database": "embedded (pgserver), the benchmark's own"
            if self.db.embedded
            else "external (DATABASE_URL)",
            "options": {
                k: v for k, v in vars(args).items() if k not in ("database_url", "json", "quiet")
            },
            "topology": (
                f"1 x serve --role ingress + {args.processes} x serve --role workers"
                if split
                else f"{args.processes} x orchestrator serve"
            ),
            "baseline": [],
            "scenarios": [],
        }
        self.say(
            f"machine: {os.cpu_count()} cores, load average {results['machine']['load_average']}"
            f"; {pin_note}; {results['topology']}; {results['database']}"
        )
        self.say("figures are noisy on a shared machine: compare runs on the same machine only")
        timeout = aiohttp.ClientTimeout(total=120)
        connector = aiohttp.TCPConnector(limit=512)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self.session = session
            for round_ in range(1, args.repeat + 1):
                if args.repeat > 1:
                    self.say(f"== round {round_} of {args.repeat}")
                if not args.no_baseline:
                    await self.run_baselines(results, config_path, round_)
                entries = []
                for name in args.scenario:
                    scenario = SCENARIOS[name]
                    self.say(f"-- {name}: {scenario.description}")
                    if scenario.kind == "ceiling":
                        entry = await self.run_ceiling(scenario)
                    else:
                        entry = await self.run_scenario(scenario, config_path, split)
                    entry["round"] = round_
                    base = self.baselines.get(scenario.baseline or "")
                    if base is not None:
                        entry["vs_baseline"] = ratio(entry["result"], base["result"])
                    entries.append(entry)
                    self.say("   " + _one_line(entry))
                report.add_ceiling_ratios(entries)
                results["scenarios"].extend(entries)
        results["graph_calls_note"] = (
            "send_message counts include disclosures (one per new conversation)"
        )
        return results

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
        if self.args.keep_logs:
            self.say(f"logs kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- loads -------------------------------------------------------------------------------

    def _loads(self) -> dict[str, Callable[[Poster, Completion, int], Awaitable[Window]]]:
        a = self.args

        def closed(p: Poster, c: Completion, offset: int) -> Awaitable[Window]:
            return closed_loop(
                p,
                in_flight=a.in_flight,
                conversations=a.conversations,
                seconds=a.seconds,
                messages=a.messages,
                completion=c,
                reply_timeout=a.drain,
            )

        def opened(rate: float) -> Callable[[Poster, Completion, int], Awaitable[Window]]:
            def run(p: Poster, _c: Completion, offset: int) -> Awaitable[Window]:
                return open_loop(
                    p,
                    rate=rate,
                    conversations=a.conversations,
                    seconds=a.seconds,
                    messages=a.messages,
                )

            return run

        return {"closed": closed, "open-50": opened(50), "open-500": opened(500)}

    def _poster(self, urls: list[str], ledger: Ledger) -> Poster:
        prefix = str(random.randint(10**8, 10**9 - 1))  # fresh customers per run
        return Poster(self.session, urls, self.secret, ACCOUNT_ID, ledger, prefix)

    async def run_baselines(
        self, results: dict[str, Any], config_path: Path, round_: int = 1
    ) -> None:
        assert self.db is not None
        needed = [SCENARIOS[n].baseline for n in self.args.scenario if SCENARIOS[n].baseline]
        loads = self._loads()
        name = f"bench_baseline_{uuid.uuid4().hex[:8]}"
        url = await self.db.create(name)
        port = free_port()
        proc = spawn(
            "baseline",
            [sys.executable, "-m", "tests.bench.baseline", str(port), url],
            {"BASELINE_APP_SECRET": self.secret},
            self.workdir,
            port,
            self.service_cores,
        )
        try:
            await wait_ready([proc])
            for load in dict.fromkeys(n for n in needed if n):
                self.say(f"-- baseline {load}: bare aiohttp handler, one committed INSERT/event")
                ledger = Ledger()
                poster = self._poster([f"http://127.0.0.1:{port}/webhooks/bot"], ledger)
                meter = procs.Meter([proc.pid], self.db.pid)
                meter.start()
                window = await loads[load](poster, "ack", 0)
                usage = await meter.stop()
                entry: dict[str, Any] = {
                    "load": load,
                    "round": round_,
                    "result": report.summarize(ledger, window, completion="ack"),
                    "errors": dict(poster.errors),
                    "usage": _usage(usage, ledger),
                }
                self.baselines[load] = entry
                results["baseline"].append(entry)
                r = entry["result"]
                self.say(
                    f"   acked/s {r['acked_per_s']}, ack p50 {r['ack_p50_ms']} ms, "
                    f"p99 {r['ack_p99_ms']} ms"
                )
        finally:
            await proc.stop()
            await self.db.drop(name)

    async def run_ceiling(self, s: Scenario) -> dict[str, Any]:
        """The most this harness can show on this machine for a reply that costs one
        committed INSERT and one Graph call: the same closed loop against
        `tests/bench/baseline.py` echoing each message to the stand-in."""
        assert self.db is not None
        name = f"bench_ceiling_{uuid.uuid4().hex[:6]}"
        url = await self.db.create(name)
        port = free_port()
        proc = spawn(
            "ceiling",
            [sys.executable, "-m", "tests.bench.baseline", str(port), url, self.graph_url],
            {"BASELINE_APP_SECRET": self.secret},
            self.workdir,
            port,
            self.service_cores,
        )
        try:
            await wait_ready([proc])
            ledger = Ledger()
            self.standin.reset(0, ledger.on_send)
            poster = self._poster([f"http://127.0.0.1:{port}/webhooks/bot"], ledger)
            meter = procs.Meter([proc.pid], self.db.pid)
            meter.start()
            window = await self._loads()["closed"](poster, "reply", 0)
            await ledger.drain(self.args.drain)
            window.drained = time.perf_counter()
            usage = await meter.stop()
            return {
                "name": s.name,
                "kind": s.kind,
                "description": s.description,
                "graph_latency_ms": 0,
                "result": report.summarize(ledger, window, completion="reply"),
                "errors": dict(poster.errors),
                "other_sends": ledger.other_sends,
                "graph_calls": dict(self.standin.calls),
                "usage": _usage(usage, ledger),
            }
        finally:
            await proc.stop()
            self.standin.reset(0, lambda *_: None)
            await self.db.drop(name)

    async def run_scenario(self, s: Scenario, config_path: Path, split: bool) -> dict[str, Any]:
        assert self.db is not None
        a = self.args
        name = f"bench_{s.name.replace('-', '_')}_{uuid.uuid4().hex[:6]}"
        url = await self.db.create(name)
        services = start_services(
            config_path=config_path,
            database_url=url,
            env=self.env,
            processes=a.processes,
            split=split,
            # A soak's logs (several lines per message) could fill the disk: kept on request.
            log_dir=self.workdir if s.kind != "soak" or a.keep_logs else None,
            cores=self.service_cores,
        )
        try:
            await wait_ready(services)
            if self.service_cores:
                self.db.pin(self.service_cores)  # backends opened since start inherit it anyway
            urls = [f"http://127.0.0.1:{p.port}/webhooks/bot" for p in services if p.port]
            await self._warm_up(urls)
            ledger = Ledger()
            load_average = [round(x, 2) for x in os.getloadavg()]
            self.standin.reset(s.graph_latency_ms / 1000, ledger.on_send)
            poster = self._poster(urls, ledger)
            meter = procs.Meter([p.pid for p in services], self.db.pid)
            meter.start()
            sampler = None
            if s.kind == "soak":
                # Table sizes every 10 s on the RSS series' clock: bounded by retention?
                sampler = tables.TableSampler(url, meter.began)
                sampler.start()
            window = await self._load(s, poster)
            drained = await ledger.drain(a.drain)
            window.drained = time.perf_counter()
            usage = await meter.stop()
            table_sizes = await sampler.stop() if sampler is not None else None
            backlog = await self._backlog(urls[0].replace("/webhooks/bot", "/metrics"))
            groups = ["background"] if s.kind == "burst" else None
            entry: dict[str, Any] = {
                "name": s.name,
                "kind": s.kind,
                "description": s.description,
                "graph_latency_ms": s.graph_latency_ms,
                "machine_load_average": load_average,  # other users of the machine show here
                "result": report.summarize(ledger, window, completion="reply", groups=groups),
                "drain_seconds": round(drained, 1),
                "errors": dict(poster.errors),
                "posts_per_process": poster.per_url,
                "other_sends": ledger.other_sends,
                # The service's own gauges after the drain: "lost" replies still queued
                # (events, outbox rows) or dead-lettered.
                "backlog_after_drain": backlog,
                "graph_calls": dict(self.standin.calls),
                "usage": _usage(usage, ledger, series=s.kind == "soak"),
            }
            if table_sizes is not None:
                entry["usage"]["tables_over_time"] = table_sizes
                entry["retention"] = a.retention
                entry["soak_points"] = soak_points(
                    window.ended - meter.began, window.drained - meter.began, a.retention
                )
            if s.kind == "burst":
                entry["burst"] = report.burst_figures(ledger)
                entry["burst"]["all"] = report.summarize(ledger, window, completion="reply")
            exited = [p.name for p in services if p.popen.poll() is not None]
            if exited:
                entry["exited"] = exited
            return entry
        finally:
            await asyncio.gather(*(p.stop() for p in services))
            self.standin.reset(0, lambda *_: None)
            await self.db.drop(name)

    async def _backlog(self, metrics_url: str) -> dict[str, float] | None:
        wanted = {
            "orchestrator_queue_depth": "events_pending",
            "orchestrator_outbox_depth": "outbox_open",
            "orchestrator_dead_letters": "dead_letters",
            "orchestrator_oldest_pending_seconds": "oldest_pending_s",
        }
        try:
            async with self.session.get(metrics_url) as r:
                text = await r.text()
        except (aiohttp.ClientError, TimeoutError):
            return None
        out: dict[str, float] = {}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in wanted:
                with contextlib.suppress(ValueError):
                    out[wanted[name]] = float(value)
        return out or None

    async def _warm_up(self, urls: list[str]) -> None:
        """A few conversations first: connections, caches and the first disclosure path."""
        ledger = Ledger()
        self.standin.reset(0, ledger.on_send)
        poster = self._poster(urls, ledger)
        await closed_loop(
            poster,
            in_flight=4,
            conversations=4,
            seconds=10,
            messages=20,
            completion="reply",
            reply_timeout=10,
        )
        await ledger.drain(10, grace=0.1)

    async def _load(self, s: Scenario, poster: Poster) -> Window:
        a = self.args
        if s.kind == "closed":
            return await self._loads()["closed"](poster, "reply", 0)
        if s.kind == "open":
            return await open_loop(
                poster,
                rate=s.rate,
                conversations=a.conversations,
                seconds=a.seconds,
                messages=a.messages,
            )
        if s.kind == "burst":
            return await burst(
                poster,
                items=a.burst_items,
                burst_conversations=a.burst_conversations,
                background_rate=s.rate,
                background_conversations=a.conversations,
                seconds=a.seconds,
                burst_at=min(2.0, a.seconds / 4),
            )
        assert a.soak
        return await open_loop(
            poster,
            rate=a.soak_rate,
            conversations=max(a.conversations, 1000),
            seconds=a.soak / a.soak_rate,
            messages=a.soak,
        )


def soak_points(load_end: float, drained: float, retention: str | None) -> dict[str, float]:
    """Where the soak summary looks (seconds since the load began): warm-up end (60 s or a
    tenth of the load, and, with a short retention, once retention + one 10 s prune period
    has passed, when events/outbox can have levelled off), mid-load, load end, after the
    drain."""
    warm = max(60.0, load_end / 10)
    if retention:
        with contextlib.suppress(ValueError):
            settle = parse_duration(retention).total_seconds() + 10 + 10
            if settle < load_end / 2:
                warm = max(warm, settle)
    warm = min(warm, load_end)
    return {
        "warm-up end": round(warm, 1),
        "mid-load": round((warm + load_end) / 2, 1),
        "load end": round(load_end, 1),
        "after drain": round(drained, 1),
    }


def ratio(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Our replies/s over the baseline's acknowledged/s, our reply p99 over its ack p99."""
    tput = ours.get("replies_per_s")
    p99 = ours.get("e2e_p99_ms")
    b_tput, b_p99 = base.get("acked_per_s"), base.get("ack_p99_ms")
    return {
        "throughput": round(tput / b_tput, 3) if tput is not None and b_tput else None,
        "p99": round(p99 / b_p99, 2) if p99 is not None and b_p99 else None,
        "baseline_acked_per_s": b_tput,
        "baseline_ack_p99_ms": b_p99,
    }


def _usage(u: procs.Usage, ledger: Ledger, *, series: bool = False) -> dict[str, Any]:
    acked = sum(1 for m in ledger.msgs.values() if m.ack is not None)
    cpu = u.service_cpu_s + (u.db_cpu_s or 0.0)
    out: dict[str, Any] = {
        "service_cpu_s": u.service_cpu_s,
        "db_cpu_s": u.db_cpu_s,
        # Service + PostgreSQL CPU per acknowledged message: steadier than throughput on a
        # shared machine; comparable between runs when nothing was lost.
        "cpu_ms_per_message": round(cpu / acked * 1000, 2) if acked else None,
        "service_peak_rss_mb": u.service_peak_rss_mb,
        "db_peak_pss_mb": u.db_peak_pss_mb,
        "loadgen_cpu_s": u.loadgen_cpu_s,
    }
    if series:
        out["service_rss_mb_over_time"] = u.rss_series
    return out


def _one_line(entry: dict[str, Any]) -> str:
    r = entry["result"]
    line = (
        f"acked/s {r['acked_per_s']}, replies/s {r['replies_per_s']}, "
        f"e2e p50 {report.latency(r, 'e2e_p50')} p99 {report.latency(r, 'e2e_p99')}, "
        f"lost {r['lost']}, "
        f"dup {r['duplicated']}, order {r['order_violations']}"
    )
    backlog = entry.get("backlog_after_drain")
    if r.get("lost") and backlog:
        line += (
            f" (after the drain: {backlog.get('events_pending', 0):.0f} events pending, "
            f"{backlog.get('outbox_open', 0):.0f} outbox rows open, "
            f"{backlog.get('dead_letters', 0):.0f} dead letters)"
        )
    if "burst" in entry:
        b = entry["burst"]
        line += (
            f"; others p50 before {b.get('others_p50_before_ms')} ms, p99 after "
            f"{b.get('others_p99_after_ms')} ms; burst answered in {b.get('burst_all_answered_s')} s"
        )
    return line


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns (and writes) the results."""
    args = parse_args(argv)
    bench = Bench(args)
    old_affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        results = await bench.run()
    finally:
        bench.close()
        if old_affinity is not None and bench.load_cores:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, old_affinity)
        await bench.standin.stop()
    print()
    print(report.table(results))
    if results.get("baseline"):
        print(
            "vs baseline: our replies/s ÷ baseline acknowledged/s (same load), "
            "our reply p99 ÷ baseline ack p99"
        )
    if args.repeat > 1:
        print()
        print(report.ranges(results))
        print("÷ ceiling: the closed loop's replies/s ÷ the harness ceiling's, same round")
    for s in results["scenarios"]:
        if "burst" in s:
            b = {k: ("—" if v is None else v) for k, v in s["burst"].items()}
            print(
                f"{s['name']}: other conversations' replies: p50 {b['others_p50_before_ms']} ms "
                f"before the POST; after it p99 {b['others_p99_after_ms']} ms, max "
                f"{b['others_max_after_ms']} ms, {b['others_after_answered']}/"
                f"{b['others_after_posted']} answered. The POST was acknowledged in "
                f"{b['burst_ack_ms']} ms; {b['burst_replies']}/{b['burst_items']} of its "
                f"replies sent (all after {b['burst_all_answered_s']} s)"
            )
        if "service_rss_mb_over_time" in s["usage"]:
            print(f"{s['name']}: service RSS (s, MB): {s['usage']['service_rss_mb_over_time']}")
        for line in tables.soak_summary(s):
            print(line)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.json}")
    return results


if __name__ == "__main__":
    asyncio.run(main())
