"""The conversation model: states, sub-app specs, the policy and the stored snapshot.

Everything here is a plain value: no I/O, no clock, no logging. The lead builds one `Policy`
from the config at start-up and stores one `ConversationView` (as JSON) per conversation.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

AppRole = Literal["primary", "secondary"]
AppKind = Literal["bot", "human"]
TimerKind = Literal["pending_timeout", "human_idle", "control_expiry"]
TIMER_KINDS: tuple[TimerKind, ...] = ("pending_timeout", "human_idle", "control_expiry")

# docs/platform.md 1.4: inboxes that are not ours but can own a thread; both are human inboxes.
PAGE_INBOX_APP_ID = "263902037430900"
INSTAGRAM_INBOX_APP_ID = "1217981644879628"
DEFAULT_FOREIGN_APPS: Mapping[str, str] = MappingProxyType(
    {PAGE_INBOX_APP_ID: "page_inbox", INSTAGRAM_INBOX_APP_ID: "instagram_inbox"}
)
# A thread owned by an app that is not ours is stored as `foreign:<app_id>`.
FOREIGN_PREFIX = "foreign:"

DEFAULT_DISCLOSURE_TEXT: Mapping[str, str] = MappingProxyType(
    {
        "en": "You are chatting with an automated assistant.",
        "de": "Sie schreiben mit einem automatisierten Assistenten.",
    }
)
DEFAULT_NO_AGENT_TEXT: Mapping[str, str] = MappingProxyType(
    {
        "en": "No agent is available right now. Our assistant will keep helping you.",
        "de": "Gerade ist leider niemand aus unserem Team erreichbar. "
        "Unser Assistent hilft Ihnen weiter.",
    }
)
DEFAULT_ESCALATION_KEYWORDS = ("mensch", "mitarbeiter", "agent", "human", "person")
DEFAULT_ESCALATION_PAYLOADS = ("TALK_TO_HUMAN",)

# Keywords match whole words plus common German/English inflections, so "mensch" matches
# "Menschen" and "mitarbeiter" matches "Mitarbeiterin", but "person" does not match "personal".
_KEYWORD_SUFFIXES = r"(?:e|en|n|s|es|er|ern|in|innen)?"


class State(StrEnum):
    BOT = "bot"
    PENDING_HUMAN = "pending_human"
    HUMAN = "human"


class PolicyError(ValueError):
    """The policy handed to the state machine is inconsistent."""


@dataclass(frozen=True, slots=True)
class AppSpec:
    """One of our sub-apps, as the state machine sees it."""

    name: str
    app_id: str
    role: AppRole
    kind: AppKind
    standby: bool = False  # receives standby copies of events while another app is in control
    can_take: bool = False  # may take control (the primary always may)

    def __post_init__(self) -> None:
        if not self.name or self.name.startswith(FOREIGN_PREFIX):
            raise PolicyError(f"app name {self.name!r} is empty or reserved")
        if not self.app_id:
            raise PolicyError(f"app {self.name!r}: app_id is empty")
        if self.role not in ("primary", "secondary"):
            raise PolicyError(f"app {self.name!r}: role must be primary or secondary")
        if self.kind not in ("bot", "human"):
            raise PolicyError(f"app {self.name!r}: kind must be bot or human")

    @property
    def is_bot(self) -> bool:
        return self.kind == "bot"

    @property
    def may_take(self) -> bool:
        return self.can_take or self.role == "primary"


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the decision core needs from the configuration."""

    apps: tuple[AppSpec, ...]
    disclosure_text: Mapping[str, str] = field(default_factory=lambda: DEFAULT_DISCLOSURE_TEXT)
    default_locale: str = "en"
    no_agent_text: Mapping[str, str] = field(default_factory=lambda: DEFAULT_NO_AGENT_TEXT)
    # Said by the bot just before it passes the thread to a human ("connecting you…"), so
    # the customer is not left in silence until an agent answers. Empty: say nothing.
    escalation_text: Mapping[str, str] = field(default_factory=dict)
    escalation_keywords: tuple[str, ...] = DEFAULT_ESCALATION_KEYWORDS
    escalation_payloads: tuple[str, ...] = DEFAULT_ESCALATION_PAYLOADS
    bot_failure_threshold: int = 3
    disclosure_lapse: timedelta = timedelta(hours=24)
    pending_timeout: timedelta = timedelta(minutes=10)
    human_idle_timeout: timedelta = timedelta(hours=4)
    request_policy: Literal["grant", "ask_owner"] = "ask_owner"
    default_human_app: str | None = None
    foreign_apps: Mapping[str, str] = field(default_factory=lambda: DEFAULT_FOREIGN_APPS)
    _by_name: Mapping[str, AppSpec] = field(init=False, repr=False, compare=False)
    _by_id: Mapping[str, AppSpec] = field(init=False, repr=False, compare=False)
    _keywords: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _primary: AppSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        apps = tuple(self.apps)
        object.__setattr__(self, "apps", apps)
        by_name: dict[str, AppSpec] = {}
        by_id: dict[str, AppSpec] = {}
        for app in apps:
            if app.name in by_name:
                raise PolicyError(f"duplicate app name {app.name!r}")
            if app.app_id in by_id:
                raise PolicyError(f"apps {by_id[app.app_id].name!r} and {app.name!r} share an id")
            if app.app_id in self.foreign_apps:
                raise PolicyError(f"app {app.name!r} uses the id of a foreign inbox")
            by_name[app.name] = app
            by_id[app.app_id] = app
        primaries = [a.name for a in apps if a.role == "primary"]
        if len(primaries) != 1:
            raise PolicyError(f"exactly one primary app is required, got {primaries or 'none'}")
        if self.bot_failure_threshold < 1:
            raise PolicyError("bot_failure_threshold must be at least 1")
        for name in ("disclosure_lapse", "pending_timeout", "human_idle_timeout"):
            if getattr(self, name) <= timedelta(0):
                raise PolicyError(f"{name} must be positive")
        if self.request_policy not in ("grant", "ask_owner"):
            raise PolicyError("request_policy must be grant or ask_owner")
        if self.default_human_app is not None:
            target = by_name.get(self.default_human_app)
            if target is None or target.kind != "human":
                raise PolicyError(
                    f"default_human_app {self.default_human_app!r} is not a human app of ours"
                )
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))
        object.__setattr__(self, "_by_id", MappingProxyType(by_id))
        object.__setattr__(self, "_keywords", _keyword_pattern(self.escalation_keywords))
        object.__setattr__(self, "_primary", by_name[primaries[0]])

    # --- lookups -------------------------------------------------------------------------

    @property
    def primary(self) -> AppSpec:
        return self._primary  # looked up once: asked several times per decision

    def app(self, name: str) -> AppSpec:
        """The app called `name`; KeyError when there is none."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"unknown app {name!r}") from None

    def find_app(self, name: str | None) -> AppSpec | None:
        return self._by_name.get(name) if name is not None else None

    def app_by_id(self, app_id: str | int | None) -> AppSpec | None:
        return self._by_id.get(str(app_id)) if app_id is not None else None

    def is_human_app_id(self, app_id: str | int | None) -> bool:
        """True for our human apps, the foreign inboxes and any id that is not ours: an owner
        we do not know is treated as human-side, so our automation stays silent."""
        if app_id is None:
            return False
        ours = self.app_by_id(app_id)
        return ours is None or ours.kind == "human"

    @property
    def escalation_target(self) -> AppSpec | None:
        """The human app escalations go to: `default_human_app`, else the first secondary
        human app, else any human app; None when we have no human app at all."""
        if self.default_human_app is not None:
            return self._by_name[self.default_human_app]
        humans = [a for a in self.apps if a.kind == "human"]
        secondary = [a for a in humans if a.role == "secondary"]
        candidates = secondary or humans
        return candidates[0] if candidates else None

    def foreign_id(self, name: str | None) -> str | None:
        """The app id of a foreign inbox named by label ("instagram_inbox"), by
        `foreign:<id>` or by its bare id; None when `name` names no foreign inbox."""
        if not name:
            return None
        if name.startswith(FOREIGN_PREFIX):
            return name[len(FOREIGN_PREFIX) :] or None
        if name in self.foreign_apps:
            return name
        for app_id, label in self.foreign_apps.items():
            if label == name:
                return app_id
        return None

    def owner_label(self, owner: str | None) -> str:
        """A readable name for an `owner_app` value: our app's name, the foreign inbox label
        ("instagram_inbox"), or "nobody (idle)"."""
        if owner is None:
            return "nobody (idle)"
        if owner.startswith(FOREIGN_PREFIX):
            app_id = owner[len(FOREIGN_PREFIX) :]
            return self.foreign_apps.get(app_id, f"app {app_id}")
        return owner

    # --- escalation ------------------------------------------------------------------------

    def mentions_escalation(self, text: str | None) -> bool:
        """Whether customer text asks for a human (case-insensitive, words or phrases)."""
        if not text or self._keywords is None:
            return False
        return self._keywords.search(text.casefold()) is not None

    def is_escalation_payload(self, payload: str | None) -> bool:
        return payload is not None and payload in self.escalation_payloads

    def localized(self, texts: Mapping[str, str], locale: str | None) -> str | None:
        """`texts[locale]`, else its base language ("de" for "de-AT"), else the default
        locale's text; None when none of them is configured."""
        for key in _locale_candidates(locale, self.default_locale):
            text = texts.get(key)
            if text:
                return text
        return None


