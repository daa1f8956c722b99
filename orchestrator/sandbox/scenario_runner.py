"""The scenario `Runner`: performs each step (customer, app, Inbox, clock, faults) in a sandbox,
waits until it settles, and checks the step's expectations against what happened during it.

The step and expectation keys are documented for QA in `scenarios.py`. Also here: what a run
produces (`ScenarioResult`, `StepResult`) and `ScenarioError`, for a wrong scenario file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.config import parse_duration
from orchestrator.sandbox.runner import Sandbox
from orchestrator.sandbox.simulator import WebhookEvent
from orchestrator.sandbox.simulator.server import RUNTIME_KEY

CUSTOMER = "4242424242424242"
_KNOWN_STEPS = ("say", "burst", "react", "unsend", "postback", "comment", "act", "inbox",
                "advance", "faults")  # fmt: skip


class ScenarioError(Exception):
    """The scenario file itself is wrong (not the product)."""


@dataclass
class StepResult:
    index: int
    label: str
    ok: bool
    problem: str | None = None


@dataclass
class ScenarioResult:
    name: str
    path: str
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.ok for s in self.steps)

    @property
    def first_failure(self) -> str | None:
        if self.error:
            return self.error
        bad = next((s for s in self.steps if not s.ok), None)
        return f"step {bad.index} ({bad.label}): {bad.problem}" if bad else None


class Runner:
    def __init__(self, sb: Sandbox, customer: str = CUSTOMER) -> None:
        self.sb = sb
        self.customer = customer
        self.graph_seq = 0
        self.outbox_id = 0
        self.message_id = 0
        self.received_count = 0
        self.last_status: int | None = None
        self.last_refusal: str | None = None

    async def run(self, data: Mapping[str, Any], result: ScenarioResult) -> None:
        for i, step in enumerate(data["steps"], 1):
            label = _label(step)
            await self._mark()
            try:
                await self._do(step)
                await self.sb.settle()
                problem = await self._check(step.get("expect") or {})
            except ScenarioError:
                raise
            except Exception as exc:  # the product misbehaved in a way the step did not expect
                problem = f"{type(exc).__name__}: {exc}"
            result.steps.append(StepResult(i, label, problem is None, problem))
            if problem is not None:
                return  # later steps would only report consequences of the first difference

    async def _mark(self) -> None:
        log = await self.sb.sim("GET", "/sim/log/graph")
        self.graph_seq = max((c["seq"] for c in log["data"]), default=0)
        self.outbox_id = await self.sb.pool.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        self.message_id = await self.sb.pool.fetchval("SELECT coalesce(max(id), 0) FROM messages")
        view = await self.sb.sim("GET", f"/sim/customers/{self.customer}")
        self.received_count = len(view["received"])
        self.last_status = None
        self.last_refusal = None

    async def _do(self, step: Mapping[str, Any]) -> None:
        sb, path = self.sb, f"/sim/customers/{self.customer}"
        if "say" in step:
            value = step["say"]
            said: dict[str, Any] = (
                {"text": value}
                if isinstance(value, str)
                else {"text": value.get("text"), "quick_reply_payload": value.get("quick_reply")}
            )
            await sb.sim("POST", f"{path}/say", said)
        elif "burst" in step:
            await self._burst(step["burst"])
        elif "react" in step:
            spec = step["react"] if isinstance(step["react"], dict) else {"to": step["react"]}
            mid = await self._mid(spec.get("to", "last_received"))
            reaction = spec.get("reaction", "love")
            await sb.sim("POST", f"{path}/react", {"mid": mid, "reaction": reaction})
        elif "unsend" in step:
            unsent = await self._mid(step["unsend"] or "last_sent")
            await sb.sim("POST", f"{path}/unsend", {"mid": unsent})
        elif "postback" in step:
            await sb.sim("POST", f"{path}/postback", {"payload": step["postback"]})
        elif "comment" in step:
            await sb.sim("POST", f"{path}/comment", {"text": step["comment"]})
        elif "inbox" in step:
            spec = step["inbox"] if isinstance(step["inbox"], dict) else {"do": step["inbox"]}
            body: dict[str, Any] = {k: v for k, v in spec.items() if k != "do"}
            if "target_app" in body:
                app = sb.config.app(body.pop("target_app"))
                body["target_app_id"] = app.app_id if app else None
            await sb.sim("POST", f"/sim/inbox/{self.customer}/{spec['do']}", body)
        elif "advance" in step:
            sb.world.advance(_duration(step["advance"], "advance"))
        elif "faults" in step:
            await sb.sim("POST", "/sim/faults", dict(step["faults"]))
        elif "act" in step:
            await self._act(dict(step["act"]))

    async def _burst(self, spec: Any) -> None:
        texts, every = spec, None
        if isinstance(spec, Mapping):
            texts, every = spec.get("texts"), spec.get("every")
        if not isinstance(texts, list) or not texts:
            raise ScenarioError(f"burst: expected a list of texts or {{texts, every}}: {spec!r}")
        if every is None:
            await self.sb.sim("POST", f"/sim/customers/{self.customer}/say",
                              {"texts": [str(t) for t in texts]})  # fmt: skip
            return
        # The control API stamps a burst with one time; spaced timestamps are made in the
        # world itself, and the webhooks then leave together as one delivery (faults apply).
        seconds = _duration(every, "burst.every")
        hooks: list[WebhookEvent] = []
        for i, text in enumerate(texts):
            if i:
                self.sb.world.advance(seconds)
            hooks.extend(self.sb.world.say(self.customer, str(text)).webhooks)
        await self.sb.sim_app[RUNTIME_KEY].dispatcher.deliver(hooks)

    async def _act(self, spec: dict[str, Any]) -> None:
        app_name = spec.pop("app", None)
        app = self.sb.config.app(str(app_name))
        if app is None:
            raise ScenarioError(f"act: unknown app {app_name!r}")
        if spec.get("mid") in ("last_received", "last_sent"):
            spec["mid"] = await self._mid(spec["mid"])
        if spec.get("comment_id") == "last_comment":
            view = await self.sb.sim("GET", f"/sim/customers/{self.customer}")
            if not view["comments"]:
                raise ScenarioError("act: comment_id: last_comment, but nobody commented yet")
            spec["comment_id"] = str(view["comments"][-1]["comment_id"])
        if "text" in spec and spec.get("type", "reply") == "reply":
            spec = {"type": "reply", "message": {"text": spec.pop("text")}, **spec}
        row = await self.sb.conversation(self.customer)
        if row is None:
            raise ScenarioError("act: no conversation yet (let the customer write first)")
        if app.api_key:
            status, data = await self.sb.api(
                "POST", f"/api/v1/conversations/{row['id']}/actions", app.name, spec
            )
            self.last_status = status
            self.last_refusal = data.get("error", {}).get("code") if status >= 400 else None
            return
        # Apps without an API key (in-process bots) act through the same queue directly.
        result = await self.sb.act_directly(app.name, self.customer, spec)
        refusal = (result or {}).get("refusal")
        self.last_refusal = refusal["code"] if refusal else None

    async def _mid(self, ref: str) -> str:
        view = await self.sb.sim("GET", f"/sim/customers/{self.customer}")
        if ref == "last_received":
            return str(view["received"][-1]["mid"])
        if ref == "last_sent":
            return str(view["sent"][-1]["mid"])
        return ref

    async def _check(self, expect: Mapping[str, Any]) -> str | None:
        sb = self.sb
        row = await sb.conversation(self.customer)
        view = await sb.sim("GET", f"/sim/customers/{self.customer}")
        for key in expect:
            if key not in _EXPECT_KEYS:
                raise ScenarioError(f"unknown expectation {key!r}; use {', '.join(_EXPECT_KEYS)}")
        if "state" in expect:
            actual = row["state"] if row else None
            if actual != expect["state"]:
                return f"expected state {expect['state']!r}, actual {actual!r}"
        if "owner" in expect:
            actual = row["owner_app"] if row else None
            if actual != expect["owner"]:
                return f"expected owner {expect['owner']!r}, actual {actual!r}"
        if "meta_owner" in expect:
            actual = view.get("owner_app_name")
            if actual != expect["meta_owner"]:
                return f"expected Meta's thread owner {expect['meta_owner']!r}, actual {actual!r}"
        new = view["received"][self.received_count :]
        if "received_count" in expect and len(new) != expect["received_count"]:
            return (f"expected {expect['received_count']} message(s) received, actual "
                    f"{len(new)}: {[m.get('text') for m in new]}")  # fmt: skip
        if "received" in expect:
            problem = _compare_received(expect["received"], new)
            if problem:
                return problem
        if "graph" in expect:
            log = await sb.sim("GET", f"/sim/log/graph?since={self.graph_seq}")
            actual_calls = [f"{c['app']} {c['path'].rstrip('/').rsplit('/', 1)[-1]}"
                            for c in log["data"] if c["seq"] > self.graph_seq
                            and c["method"] == "POST"]  # fmt: skip
            if actual_calls != list(expect["graph"]):
                return f"expected Graph calls {list(expect['graph'])}, actual {actual_calls}"
        if "deliveries" in expect:
            rows = await sb.pool.fetch(
                "SELECT app, payload FROM outbox WHERE kind = 'deliver' AND id > $1 ORDER BY id",
                self.outbox_id,
            )
            for app, wanted in dict(expect["deliveries"]).items():
                got = [("standby:" if r["payload"].get("standby") else "")
                       + str(r["payload"]["event"].get("type") or r["payload"]["event"].get("kind"))
                       for r in rows if r["app"] == app]  # fmt: skip
                if got != list(wanted or []):
                    return f"expected deliveries to {app} {list(wanted or [])}, actual {got}"
        if "refused" in expect and self.last_refusal != expect["refused"]:
            return f"expected refusal {expect['refused']!r}, actual {self.last_refusal!r}"
        if "status" in expect and self.last_status != expect["status"]:
            return f"expected HTTP status {expect['status']}, actual {self.last_status}"
        if "transcript_count" in expect or "transcript_in" in expect:
            rows = await sb.pool.fetch(
                "SELECT direction, text FROM messages WHERE id > $1 ORDER BY created_at, id",
                self.message_id,
            )
            wanted_counts = dict(expect.get("transcript_count") or {})
            for direction, n in wanted_counts.items():
                stored = sum(1 for r in rows if r["direction"] == direction)
                if stored != n:
                    return (f"expected {n} '{direction}' message(s) stored in the transcript, "
                            f"actual {stored}")  # fmt: skip
            if "transcript_in" in expect:
                got_in = [r["text"] for r in rows if r["direction"] == "in"]
                if got_in != list(expect["transcript_in"]):
                    return (f"expected the customer's messages stored as "
                            f"{list(expect['transcript_in'])}, actual {got_in}")  # fmt: skip
        if "dead_letters" in expect:
            n = await sb.pool.fetchval("SELECT count(*) FROM outbox WHERE status = 'dead'")
            if n != expect["dead_letters"]:
                return f"expected {expect['dead_letters']} dead-lettered effect(s), actual {n}"
        if "transcript_deleted" in expect:
            n = await sb.pool.fetchval(
                "SELECT count(*) FROM messages WHERE deleted_at IS NOT NULL AND text IS NULL"
            )
            if n != expect["transcript_deleted"]:
                return f"expected {expect['transcript_deleted']} erased message(s), actual {n}"
        return None


_EXPECT_KEYS = ("state", "owner", "meta_owner", "received", "received_count", "graph",
                "deliveries", "refused", "status", "transcript_deleted", "transcript_count",
                "transcript_in", "dead_letters")  # fmt: skip


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def _duration(value: Any, where: str) -> float:
    """Seconds of a config duration (`25h`, `10m`, a number) or a compound one (`23h59m`)."""
    text = str(value).replace(" ", "")
    parts = _DURATION_PART.findall(text) if isinstance(value, str) else []
    try:
        if len(parts) > 1 and "".join(n + u for n, u in parts) == text:
            return sum(parse_duration(n + u).total_seconds() for n, u in parts)
        return parse_duration(value).total_seconds()
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _compare_received(wanted: Sequence[Any], got: Sequence[Mapping[str, Any]]) -> str | None:
    texts = [m.get("text") for m in got]
    if len(wanted) != len(got):
        return f"expected {len(wanted)} message(s) received {list(wanted)}, actual {texts}"
    for i, (w, m) in enumerate(zip(wanted, got, strict=True)):
        text = m.get("text") or ""
        if isinstance(w, str):
            ok = text == w
        elif isinstance(w, Mapping):
            ok = ("contains" not in w or str(w["contains"]) in text) and (
                "text" not in w or text == w["text"]) and (
                "tag" not in w or m.get("tag") == w["tag"])  # fmt: skip
        else:
            raise ScenarioError(f"received[{i}]: expected a string or a mapping, got {w!r}")
        if not ok:
            return f"received message {i + 1}: expected {w!r}, actual {text!r} (all: {texts})"
    return None


def _label(step: Mapping[str, Any]) -> str:
    if step.get("note"):
        return str(step["note"])
    key = next(k for k in step if k in _KNOWN_STEPS)
    value = step[key]
    short = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return f"{key} {short}"[:70]
