"""Triggers: what happened to a conversation, as the state machine's inputs.

Every trigger carries `at`, a timezone-aware datetime: the event's own time (Meta's timestamp
for webhooks, the arrival time for app actions, the due time for timers). `event` fields hold
the webhook event's JSON and are passed through unchanged to the sub-apps.

Two clocks: `at` of a webhook trigger is Meta's clock, `at` of an action, timer or
reconciliation is ours. `rules.CLOCK_RULES` says which comparisons are allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from state_machines.actions import Action
from state_machines.model import TimerKind, require_aware

# Meta sends app ids as numbers or strings (docs/platform.md 2.8); the machine normalises them
# to str.
AppId = str | int
# Which field of Meta's webhook carried the copy the decision is made on: `messaging` (the
# receiving app owns the thread, or it is idle and the app is the default one) or `standby`
# (the receiving app does not own the thread). docs/platform.md 2.9.
Source = Literal["messaging", "standby"]


def _empty() -> Mapping[str, Any]:
    return {}


@dataclass(frozen=True, slots=True)
class CustomerMessage:
    """A message from the customer (never an echo). Always (re)opens the messaging window."""

    at: datetime
    mid: str
    text: str | None = None
    quick_reply_payload: str | None = None
    has_attachments: bool = False
    event: Mapping[str, Any] = field(default_factory=_empty)
    # Ownership evidence: the field of Meta's webhook that carried the copy decided on, and
    # our app whose webhook carried it (its name). "standby" from the app we believe in
    # control proves it is not the owner; "standby" with received_by=None means the edge
    # vouches that no app of ours got the event in `messaging[]`.
    source: Source = "messaging"
    received_by: str | None = None
    # Our apps known to have received a standby copy of this very event (Meta sends each
    # app one copy; intake stores the first and records the standby copies it drops as
    # duplicates): with several apps, the believed controller's standby copy is evidence
    # even when another app's copy was the one stored.
    standby_by: tuple[str, ...] = ()
    # A control move we decided (pass, take, release) has not been performed at Meta yet: the
    # app it names may still get standby copies until it is, so its copy proves nothing.
    control_pending: bool = False

    def __post_init__(self) -> None:
        require_aware(self.at, "CustomerMessage.at")


@dataclass(frozen=True, slots=True)
class CustomerActivity:
    """Any other customer event: postback, reaction, read, referral, message_edit,
    message_deleted, comment (the edge decides `opens_window`, docs/platform.md 4.5)."""

    at: datetime
    kind: str
    opens_window: bool
    event: Mapping[str, Any] = field(default_factory=_empty)
    payload: str | None = None  # a postback's payload (may escalate)
    source: Source = "messaging"  # as for CustomerMessage
    received_by: str | None = None
    standby_by: tuple[str, ...] = ()  # as for CustomerMessage
    control_pending: bool = False  # as for CustomerMessage

    def __post_init__(self) -> None:
        require_aware(self.at, "CustomerActivity.at")


@dataclass(frozen=True, slots=True)
class Echo:
    """A message sent from the business side: by one of our apps, a foreign inbox, or the
    Instagram app itself (then `app_id` is None)."""

    at: datetime
    app_id: AppId | None
    mid: str | None = None
    event: Mapping[str, Any] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        require_aware(self.at, "Echo.at")


@dataclass(frozen=True, slots=True)
class AppAction:
    """An action from one of our sub-apps (in-process handler or vendor over REST)."""

    at: datetime
    app: str
    action: Action
    request_id: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.at, "AppAction.at")


@dataclass(frozen=True, slots=True)
class MetaHandover:
    """A `messaging_handovers` webhook (docs/platform.md 2.8). App ids may be numbers or strings."""

    at: datetime
    kind: Literal["pass", "take", "request"]
    previous_owner_app_id: AppId | None = None
    new_owner_app_id: AppId | None = None
    requested_owner_app_id: AppId | None = None
    metadata: str | None = None
    event: Mapping[str, Any] = field(default_factory=_empty)

    def __post_init__(self) -> None:
        require_aware(self.at, "MetaHandover.at")


@dataclass(frozen=True, slots=True)
class AppRolesChanged:
    """An `app_roles` webhook (docs/platform.md 2.10): app id → roles."""

    at: datetime
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_aware(self.at, "AppRolesChanged.at")


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A durable timer came due; `generation` is the one it was set with."""

    at: datetime
    kind: TimerKind
    generation: int

    def __post_init__(self) -> None:
        require_aware(self.at, "TimerFired.at")


@dataclass(frozen=True, slots=True)
class OwnerReconciled:
    """Meta's answer to `thread_owner`, asked by the edge after Meta refused for ownership or
    for a `CheckOwner` effect; None means the thread is idle. `at` is when we got the answer
    (our clock)."""

    at: datetime
    owner_app_id: AppId | None
    # thread_owner's `expiration` when Meta gave one: when the owner's control ends.
    expires_at: datetime | None = None

    def __post_init__(self) -> None:
        require_aware(self.at, "OwnerReconciled.at")
        if self.expires_at is not None:
            require_aware(self.expires_at, "OwnerReconciled.expires_at")


@dataclass(frozen=True, slots=True)
class DisclosureUndelivered:
    """The outbox gave up on a disclosure (issue 9.4): Meta never got it, so the customer was
    not told. The automated messages queued behind it were held (not sent, `held` of them);
    the disclosure is due again. `at` is our clock."""

    at: datetime
    held: int = 0
    reason: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.at, "DisclosureUndelivered.at")


Trigger = (
    CustomerMessage
    | CustomerActivity
    | Echo
    | AppAction
    | MetaHandover
    | AppRolesChanged
    | TimerFired
    | OwnerReconciled
    | DisclosureUndelivered
)
