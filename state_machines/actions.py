"""Sub-app actions: what an app asks the orchestrator to do.

JSON form (what vendors POST and in-process handlers return), one object per action:

    {"type": "reply", "message": {"text": "Hi!"}, "reply_to_mid": "aWdf..."}
    {"type": "escalate", "metadata": "billing", "target_app": "support"}
    {"type": "accept"}
    {"type": "pass", "target_app": "faq_bot", "metadata": "done"}   target_app null → primary
    {"type": "take", "metadata": "agent_took_over"}
    {"type": "release", "metadata": "resolved"}
    {"type": "request", "metadata": "user_asked_for_bot"}
    {"type": "extend", "duration_s": 86400}                          1 s … 7 days
    {"type": "react", "mid": "aWdf...", "reaction": "love"}
    {"type": "unreact", "mid": "aWdf..."}
    {"type": "private_reply", "comment_id": "178...", "message": {"text": "..."}}
    {"type": "mark_seen"}
    {"type": "bot_failure", "reason": "no intent matched"}

`action_from_json` validates strictly: unknown types, unknown fields and wrong types raise
`ActionError` naming the field. `comment_at`/`already_replied` of a private reply are filled
by the edge from its own records; a vendor may omit them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from state_machines.model import iso, parse_datetime
from state_machines.rules import (
    MAX_ATTACHMENTS,
    MAX_EXTEND_S,
    MAX_METADATA_CHARS,
    MAX_QUICK_REPLIES,
)

_MESSAGE_KEYS = ("text", "attachment", "attachments", "quick_replies")


class ActionError(ValueError):
    """An action is malformed; `field` names the offending field (e.g. "message.text")."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Reply:
    type: ClassVar[str] = "reply"
    message: Mapping[str, Any]  # a Send API `message` object
    reply_to_mid: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "message": dict(self.message), "reply_to_mid": self.reply_to_mid}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Reply:
        return cls(_message(data, "message"), _opt_str(data, "reply_to_mid"))


@dataclass(frozen=True, slots=True)
class Escalate:
    """The bot asks for a human; `target_app` defaults to the policy's human app."""

    type: ClassVar[str] = "escalate"
    metadata: str | None = None
    target_app: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "metadata": self.metadata, "target_app": self.target_app}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Escalate:
        return cls(_metadata(data), _opt_str(data, "target_app"))


@dataclass(frozen=True, slots=True)
class Accept:
    """A human app takes the pending conversation."""

    type: ClassVar[str] = "accept"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Accept:
        return cls()


@dataclass(frozen=True, slots=True)
class PassThread:
    """Pass the thread to `target_app` (one of our apps or a foreign inbox label such as
    "instagram_inbox"); None → the primary app."""

    type: ClassVar[str] = "pass"
    target_app: str | None = None
    metadata: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "target_app": self.target_app, "metadata": self.metadata}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PassThread:
        return cls(_opt_str(data, "target_app"), _metadata(data))


@dataclass(frozen=True, slots=True)
class TakeThread:
    type: ClassVar[str] = "take"
    metadata: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "metadata": self.metadata}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TakeThread:
        return cls(_metadata(data))


@dataclass(frozen=True, slots=True)
class ReleaseThread:
    type: ClassVar[str] = "release"
    metadata: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "metadata": self.metadata}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReleaseThread:
        return cls(_metadata(data))


@dataclass(frozen=True, slots=True)
class RequestThread:
    type: ClassVar[str] = "request"
    metadata: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "metadata": self.metadata}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestThread:
        return cls(_metadata(data))


@dataclass(frozen=True, slots=True)
class ExtendThread:
    type: ClassVar[str] = "extend"
    duration_s: int

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "duration_s": self.duration_s}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExtendThread:
        if "duration_s" not in data:
            raise ActionError(
                "duration_s", f"is required (seconds, at most {MAX_EXTEND_S} = 7 days)"
            )
        value = data["duration_s"]
        if not _is_int(value) or not 1 <= value <= MAX_EXTEND_S:
            raise ActionError(
                "duration_s", f"must be an integer from 1 to {MAX_EXTEND_S} (7 days), got {value!r}"
            )
        return cls(value)


@dataclass(frozen=True, slots=True)
class React:
    type: ClassVar[str] = "react"
    mid: str
    reaction: str = "love"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "mid": self.mid, "reaction": self.reaction}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> React:
        return cls(_req_str(data, "mid"), _req_str(data, "reaction"))


@dataclass(frozen=True, slots=True)
class Unreact:
    type: ClassVar[str] = "unreact"
    mid: str

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "mid": self.mid}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Unreact:
        return cls(_req_str(data, "mid"))


@dataclass(frozen=True, slots=True)
class PrivateReply:
    """A private reply to a comment (docs/platform.md 4.2): one per comment, within 7 days."""

    type: ClassVar[str] = "private_reply"
    comment_id: str
    message: Mapping[str, Any]
    comment_at: datetime | None = None  # filled by the edge
    already_replied: bool = False  # filled by the edge

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "comment_id": self.comment_id,
            "message": dict(self.message),
            "comment_at": iso(self.comment_at),
            "already_replied": self.already_replied,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PrivateReply:
        try:
            comment_at = parse_datetime(data.get("comment_at"), "comment_at")
        except ValueError:
            raise ActionError("comment_at", "must be an ISO 8601 datetime with offset") from None
        already = data.get("already_replied", False)
        if not isinstance(already, bool):
            raise ActionError("already_replied", "must be true or false")
        return cls(_req_str(data, "comment_id"), _message(data, "message"), comment_at, already)


