"""Effects: what the state machine decided should happen, executed in order by the outbox.

`app` is always the name of one of OUR apps: the one whose token makes the Graph call, or the
one a `Deliver` goes to. `to_json()` / `effect_from_json()` give a plain form for storage.

Internal events handed to sub-apps with `Deliver` (besides customer webhook events, which
are passed through unchanged as `event`). An app is never told what it caused itself.

- `{"type": "handover_requested", "from_app", "metadata", "reason", "event"?}` — to a human
  app: the conversation was passed to you; `accept` it (a reply accepts too). `reason`:
  "bot" (escalate action), "customer_request" (keyword or escalation payload; `event` holds
  the customer's message), "bot_failure", "pass", "transfer", "meta_pass", "reconciled".
- `{"type": "handover_ended", "from_app", "metadata", "reason"}` — to the bot app that is in
  control again after a human stretch. `reason`: "released", "passed_back", "taken",
  "pending_timeout", "human_idle", "control_expiry", "meta_pass", "meta_take", "reconciled".
  The disclosure was sent just before it, or precedes the bot's next automated message.
- `{"type": "control_received", "from_app", "metadata", "reason"}` — to a bot app of ours
  that got the thread from another bot app ("pass", "released" for the primary when a bot
  releases to idle, "meta_pass", "meta_take", "reconciled").
- `{"type": "control_lost", "reason", "to_app", "metadata"}` — to an app of ours that lost
  the thread without asking: stop working on it. `reason` as above plus "taken".
- `{"type": "thread_control_request", "requested_by", "metadata", "requested_owner_app_id"?}`
  — to the app in control: another app asks for the thread (request_policy "ask_owner");
  pass it or ignore it.
- `{"type": "action_refused", "code", "message", "rule", "action", "request_id"}` — to the
  app whose action was refused (the only effect of a refused decision): what it asked, why
  not (`code`, `message` for people, `rule`). Never answer it with the same action again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

from state_machines.model import ConversationView, TimerKind, parse_datetime

MessagingType = Literal["RESPONSE", "UPDATE", "MESSAGE_TAG"]
RefusalCode = Literal[
    "not_owner",
    "window_closed",
    "human_agent_window_closed",
    "not_allowed",
    "invalid",
    "private_reply_used",
    "private_reply_expired",
]


@dataclass(frozen=True, slots=True)
class SendMessage:
    type: ClassVar[str] = "send_message"
    app: str
    message: Mapping[str, Any]
    messaging_type: MessagingType
    tag: str | None
    purpose: Literal["reply", "disclosure", "notice"]
    reply_to_mid: str | None = None
    # Written by automation (a bot app, or the disclosure itself): such a message depends on
    # the disclosure before it being delivered (issue 9.4; the outbox holds it otherwise).
    automated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "app": self.app,
            "message": dict(self.message),
            "messaging_type": self.messaging_type,
            "tag": self.tag,
            "purpose": self.purpose,
            "reply_to_mid": self.reply_to_mid,
            "automated": self.automated,
        }


@dataclass(frozen=True, slots=True)
class PrivateReplyEffect:
    type: ClassVar[str] = "private_reply"
    app: str
    comment_id: str
    message: Mapping[str, Any]
    # Written by automation; `discloses`: the disclosure leads its text (issue 9.4: if it is
    # never delivered, the disclosure is due again).
    automated: bool = False
    discloses: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "app": self.app,
            "comment_id": self.comment_id,
            "message": dict(self.message),
            "automated": self.automated,
            "discloses": self.discloses,
        }


@dataclass(frozen=True, slots=True)
class SenderAction:
    type: ClassVar[str] = "sender_action"
    app: str
    action: Literal["react", "unreact", "mark_seen", "typing_on"]
    mid: str | None = None
    reaction: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "app": self.app,
            "action": self.action,
            "mid": self.mid,
            "reaction": self.reaction,
        }


@dataclass(frozen=True, slots=True)
class ThreadControl:
    """A thread-control call (docs/platform.md 5) made with `app`'s token."""

    type: ClassVar[str] = "thread_control"
    app: str
    action: Literal["pass", "take", "release", "request", "extend"]
    target_app_id: str | None = None
    metadata: str | None = None
    duration_s: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "app": self.app,
            "action": self.action,
            "target_app_id": self.target_app_id,
            "metadata": self.metadata,
            "duration_s": self.duration_s,
        }


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand an event to a sub-app; `standby` copies are informational only."""

    type: ClassVar[str] = "deliver"
    app: str
    event: Mapping[str, Any]
    standby: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "app": self.app,
            "event": dict(self.event),
            "standby": self.standby,
        }


@dataclass(frozen=True, slots=True)
class CheckOwner:
    """Ask Meta who owns the thread (`GET thread_owner` with `app`'s token) and feed the
    answer back as an `OwnerReconciled` trigger: our state and Meta's evidence disagree."""

    type: ClassVar[str] = "thread_owner"
    app: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "app": self.app, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class SetTimer:
    """(Re)arm the conversation's timer of this kind; replaces an armed one."""

    type: ClassVar[str] = "set_timer"
    kind: TimerKind
    due_at: datetime
    generation: int

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "kind": self.kind,
            "due_at": self.due_at.isoformat(),
            "generation": self.generation,
        }


