"""The model the `transitions` machine drives: `Run`, one decision in progress, with the
`Classified` trigger it fires and the `Owner` that trigger names (target, new owner or
requester). Handlers receive a `Run`, read the view and policy from it, and collect effects,
notes and a possible refusal on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from state_machines.effects import Effect, Refusal, RefusalCode
from state_machines.model import FOREIGN_PREFIX, AppSpec, ConversationView, Policy
from state_machines.triggers import AppAction, Trigger


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds (or should hold) the thread: nobody, one of our apps, or a foreign app."""

    kind: Literal["idle", "bot", "human", "foreign"]
    app: AppSpec | None = None
    foreign_id: str | None = None

    @property
    def key(self) -> str | None:
        """The `owner_app` value for this owner."""
        if self.app is not None:
            return self.app.name
        return FOREIGN_PREFIX + self.foreign_id if self.foreign_id else None

    @property
    def app_id(self) -> str | None:
        return self.app.app_id if self.app is not None else self.foreign_id


@dataclass(slots=True)
class Classified:
    name: str
    notes: list[str] = field(default_factory=list)
    actor: AppSpec | None = None  # the app performing the action
    target: Owner | None = None  # pass/escalation target, new owner, or requester
    metadata: str | None = None
    refusal: Refusal | None = None  # for action:invalid
    # The owner passes because request_policy=grant answered someone's request: the owner
    # did not decide it, so it is told it lost control like any other app.
    granted: bool = False


class Run:
    """One decision in progress: the model one event of the machine is fired for."""

    state: str  # the machine's state attribute: set here, moved by the machine

    def __init__(
        self,
        view: ConversationView,
        trig: Trigger,
        now: datetime,
        policy: Policy,
        cls: Classified,
    ) -> None:
        self.state = view.state.value
        self.before = view
        self.view = view
        self.input = trig
        self.now = now
        self.policy = policy
        self.cls = cls
        self.effects: list[Effect] = []
        self.notes: list[str] = list(cls.notes)
        self.refusal: Refusal | None = None
        self.warnings: list[str] = []

    @property
    def actor(self) -> AppSpec:
        assert self.cls.actor is not None, "action rows always have an actor"
        return self.cls.actor

    @property
    def target(self) -> Owner:
        assert self.cls.target is not None, "this row always has a target"
        return self.cls.target

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def warn(self, text: str) -> None:
        """For operators: the edge logs it as a warning and counts it."""
        self.warnings.append(text)
        self.notes.append(text)

    def update(self, **changes: Any) -> None:
        if changes:
            self.view = self.view.replace(**changes)

    def refuse(self, code: RefusalCode, message: str, rule: str) -> None:
        self.refusal = Refusal(code, message, rule)


def action_of(run: Run) -> Any:
    assert isinstance(run.input, AppAction)
    return run.input.action