def _locale_candidates(locale: str | None, default: str) -> list[str]:
    out: list[str] = []
    for value in (locale, default):
        if not value:
            continue
        for key in (value, value.replace("_", "-").split("-")[0]):
            if key not in out:
                out.append(key)
    return out


def _keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    parts = sorted(
        {r"\s+".join(re.escape(w) for w in kw.casefold().split()) for kw in keywords if kw.strip()},
        key=len,
        reverse=True,
    )
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + ")" + _KEYWORD_SUFFIXES + r"(?!\w)")


# --- the stored snapshot -------------------------------------------------------------------

_DATETIME_FIELDS = (
    "last_customer_message_at",
    "last_automated_at",
    "disclosed_at",
    "pending_since",
    "control_expires_at",
    "human_idle_due_at",
    "last_bot_failure_at",
    "meta_handover_at",
    "control_decided_at",
)


@dataclass(frozen=True, slots=True)
class ConversationView:
    """What the state machine knows about one conversation; stored as JSON by the lead."""

    state: State = State.BOT
    # Our app we believe owns the thread on Meta, or `foreign:<app_id>`; None = idle, which
    # means the primary (default) app may speak.
    owner_app: str | None = None
    # The human app targeted in pending_human / holding the thread in human (None when a
    # foreign inbox holds it).
    human_app: str | None = None
    locale: str = "en"
    last_customer_message_at: datetime | None = None  # the messaging-window anchor
    last_automated_at: datetime | None = None
    disclosed_at: datetime | None = None
    disclosure_due: bool = False
    bot_failures: int = 0
    handover_metadata: str | None = None
    pending_since: datetime | None = None
    control_expires_at: datetime | None = None  # Meta idles the thread at this time
    timer_generation: int = 0
    # When the human_idle timer fires: last human activity + human_idle_timeout, or later
    # when the human app extended its hold.
    human_idle_due_at: datetime | None = None
    # Time of the last BotFailure (for people reading the view).
    last_bot_failure_at: datetime | None = None
    # Order, not time, decides whether failures are consecutive: customer messages counted,
    # and that count when the last BotFailure came. Clocks (Meta's timestamps vs our
    # processing time) cannot be compared, a sequence can.
    customer_messages: int = 0
    failure_at_message: int = 0
    # The two clocks (rules.CLOCK_RULES). Meta's timestamp of the newest handover webhook we
    # applied: an older one is recorded, never applied (Meta's time orders Meta's events).
    meta_handover_at: datetime | None = None
    # Our clock: when we last decided a control move ourselves (an app's action, a customer
    # escalation, a timer, a reconciliation). A handover webhook stamped earlier that
    # disagrees with it is not applied: Meta is asked (thread_owner) instead.
    control_decided_at: datetime | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.state, State):
            object.__setattr__(self, "state", State(self.state))
        for name in _DATETIME_FIELDS:
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ValueError(f"ConversationView.{name} must be timezone-aware")

    @property
    def foreign_owner_id(self) -> str | None:
        if self.owner_app is not None and self.owner_app.startswith(FOREIGN_PREFIX):
            return self.owner_app[len(FOREIGN_PREFIX) :]
        return None

    def replace(self, **changes: Any) -> ConversationView:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _VIEW_FIELDS:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, State):
                value = value.value
            out[name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | bytes) -> ConversationView:
        """Inverse of `to_json`. Missing keys take their defaults and unknown keys are
        ignored, so snapshots survive a rolling deploy in either direction."""
        if isinstance(data, str | bytes):
            data = json.loads(data)
        if not isinstance(data, Mapping):
            raise ValueError("a conversation view must be a JSON object")
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in _VIEW_FIELD_SET:
                continue
            if key in _DATETIME_FIELD_SET:
                value = parse_datetime(value, f"view.{key}")
            kwargs[key] = value
        return cls(**kwargs)


# Computed once: a view is read and written for every event (dataclasses.fields is slow).
_VIEW_FIELDS = tuple(f.name for f in dataclasses.fields(ConversationView))
_VIEW_FIELD_SET = frozenset(_VIEW_FIELDS)
_DATETIME_FIELD_SET = frozenset(_DATETIME_FIELDS)


def parse_datetime(value: Any, name: str) -> datetime | None:
    """An aware datetime from an ISO 8601 string (or a datetime); ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{name}: not an ISO 8601 datetime: {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{name}: expected an ISO 8601 datetime string")
    if value.utcoffset() is None:
        raise ValueError(f"{name}: datetime must carry a timezone offset")
    return value


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def require_aware(value: datetime, name: str) -> None:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