@dataclass(frozen=True, slots=True)
class MarkSeen:
    type: ClassVar[str] = "mark_seen"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MarkSeen:
        return cls()


@dataclass(frozen=True, slots=True)
class BotFailure:
    """The bot did not understand the customer; enough in a row escalate."""

    type: ClassVar[str] = "bot_failure"
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BotFailure:
        return cls(_opt_str(data, "reason"))


Action = (
    Reply
    | Escalate
    | Accept
    | PassThread
    | TakeThread
    | ReleaseThread
    | RequestThread
    | ExtendThread
    | React
    | Unreact
    | PrivateReply
    | MarkSeen
    | BotFailure
)

_ACTION_TYPES: tuple[type[Action], ...] = (
    Reply,
    Escalate,
    Accept,
    PassThread,
    TakeThread,
    ReleaseThread,
    RequestThread,
    ExtendThread,
    React,
    Unreact,
    PrivateReply,
    MarkSeen,
    BotFailure,
)
_BY_TYPE: dict[str, type[Action]] = {cls.type: cls for cls in _ACTION_TYPES}
_FIELDS: dict[str, tuple[str, ...]] = {
    cls.type: tuple(cls.__dataclass_fields__) for cls in _ACTION_TYPES
}


def action_from_json(data: Any) -> Action:
    """Parse and validate one action object; raises `ActionError` naming the bad field."""
    if not isinstance(data, Mapping):
        raise ActionError("action", "must be a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or not kind:
        raise ActionError("type", f"is required, one of {', '.join(_BY_TYPE)}")
    cls = _BY_TYPE.get(kind)
    if cls is None:
        raise ActionError(
            "type", f"unknown action type {kind!r}; expected one of {', '.join(_BY_TYPE)}"
        )
    allowed = tuple(dict.fromkeys(("type", *_FIELDS[kind])))  # each field named once
    for key in data:
        if key not in allowed:
            raise ActionError(
                str(key), f"unknown field for a {kind!r} action (allowed: {', '.join(allowed)})"
            )
    return cls.from_json(data)


# --- validators ----------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _opt_str(data: Mapping[str, Any], name: str, *, max_len: int | None = None) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ActionError(name, "must be a non-empty string or null")
    if max_len is not None and len(value) > max_len:
        raise ActionError(name, f"must be at most {max_len} characters, got {len(value)}")
    return value


def _req_str(data: Mapping[str, Any], name: str) -> str:
    value = _opt_str(data, name)
    if value is None:
        raise ActionError(name, "is required (a non-empty string)")
    return value


def _metadata(data: Mapping[str, Any]) -> str | None:
    return _opt_str(data, "metadata", max_len=MAX_METADATA_CHARS)


def _message(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    if name not in data:
        raise ActionError(name, "is required (a Send API message object)")
    validate_message(data[name], name)
    return dict(data[name])


def validate_message(message: Any, name: str = "message") -> None:
    """Check a Send API `message` object: exactly one of text / attachment / attachments,
    optional quick replies (docs/platform.md 4.3). Text length is not checked: the edge splits."""
    if not isinstance(message, Mapping):
        raise ActionError(name, "must be a JSON object")
    for key in message:
        if key not in _MESSAGE_KEYS:
            raise ActionError(f"{name}.{key}", f"unknown key (allowed: {', '.join(_MESSAGE_KEYS)})")
    present = [k for k in ("text", "attachment", "attachments") if k in message]
    if len(present) != 1:
        raise ActionError(name, "needs exactly one of text, attachment, attachments")
    if "text" in message and (not isinstance(message["text"], str) or not message["text"].strip()):
        raise ActionError(f"{name}.text", "must be a non-empty string")
    if "attachment" in message:
        _attachment(message["attachment"], f"{name}.attachment")
    if "attachments" in message:
        items = message["attachments"]
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ATTACHMENTS:
            raise ActionError(f"{name}.attachments", f"must be a list of 1 to {MAX_ATTACHMENTS}")
        for i, item in enumerate(items):
            _attachment(item, f"{name}.attachments[{i}]")
    if "quick_replies" in message:
        _quick_replies(message, name)


def _attachment(value: Any, name: str) -> None:
    if not isinstance(value, Mapping):
        raise ActionError(name, "must be a JSON object")
    if not isinstance(value.get("type"), str) or not value["type"]:
        raise ActionError(f"{name}.type", "is required (a non-empty string)")
    if "payload" in value and not isinstance(value["payload"], Mapping):
        raise ActionError(f"{name}.payload", "must be a JSON object")


def _quick_replies(message: Mapping[str, Any], name: str) -> None:
    items = message["quick_replies"]
    if "text" not in message:
        raise ActionError(f"{name}.quick_replies", "are allowed with text messages only")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_QUICK_REPLIES:
        raise ActionError(f"{name}.quick_replies", f"must be a list of 1 to {MAX_QUICK_REPLIES}")
    for i, item in enumerate(items):
        where = f"{name}.quick_replies[{i}]"
        if not isinstance(item, Mapping):
            raise ActionError(where, "must be a JSON object")
        content_type = item.get("content_type", "text")
        if not isinstance(content_type, str):
            raise ActionError(f"{where}.content_type", "must be a string")
        if content_type == "text":
            for key in ("title", "payload"):
                if not isinstance(item.get(key), str) or not item[key]:
                    raise ActionError(f"{where}.{key}", "is required (a non-empty string)")
