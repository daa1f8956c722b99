"""The scenario language, whole: every step, every expectation, every key at every level.

One definition serves three purposes: `validate` checks a file when it loads (before anything
runs; every mistake with its step number, key path and a "did you mean"), `reference` (in
`scenario_reference.py`) documents it for `orchestrator scenarios reference` and the README,
and the runner dispatches on the same step names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.config.types import (
    AccountConfig,
    AppConfig,
    DisclosureConfig,
    HandoverConfig,
    RateLimitConfig,
    ServiceConfig,
)
from orchestrator.sandbox.scenario_kinds import (
    AnyOf,
    Boolean,
    Choice,
    Ctx,
    Duration,
    DynamicChoice,
    Field,
    Fields,
    Integer,
    Kind,
    ListOf,
    MapOf,
    Mid,
    Null,
    Number,
    Open,
    Problem,
    Text,
    join,
    suggest,
)

STATES = ("bot", "pending_human", "human")
TIMERS = ("pending_timeout", "human_idle", "control_expiry")
FOREIGN_INBOXES = {"instagram_inbox": "Instagram Inbox", "page_inbox": "Page Inbox"}
INBOX_DOES = ("take", "reply", "pass", "release", "request")


def _apps(ctx: Ctx) -> list[str]:
    return list(ctx.apps)


def _apps_and_inboxes(ctx: Ctx) -> list[str]:
    return [*ctx.apps, *FOREIGN_INBOXES]


def _meta_owner_names(ctx: Ctx) -> list[str]:
    return [*ctx.apps, *FOREIGN_INBOXES.values()]


APP = DynamicChoice("an app name of the scenario's config", _apps, "app")
SENDER = DynamicChoice(
    "an app name of the config, instagram_inbox or page_inbox", _apps_and_inboxes, "sender"
)


class OwnerName(Kind):
    """Our view of the owner: an app name, `foreign:<app id>`, or null (idle)."""

    types = (str, type(None))
    label = "an app name, `foreign:APP_ID`, or null (idle)"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if value is None or (isinstance(value, str) and value.startswith("foreign:")):
            return
        APP.check(value, path, ctx)


class GraphCall(Kind):
    """`"APP CALL"`, e.g. `"bot messages"`, `"support take_thread_control"`."""

    types = (str,)
    label = 'an app and its Graph call (e.g. "bot messages", "support pass_thread_control")'

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if not isinstance(value, str) or len(value.split()) != 2:
            ctx.fail(path, f"expected {self.label}, got {value!r}")
            return
        APP.check(value.split()[0], path, ctx)


MAYBE_TEXT = AnyOf(Text(), Null(), label="text or null")
ATTACHMENT = AnyOf(
    Text(),
    Fields(
        "an attachment {type, url}",
        type=Field(Text(), "image, video, audio, file, …"),
        url=Field(Text(), "the attachment's URL"),
    ),
    label="an attachment type (image, file, …) or {type, url}",
)
QUICK_REPLY = AnyOf(
    Text(),
    Fields("a quick reply {title, payload}", title=Field(Text()), payload=Field(Text())),
    label="a quick reply payload or {title, payload}",
)
RECEIVED_ITEM = AnyOf(
    Text(),
    Fields(
        "a received message {text, contains, tag, sender, …}",
        text=Field(MAYBE_TEXT, "the exact text"),
        contains=Field(Text(), "a part of the text"),
        tag=Field(MAYBE_TEXT, "the message tag (null = none, HUMAN_AGENT)"),
        messaging_type=Field(Text(), "RESPONSE, MESSAGE_TAG, …"),
        sender=Field(SENDER, "the app that sent it (instagram_inbox for the Inbox)"),
        quick_replies=Field(ListOf(QUICK_REPLY), "exactly these quick replies, in order"),
        attachments=Field(ListOf(ATTACHMENT), "exactly these attachments, in order"),
    ),
    label="a text (exact) or {text, contains, tag, sender, quick_replies, attachments}",
)
DELIVERY_ITEM = AnyOf(
    Text(),
    Fields(
        "a delivery {type, standby, metadata, …}",
        type=Field(Text(), "the event type (message, handover_requested, control_lost, …)", True),
        standby=Field(Boolean(), "a standby copy (information only)"),
        metadata=Field(MAYBE_TEXT, "the handover metadata (customer_request, bot_failure, …)"),
        reason=Field(MAYBE_TEXT, "why control moved (control_lost, handover_ended)"),
        text=Field(MAYBE_TEXT, "the customer's text, for message events"),
        fields=Field(
            MapOf(Text(), Open()),
            "any other payload fields, by dotted path (e.g. event.text, requested_by)",
        ),
    ),
    label='"type", "standby:type" or {type, standby, metadata, reason, text, fields}',
)
DEAD_LETTER = Fields(
    "a dead letter {app, kind, reason}",
    app=Field(APP, "the app whose effect was given up"),
    kind=Field(Choice("send_message", "private_reply", "sender_action", "thread_control")),
    reason=Field(Text(), "a part of the recorded reason"),
)
LEFT = AnyOf(Duration(), Choice("closed"), label="a duration left, or closed")


@dataclass(frozen=True)
class StepSpec:
    name: str
    kind: Kind
    doc: str
    example: str
    names: str | None = None  # what `as:` names on this step (None: `as:` not allowed)


@dataclass(frozen=True)
class ExpectSpec:
    name: str
    kind: Kind
    doc: str
    example: str


STEPS: dict[str, StepSpec] = {
    s.name: s
    for s in (
        StepSpec(
            "say",
            AnyOf(
                Text(),
                Fields(
                    "{text, quick_reply, attachments, reply_to}",
                    text=Field(Text(), "what the customer writes"),
                    quick_reply=Field(Text(), "the payload of the quick reply they tapped"),
                    attachments=Field(
                        ListOf(
                            Fields(
                                "{type, url}",
                                type=Field(Choice("image", "video", "audio", "file"), "", True),
                                url=Field(Text(), "", True),
                            )
                        ),
                        "files the customer sends",
                    ),
                    reply_to=Field(Mid(), "the message they reply to"),
                ),
            ),
            "The customer writes a message (text, a tapped quick reply, attachments).",
            'say: {text: "Ja, bitte", quick_reply: TALK_TO_HUMAN}',
            names="the customer's message",
        ),
        StepSpec(
            "burst",
            AnyOf(
                ListOf(Text(), nonempty=True),
                Fields(
                    "{texts, every}",
                    texts=Field(ListOf(Text(), nonempty=True), "the messages", True),
                    every=Field(Duration(), "each one this much later than the previous"),
                ),
            ),
            "Several customer messages delivered together in one webhook POST.",
            'burst: {texts: ["eins", "zwei"], every: 1s}',
        ),
        StepSpec(
            "react",
            AnyOf(
                Mid(),
                Fields(
                    "{to, reaction}",
                    to=Field(Mid(), "the message (default last_received)"),
                    reaction=Field(Text(), "love, like, … or an emoji (default love)"),
                ),
            ),
            "The customer reacts to a message.",
            "react: {to: welcome, reaction: like}",
        ),
        StepSpec(
            "unreact",
            Mid(),
            "The customer removes their reaction from a message.",
            "unreact: welcome",
        ),
        StepSpec(
            "unsend",
            Mid(),
            "The customer unsends one of their messages (ours must erase its content).",
            "unsend: iban",
        ),
        StepSpec(
            "edit",
            Fields(
                "{message, text}",
                message=Field(Mid(), "the customer's message to edit", True),
                text=Field(Text(), "the new text", True),
            ),
            "The customer edits one of their messages.",
            'edit: {message: order, text: "Bestellung 4712, nicht 4711"}',
        ),
        StepSpec(
            "read",
            AnyOf(Mid(), Null()),
            "The customer reads the business's messages (up to a message; empty = the last).",
            "read: last_received",
        ),
        StepSpec(
            "postback",
            AnyOf(
                Text(),
                Fields(
                    "{payload, title}",
                    payload=Field(Text(), "the button's payload", True),
                    title=Field(Text(), "the button's title (default: the payload)"),
                ),
            ),
            "The customer taps a button (postback).",
            "postback: VERSAND",
            names="the postback",
        ),
        StepSpec(
            "comment",
            AnyOf(
                Text(),
                Fields(
                    "{text, media_id}",
                    text=Field(Text(), "the comment", True),
                    media_id=Field(Text(), "the post"),
                ),
            ),
            "The customer comments on a post (act with comment_id: last_comment to answer).",
            'comment: "Gibt es das in Blau?"',
        ),
        StepSpec(
            "open_link",
            Text(),
            "The customer opens an ig.me link with this ref (a referral).",
            "open_link: summer_sale",
        ),
        StepSpec(
            "act",
            Fields(
                "{app, type, …the action's fields}",
                app=Field(APP, "the acting app", True),
                type=Field(Open(), "the action type (default reply); checked by the API"),
                text=Field(Text(), "shorthand for a reply's message.text"),
                mid=Field(Mid(), "the message an action refers to (react)"),
                comment_id=Field(
                    Choice("last_comment"), "the customer's latest comment (private_reply)"
                ),
                message=Field(Open(), "a Send API message object"),
                target_app=Field(Open(), "pass / escalate target"),
                metadata=Field(Open(), "handover metadata"),
                duration_s=Field(Open(), "extend: seconds"),
                reaction=Field(Open(), "react: the reaction"),
                reply_to_mid=Field(Mid(), "reply: the message answered"),
                reason=Field(Open(), "bot_failure: why the bot did not understand"),
            ),
            "An app acts: over the REST API when it has an api_key, else through the same queue "
            "an in-process handler uses. The action's own fields are checked by the product "
            "(a mistake is refused invalid_action either way, with the API's message).",
            "act: {app: support, type: pass, target_app: billing, metadata: Rechnung}",
            names="the last message the customer received during the step",
        ),
        StepSpec(
            "inbox",
            AnyOf(
                Choice(*INBOX_DOES),
                Fields(
                    "{do, text, target_app, metadata}",
                    do=Field(Choice(*INBOX_DOES), "what the Inbox does", True),
                    text=Field(Text(), "reply: the text"),
                    target_app=Field(SENDER, "pass: to this app (default: the primary)"),
                    metadata=Field(Text(), "take / pass / request metadata"),
                ),
            ),
            "A human in the Instagram Inbox (outside our apps): take, reply, pass, release, "
            "request (asks our app holding the thread for control).",
            'inbox: {do: pass, target_app: support, metadata: "bitte übernehmen"}',
            names="the Inbox's reply",
        ),
        StepSpec(
            "advance",
            Duration(),
            "Move the shared clock (Meta's and ours); due timers fire.",
            "advance: 23h59m",
        ),
        StepSpec(
            "faults",
            Fields(
                "{batch, redeliver, out_of_order, graph_5xx_rate, graph_613_rate, numeric_app_ids,"
                " seed}",
                batch=Field(Integer(1), "events per webhook POST"),
                redeliver=Field(Boolean(), "every POST twice"),
                out_of_order=Field(Boolean(), "shuffle events"),
                graph_5xx_rate=Field(Number(), "share of Graph calls answered 500"),
                graph_613_rate=Field(Number(), "share of Graph calls answered 613 (throttled)"),
                numeric_app_ids=Field(Boolean(), "app ids as numbers in handover webhooks"),
                seed=Field(Integer(None), "the faults' random seed"),
                batch_window_s=Field(Number(), "how long events are gathered for a batch"),
            ),
            "Meta on a bad day, from this step on.",
            "faults: {redeliver: true, out_of_order: true}",
        ),
    )
}

EXPECTATIONS: dict[str, ExpectSpec] = {
    e.name: e
    for e in (
        ExpectSpec("state", Choice(*STATES), "Our conversation state.", "state: pending_human"),
        ExpectSpec(
            "owner",
            OwnerName(),
            "Our view of the thread owner (null = idle, `foreign:APP_ID` = an Inbox).",
            "owner: support",
        ),
        ExpectSpec(
            "meta_owner",
            AnyOf(
                DynamicChoice("an app name or an Inbox", _meta_owner_names, "owner"),
                Null(),
                label="an app name, Instagram Inbox, Page Inbox, or null",
            ),
            "Meta's (the simulator's) thread owner.",
            "meta_owner: Instagram Inbox",
        ),
        ExpectSpec(
            "received",
            ListOf(RECEIVED_ITEM),
            "Exactly these messages reached the customer during the step, in order.",
            'received: [{text: "Hallo", tag: null, sender: support}]',
        ),
        ExpectSpec(
            "received_count",
            Integer(),
            "How many messages reached the customer during the step.",
            "received_count: 2",
        ),
        ExpectSpec(
            "graph",
            ListOf(GraphCall()),
            "Exactly these Graph POST calls during the step, in order.",
            'graph: ["bot messages", "bot pass_thread_control"]',
        ),
        ExpectSpec(
            "deliveries",
            MapOf(APP, ListOf(DELIVERY_ITEM)),
            "Exactly these deliveries to each app listed (apps not listed are not checked).",
            "deliveries: {support: [{type: handover_requested, metadata: customer_request}]}",
        ),
        ExpectSpec(
            "refused",
            MAYBE_TEXT,
            "The act's refusal code (null = accepted).",
            "refused: window_closed",
        ),
        ExpectSpec(
            "refusal_message",
            Text(),
            "A part of the refusal's explanation (the API's message).",
            'refusal_message: "24 h"',
        ),
        ExpectSpec(
            "status", Integer(100), "The HTTP status of an act via the REST API.", "status: 409"
        ),
        ExpectSpec(
            "transcript_deleted",
            Integer(),
            "Tombstones (erased messages) in our transcript, in total.",
            "transcript_deleted: 1",
        ),
        ExpectSpec(
            "transcript_count",
            Fields("{in, out}", **{"in": Field(Integer()), "out": Field(Integer())}),
            "Rows our transcript gained during the step (in = from the customer).",
            "transcript_count: {in: 1, out: 0}",
        ),
        ExpectSpec(
            "transcript_in",
            ListOf(Text()),
            "The customer's messages stored during the step, in transcript order.",
            'transcript_in: ["eins", "zwei"]',
        ),
        ExpectSpec(
            "erased",
            ListOf(Mid()),
            "These customer messages are tombstones: no text or attachments in the transcript, "
            "the stored webhook erased too.",
            "erased: [iban]",
        ),
        ExpectSpec(
            "not_stored",
            ListOf(Text()),
            "These texts appear nowhere in our database (transcript, events, outbox).",
            'not_stored: ["DE89 3704"]',
        ),
        ExpectSpec(
            "dead_letters",
            AnyOf(Integer(), ListOf(DEAD_LETTER)),
            "Outbox rows dead-lettered so far: a count, or exactly these with their reasons.",
            "dead_letters: [{app: bot, kind: send_message, reason: window}]",
        ),
        ExpectSpec(
            "timers",
            MapOf(Choice(*TIMERS), AnyOf(Duration(), Null())),
            "Timers armed, as the time left until each is due (null = not armed). Timers not "
            "listed are not checked.",
            "timers: {pending_timeout: 10m, human_idle: null}",
        ),
        ExpectSpec(
            "window",
            Fields(
                "{automated, human}",
                automated=Field(LEFT, "time left for automated messages (24 h window)"),
                human=Field(LEFT, "time left for human-agent messages (7-day window)"),
            ),
            "Time left in the messaging windows, inclusive: a message at exactly 24 h (7 d) "
            "after the customer's last message is still inside; `closed` past it.",
            "window: {automated: 0s, human: 6d}",
        ),
    )
}

STEP_KEYS = {
    "expect": "what must hold after the step (see the expectations)",
    "note": "a sentence shown in the run's table next to the action",
    "as": "a name for the message the step produced, usable by unsend, react, edit, read, "
    "reply_to, act's mid and erased",
}
FILE_KEYS = {
    "name": "the scenario's title",
    "description": "what it shows and which transitions it covers",
    "config": "overrides deep-merged into config/orchestrator.toml (a list such as apps "
    "replaces the whole list)",
    "faults": "the simulator's faults from the start, as in the faults step",
    "channel": "where the customer writes: instagram (default) or messenger (the account's "
    "Facebook Page; its account must list messenger in channels, as the shipped config does)",
    "steps": "the steps, in order",
}
CHANNELS = ("instagram", "messenger")
ACT_ONLY = {
    "refused": "a refusal",
    "refusal_message": "a refusal",
    "status": "an HTTP status",
}
EXPECT = Fields("expectations", **{n: Field(e.kind, e.doc) for n, e in EXPECTATIONS.items()})


def step_kind(step: Mapping[str, Any]) -> str:
    return next(k for k in step if k in STEPS)


def validate(data: Any, *, apps: list[str] | None = None) -> list[Problem]:
    """Every problem of a scenario file (empty when it is fine). `apps` are the app names of
    its config (None: take them from the file's config overrides or the shipped config)."""
    ctx = Ctx()
    if not isinstance(data, Mapping):
        ctx.fail("(file)", "expected a mapping with name, steps, …")
        return ctx.problems
    for key in data:
        if key not in FILE_KEYS:
            ctx.fail(str(key), f"unknown key{suggest(str(key), FILE_KEYS)}")
    if "name" in data and not isinstance(data["name"], str):
        ctx.fail("name", f"expected text, got {data['name']!r}")
    if "faults" in data:
        STEPS["faults"].kind.check(data["faults"], "faults", ctx)
    if "channel" in data and data["channel"] not in CHANNELS:
        ctx.fail("channel", f"{data['channel']!r}: expected one of {', '.join(CHANNELS)}")
    if "config" in data:
        _check_config(data["config"], ctx)
    ctx.apps = apps if apps is not None else _config_apps(data.get("config"))
    steps = data.get("steps")
    if not isinstance(steps, list) or not steps:
        ctx.fail("steps", "expected a non-empty list of steps")
        return ctx.problems
    for i, step in enumerate(steps, 1):
        ctx.step = i
        _check_step(step, ctx)
    return ctx.problems


def _check_step(step: Any, ctx: Ctx) -> None:
    if not isinstance(step, Mapping):
        ctx.fail("(step)", f"expected a mapping such as {{say: Hallo}}, got {step!r}")
        return
    kinds = [k for k in step if k in STEPS]
    unknown = [k for k in step if k not in STEPS and k not in STEP_KEYS]
    for key in unknown:
        ctx.fail(str(key), f"unknown key{suggest(str(key), [*STEPS, *STEP_KEYS])}")
    if len(kinds) != 1:
        if not unknown or kinds:
            ctx.fail("(step)", f"needs exactly one of {', '.join(STEPS)} (got {list(step)})")
        return
    spec = STEPS[kinds[0]]
    spec.kind.check(step[spec.name], spec.name, ctx)
    if "note" in step and not isinstance(step["note"], str):
        ctx.fail("note", f"expected text, got {step['note']!r}")
    if "expect" in step:
        if step["expect"] is None:
            ctx.fail("expect", "is empty; write the expectations or leave the key out")
        else:
            EXPECT.check(step["expect"], "expect", ctx)
            if spec.name != "act" and isinstance(step["expect"], Mapping):
                for key in ACT_ONLY:
                    if key in step["expect"]:
                        ctx.fail(join("expect", key), f"only an act step has {ACT_ONLY[key]}")
    if "as" in step:
        name = step["as"]
        if spec.names is None:
            ctx.fail("as", f"a {spec.name} step produces no message to name")
        elif not isinstance(name, str) or not name.isidentifier():
            ctx.fail("as", f"expected a name (letters, digits, _), got {name!r}")
        elif name in Mid.KEYWORDS or name in ctx.refs:
            ctx.fail("as", f"the name {name!r} is already taken")
        else:
            ctx.refs.add(name)


# -- config overrides ---------------------------------------------------------------------

_SECTIONS: dict[str, Any] = {
    "service": ServiceConfig,
    "accounts": [AccountConfig],
    "apps": [AppConfig],
    "handover": HandoverConfig,
    "disclosure": DisclosureConfig,
    "rate_limits": RateLimitConfig,
}
_OPEN = {"escalation_keywords", "text", "no_agent_text", "escalation_text", "options"}


def _keys(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _check_config(value: Any, ctx: Ctx) -> None:
    if not isinstance(value, Mapping):
        ctx.fail("config", f"expected a mapping of config sections, got {value!r}")
        return
    for section, body in value.items():
        path = join("config", str(section))
        shape = _SECTIONS.get(str(section))
        if shape is None:
            ctx.fail(path, f"unknown config section{suggest(str(section), _SECTIONS)}")
        elif isinstance(shape, list):
            if not isinstance(body, list):
                ctx.fail(path, "expected a list (it replaces the shipped list)")
                continue
            for i, item in enumerate(body):
                _check_section(item, shape[0], join(path, i), ctx)
        else:
            _check_section(body, shape, path, ctx)


def _check_section(body: Any, cls: Any, path: str, ctx: Ctx) -> None:
    if not isinstance(body, Mapping):
        ctx.fail(path, f"expected a mapping, got {body!r}")
        return
    allowed = _keys(cls)
    for key in body:
        if key not in allowed:
            ctx.fail(join(path, str(key)), f"unknown config key{suggest(str(key), allowed)}")


def _config_apps(overrides: Any) -> list[str]:
    if isinstance(overrides, Mapping) and isinstance(overrides.get("apps"), list):
        return [str(a.get("name")) for a in overrides["apps"] if isinstance(a, Mapping)]
    from orchestrator.sandbox.scenario_defaults import shipped_config_data

    return [str(a.get("name")) for a in shipped_config_data().get("apps", [])]


__all__ = [
    "CHANNELS",
    "EXPECTATIONS",
    "FILE_KEYS",
    "FOREIGN_INBOXES",
    "STEPS",
    "STEP_KEYS",
    "ExpectSpec",
    "Problem",
    "StepSpec",
    "step_kind",
    "validate",
]