@dataclass(frozen=True, slots=True)
class CancelTimer:
    type: ClassVar[str] = "cancel_timer"
    kind: TimerKind

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "kind": self.kind}


Effect = (
    SendMessage
    | PrivateReplyEffect
    | SenderAction
    | ThreadControl
    | Deliver
    | CheckOwner
    | SetTimer
    | CancelTimer
)


def effect_from_json(data: Mapping[str, Any]) -> Effect:
    """Inverse of `Effect.to_json()`."""
    body = {k: v for k, v in data.items() if k != "type"}
    kind = data.get("type")
    if kind == SendMessage.type:
        return SendMessage(**body)
    if kind == PrivateReplyEffect.type:
        return PrivateReplyEffect(**body)
    if kind == SenderAction.type:
        return SenderAction(**body)
    if kind == ThreadControl.type:
        return ThreadControl(**body)
    if kind == Deliver.type:
        return Deliver(**body)
    if kind == CheckOwner.type:
        return CheckOwner(**body)
    if kind == SetTimer.type:
        due = parse_datetime(body.pop("due_at", None), "due_at")
        if due is None:
            raise ValueError("due_at: required")
        return SetTimer(due_at=due, **body)
    if kind == CancelTimer.type:
        return CancelTimer(**body)
    raise ValueError(f"unknown effect type {kind!r}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an action was refused: `message` for humans, `rule` names the rule. A refused
    decision changes nothing; its only effect delivers `to_event()` to the app that acted."""

    code: RefusalCode
    message: str
    rule: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "rule": self.rule}

    def to_event(
        self, action: Mapping[str, Any] | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        """The `action_refused` event for the app whose action this refusal answers."""
        return {
            "type": "action_refused",
            **self.to_json(),
            "action": dict(action) if action is not None else None,
            "request_id": request_id,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of `decide`: the new snapshot and the effects, in execution order.

    `transition` names the transition taken (for logs, metrics and QA), None when control
    did not move. `trigger_name` is the TRANSITION_TABLE trigger the input was classified as.
    `warnings` are for operators (log them as warnings and count them): e.g. Meta's app roles
    disagree with the config.
    """

    view: ConversationView
    effects: tuple[Effect, ...]
    transition: str | None
    refusal: Refusal | None
    notes: tuple[str, ...]
    trigger_name: str = ""
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A plain summary for logs and API answers (the view is included in full)."""
        return {
            "trigger": self.trigger_name,
            "transition": self.transition,
            "state": self.view.state.value,
            "view": self.view.to_json(),
            "effects": [e.to_json() for e in self.effects],
            "refusal": self.refusal.to_json() if self.refusal else None,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }
