"""The scenario `Runner`: performs each step (customer, app, Inbox, clock, faults) in a sandbox,
waits until it settles, and checks every expectation of the step against what happened
during it. A failing step lists every difference and a snapshot; `keep_going` runs on.

The language itself (every step and expectation) is defined in `scenario_schema.py`; the
checks are in `scenario_checks.py`, what is read after a step in `scenario_observe.py`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.sandbox.runner import Sandbox
from orchestrator.sandbox.scenario_checks import CheckCtx, check_all
from orchestrator.sandbox.scenario_files import ScenarioError
from orchestrator.sandbox.scenario_kinds import duration_seconds
from orchestrator.sandbox.scenario_observe import (
    ActOutcome,
    Observation,
    mark,
    observe,
    snapshot,
)
from orchestrator.sandbox.scenario_schema import FOREIGN_INBOXES, step_kind
from orchestrator.sandbox.simulator import WebhookEvent
from orchestrator.sandbox.simulator.server import RUNTIME_KEY
from state_machines import ActionError, action_from_json

CUSTOMER = "4242424242424242"


@dataclass
class StepResult:
    index: int
    kind: str
    action: str  # the step's action, in full
    note: str | None
    ok: bool
    problems: list[str] = field(default_factory=list)
    snapshot: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outcome: str | None = None  # an act's answer, shown even when the step passes

    @property
    def label(self) -> str:
        return self.note or self.action

    @property
    def problem(self) -> str | None:
        return "; ".join(self.problems) if self.problems else None


@dataclass
class ScenarioResult:
    name: str
    path: str
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    total_steps: int = 0
    covered: set[tuple[str, str]] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return self.error is None and all(s.ok for s in self.steps)

    @property
    def failed_steps(self) -> list[StepResult]:
        return [s for s in self.steps if not s.ok]

    @property
    def first_failure(self) -> str | None:
        if self.error:
            return self.error
        bad = next(iter(self.failed_steps), None)
        return f"step {bad.index} ({bad.action}): {bad.problem}" if bad else None


def describe(step: Mapping[str, Any]) -> tuple[str, str]:
    kind = step_kind(step)
    value = step[kind]
    short = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return kind, f"{kind} {short}"


class Runner:
    def __init__(self, sb: Sandbox, customer: str = CUSTOMER, *, keep_going: bool = False) -> None:
        self.sb = sb
        self.customer = customer
        self.keep_going = keep_going
        self.refs: dict[str, str] = {}

    async def run(self, data: Mapping[str, Any], result: ScenarioResult) -> None:
        channel = str(data.get("channel") or "instagram")
        if channel != "instagram":
            # The customer writes to the account's Page: webhooks come as object "page"
            # under the Page id, the customer id is a PSID, the Page Inbox is Meta's inbox.
            self.sb.world.open_thread(self.customer, channel)
        steps = list(data["steps"])
        result.total_steps = len(steps)
        for i, step in enumerate(steps, 1):
            started = time.perf_counter()
            kind, action = describe(step)
            problems, obs = await self._step(step)
            if obs is not None:
                result.covered |= _covered(obs)
            shot = snapshot(obs) if problems and obs is not None else []
            seconds = time.perf_counter() - started
            note = step.get("note")
            result.steps.append(
                StepResult(
                    i, kind, action, note, not problems, problems, shot, seconds,
                    _outcome(obs.act) if obs is not None and obs.act is not None else None,
                )
            )  # fmt: skip
            if problems and not self.keep_going:
                return  # later steps would mostly report consequences of this one

    async def _step(self, step: Mapping[str, Any]) -> tuple[list[str], Observation | None]:
        marks = await mark(self.sb, self.customer)
        act: ActOutcome | None = None
        problems: list[str] = []
        produced: str | None = None
        try:
            produced, act = await self._do(step)
            await self.sb.settle()
        except ScenarioError as exc:
            problems.append(f"the step could not be performed: {exc}")
        except Exception as exc:  # the product (or Meta) misbehaved in a way not expected
            problems.append(f"the step could not be performed: {type(exc).__name__}: {exc}")
        try:
            obs = await observe(self.sb, self.customer, marks, act)
        except Exception as exc:
            return [*problems, f"could not observe the sandbox: {type(exc).__name__}: {exc}"], None
        if problems:
            return problems, obs
        if "as" in step:
            if step_kind(step) == "act":
                produced = str(obs.received[-1]["mid"]) if obs.received else None
            if produced is None:
                problems.append(f"as: the step produced no message to call {step['as']!r}")
            else:
                self.refs[str(step["as"])] = produced
        ctx = CheckCtx(self.sb.pool, self._mid)
        try:
            problems += await check_all(obs, step.get("expect") or {}, ctx)
        except ScenarioError as exc:
            problems.append(str(exc))
        return problems, obs

    # -- performing steps ------------------------------------------------------------------

    async def _do(self, step: Mapping[str, Any]) -> tuple[str | None, ActOutcome | None]:
        """Perform the step; returns the mid it produced (for `as:`) and an act's outcome."""
        sb, path = self.sb, f"/sim/customers/{self.customer}"
        kind = step_kind(step)
        value = step[kind]
        if kind == "say":
            said: dict[str, Any] = {"text": value} if isinstance(value, str) else {
                "text": value.get("text"),
                "quick_reply_payload": value.get("quick_reply"),
                "attachments": [{"type": a["type"], "payload": {"url": a["url"]}}
                                for a in value.get("attachments") or []] or None,
                "reply_to": await self._mid(value["reply_to"]) if value.get("reply_to") else None,
            }  # fmt: skip
            return (await sb.sim("POST", f"{path}/say", said))["mid"], None
        if kind == "burst":
            await self._burst(value)
        elif kind == "react":
            spec = value if isinstance(value, Mapping) else {"to": value}
            mid = await self._mid(spec.get("to", "last_received"))
            await sb.sim("POST", f"{path}/react",
                         {"mid": mid, "reaction": spec.get("reaction", "love")})  # fmt: skip
        elif kind == "unreact":
            await sb.sim("POST", f"{path}/unreact", {"mid": await self._mid(value)})
        elif kind == "unsend":
            await sb.sim("POST", f"{path}/unsend", {"mid": await self._mid(value)})
        elif kind == "edit":
            mid = await self._mid(value["message"])
            await sb.sim("POST", f"{path}/edit", {"mid": mid, "text": value["text"]})
        elif kind == "read":
            upto = {"mid": await self._mid(value)} if value else {}
            await sb.sim("POST", f"{path}/read", upto)
        elif kind == "postback":
            spec = value if isinstance(value, Mapping) else {"payload": value}
            return (await sb.sim("POST", f"{path}/postback", dict(spec)))["mid"], None
        elif kind == "comment":
            spec = value if isinstance(value, Mapping) else {"text": value}
            await sb.sim("POST", f"{path}/comment", dict(spec))
        elif kind == "open_link":
            await sb.sim("POST", f"{path}/open_link", {"ref": value})
        elif kind == "inbox":
            return await self._inbox(value), None
        elif kind == "advance":
            sb.world.advance(duration_seconds(value))
        elif kind == "faults":
            await sb.sim("POST", "/sim/faults", dict(value))
        elif kind == "act":
            return None, await self._act(dict(value))
        return None, None

    async def _inbox(self, value: Any) -> str | None:
        spec = dict(value) if isinstance(value, Mapping) else {"do": value}
        do = spec.pop("do")
        if "target_app" in spec:
            name = spec.pop("target_app")
            app = self.sb.config.app(name)
            spec["target_app_id"] = app.app_id if app else _inbox_app_id(name)
        answer = await self.sb.sim("POST", f"/sim/inbox/{self.customer}/{do}", spec)
        return answer.get("mid") if do == "reply" else None

    async def _burst(self, spec: Any) -> None:
        texts, every = spec, None
        if isinstance(spec, Mapping):
            texts, every = spec.get("texts"), spec.get("every")
        if every is None:
            await self.sb.sim("POST", f"/sim/customers/{self.customer}/say",
                              {"texts": [str(t) for t in texts]})  # fmt: skip
            return
        # The control API stamps a burst with one time; spaced timestamps are made in the
        # world itself, and the webhooks then leave together as one delivery (faults apply).
        seconds = duration_seconds(every)
        hooks: list[WebhookEvent] = []
        for i, text in enumerate(texts):
            if i:
                self.sb.world.advance(seconds)
            hooks.extend(self.sb.world.say(self.customer, str(text)).webhooks)
        await self.sb.sim_app[RUNTIME_KEY].dispatcher.deliver(hooks)

    async def _act(self, spec: dict[str, Any]) -> ActOutcome:
        app = self.sb.config.app(str(spec.pop("app")))
        if app is None:
            raise ScenarioError("act: unknown app")  # the schema catches this at load
        for key in ("mid", "reply_to_mid"):
            if key in spec:
                spec[key] = await self._mid(spec[key])
        if spec.get("comment_id") == "last_comment":
            view = await self.sb.sim("GET", f"/sim/customers/{self.customer}")
            if not view["comments"]:
                raise ScenarioError("comment_id: last_comment, but nobody commented yet")
            spec["comment_id"] = str(view["comments"][-1]["comment_id"])
        if "text" in spec and spec.get("type", "reply") == "reply":
            spec = {"type": "reply", "message": {"text": spec.pop("text")}, **spec}
        spec.setdefault("type", "reply")
        row = await self.sb.conversation(self.customer)
        if row is None:
            raise ScenarioError("act: no conversation yet (let the customer write first)")
        if app.api_key:
            status, data = await self.sb.api(
                "POST", f"/api/v1/conversations/{row['id']}/actions", app.name, spec
            )
            error = data.get("error", {}) if status >= 400 and isinstance(data, dict) else {}
            return ActOutcome(status, error.get("code"), error.get("message"), data)
        # Apps without an API key (in-process bots) act through the same queue; their actions
        # are checked exactly as the REST API checks them, with the same code and message.
        try:
            parsed = action_from_json(spec)
        except ActionError as exc:
            return ActOutcome(None, "invalid_action", str(exc), None)
        result = await self.sb.act_directly(app.name, self.customer, parsed.to_json())
        refusal = (result or {}).get("refusal")
        return ActOutcome(
            None, refusal["code"] if refusal else None, refusal["message"] if refusal else None,
            result,
        )  # fmt: skip

    async def _mid(self, ref: str) -> str:
        if ref in self.refs:
            return self.refs[ref]
        if ref in ("last_received", "last_sent"):
            view = await self.sb.sim("GET", f"/sim/customers/{self.customer}")
            items = view["received" if ref == "last_received" else "sent"]
            if not items:
                who = "received" if ref == "last_received" else "sent"
                raise ScenarioError(f"{ref}: the customer has not {who} any message yet")
            return str(items[-1]["mid"])
        raise ScenarioError(f"unknown message reference {ref!r}")  # the schema catches this


def _inbox_app_id(name: str) -> str | None:
    from orchestrator.sandbox.simulator import INSTAGRAM_INBOX_APP_ID, PAGE_INBOX_APP_ID

    ids = {"instagram_inbox": INSTAGRAM_INBOX_APP_ID, "page_inbox": PAGE_INBOX_APP_ID}
    return ids.get(name) if name in FOREIGN_INBOXES else None


def _covered(obs: Observation) -> set[tuple[str, str]]:
    """The (state, trigger) pairs decided during the step: each event's decision, and the
    decisions on actions of in-process apps, which run inline with their delivery."""
    decisions = [e["result"] for e in obs.events]
    for row in obs.deliveries:
        actions = row["result"].get("actions") if isinstance(row["result"], dict) else None
        decisions += [a for a in actions or [] if isinstance(a, dict)]
    out = set()
    for d in decisions:
        if d.get("trigger") and d.get("from_state"):
            out.add((str(d["from_state"]), str(d["trigger"])))
    return out


def _outcome(act: ActOutcome) -> str:
    status = f" (HTTP {act.status})" if act.status is not None else ""
    if act.refusal:
        return f"refused {act.refusal}{status}: {act.message}"
    return f"accepted{status}"
