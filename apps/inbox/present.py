"""From stored rows to what the pages show: queue sections, the window line, who said what.

The window rules are the core's (`state_machines.window`): this module only words them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.engine.triggers import typed_event
from state_machines import ConversationView, window_deadlines
from state_machines.model import Policy
from state_machines.window import check_send

T = Callable[..., str]


@dataclass(frozen=True, slots=True)
class WindowInfo:
    kind: str  # automated | human | closed | never
    label: str
    can_send: bool  # may a human-authored message be sent now?
    rule: str  # how a reply now is sent (RESPONSE / HUMAN_AGENT) or why it is refused
    until: datetime | None = None


def view_of(row: Mapping[str, Any]) -> ConversationView:
    raw = row["view"]
    return ConversationView.from_json(raw) if raw else ConversationView()


def window_info(view: ConversationView, now: datetime, policy: Policy, t: T) -> WindowInfo:
    automated_until, human_until = window_deadlines(view)
    verdict = check_send(view, now, author_kind="human", policy=policy)
    if automated_until is None or human_until is None:
        reason = verdict.refusal.message if verdict.refusal else ""
        return WindowInfo("never", t("window_never"), False, reason)
    if now <= automated_until:
        until = automated_until
        return WindowInfo(
            "automated",
            t("window_automated", until=_fmt(until)),
            True,
            t("reply_rule_response"),
            until,
        )
    if verdict.allowed:
        return WindowInfo(
            "human",
            t("window_human", until=_fmt(human_until)),
            True,
            t("reply_rule_human_agent"),
            human_until,
        )
    reason = verdict.refusal.message if verdict.refusal else ""
    return WindowInfo("closed", t("window_closed"), False, reason)


def _fmt(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


@dataclass(slots=True)
class QueueItem:
    id: int
    account_id: str
    customer_id: str
    state: str
    owner_label: str
    bot_owned: bool
    agent_name: str | None
    mine: bool
    unread: int
    preview: str
    pending_since: datetime | None
    pending_deadline: datetime | None
    updated_at: datetime
    profile: str | None = None  # "Name (@username)" where Meta provides it
    channel: str = "instagram"  # or "messenger": where the customer writes


@dataclass(slots=True)
class Queue:
    pending: list[QueueItem] = field(default_factory=list)
    mine: list[QueueItem] = field(default_factory=list)
    others: list[QueueItem] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.pending) + len(self.mine) + len(self.others)


def build_queue(
    rows: Sequence[Mapping[str, Any]],
    agent_id: int,
    policy: Policy,
    t: T,
    channel_of: Callable[[str], str | None] = lambda _account_id: None,
) -> Queue:
    """Pending first (longest waiting first), then mine, then everything else. `channel_of`
    names a conversation's channel from its account id (the config knows)."""
    out = Queue()
    for r in rows:
        view = view_of(r)
        owner = r["owner_app"]
        spec = policy.find_app(owner)
        bot_owned = r["state"] == "bot" and (owner is None or (spec is not None and spec.is_bot))
        pending_since = view.pending_since if r["state"] == "pending_human" else None
        item = QueueItem(
            id=r["id"],
            account_id=r["account_id"],
            customer_id=r["customer_id"],
            state=r["state"],
            owner_label=policy.owner_label(owner) if owner else policy.primary.name,
            bot_owned=bot_owned,
            agent_name=r["agent_name"],
            mine=r["agent_id"] == agent_id,
            unread=int(r["unread"] or 0),
            preview=_preview(r, t),
            pending_since=pending_since,
            pending_deadline=pending_since + policy.pending_timeout if pending_since else None,
            updated_at=r["updated_at"],
            profile=_profile(r),
            channel=channel_of(r["account_id"]) or "instagram",
        )
        if item.state == "pending_human":
            out.pending.append(item)
        elif item.mine:
            out.mine.append(item)
        else:
            out.others.append(item)
    out.pending.sort(key=lambda i: (i.pending_since or i.updated_at, i.id))
    return out


def _profile(r: Mapping[str, Any]) -> str | None:
    name, username = r.get("profile_name"), r.get("profile_username")
    if name and username:
        return f"{name} (@{username})"
    return name or (f"@{username}" if username else None)


def _preview(r: Mapping[str, Any], t: T) -> str:
    if r["last_deleted"] is not None:
        return t("unsent")
    text = r["last_text"] or ""
    if not text and r["last_attachments"]:
        text = f"[{t('attachment')}]"
    prefix = "" if r["last_direction"] == "in" else "↩ "
    return (prefix + text)[:140]


@dataclass(slots=True)
class Item:
    """One line of the conversation: a message, a comment, a reaction or a mention."""

    kind: str  # message | comment | reaction | mention
    at: datetime
    side: str  # customer | business
    who: str
    text: str | None = None
    deleted: bool = False
    attachments: list[Mapping[str, Any]] = field(default_factory=list)
    purpose: str | None = None
    mid: str | None = None
    story: Mapping[str, Any] | None = None
    comment_id: str | None = None
    media_id: str | None = None
    reaction: str | None = None


def author_label(author: str, agent_name: str | None, policy: Policy, t: T) -> str:
    if author == "customer":
        return t("customer")
    if agent_name:
        return agent_name
    spec = policy.find_app(author)
    if spec is not None:
        return f"{t('bot')} ({spec.name})" if spec.is_bot else f"{spec.name} ({t('agent_api')})"
    label = policy.owner_label(author)  # a foreign inbox: "instagram_inbox", "page_inbox"
    return t(label) if label in ("instagram_inbox", "page_inbox") else label


def build_transcript(
    messages: Sequence[Mapping[str, Any]],
    activity: Sequence[Mapping[str, Any]],
    account_id: str,
    policy: Policy,
    t: T,
) -> list[Item]:
    items: list[Item] = []
    for m in messages:
        raw = m["raw"] or {}
        story = None
        reply_to = (raw.get("message") or {}).get("reply_to") or {}
        if isinstance(reply_to, Mapping) and isinstance(reply_to.get("story"), Mapping):
            story = reply_to["story"]
        attachments = [a for a in (m["attachments"] or []) if isinstance(a, Mapping)]
        items.append(
            Item(
                kind="message",
                at=m["created_at"],
                side="customer" if m["direction"] == "in" else "business",
                who=author_label(m["author"], m["agent_name"], policy, t),
                text=m["text"],
                deleted=m["deleted_at"] is not None,
                attachments=attachments,
                purpose=m["purpose"] if m["purpose"] not in (None, "reply", "echo") else None,
                mid=m["mid"],
                story=story,
            )
        )
    for a in activity:
        typed = typed_event(a, account_id) if not a["erased"] else None
        if typed is None:
            continue
        if a["kind"] in ("comment", "live_comment"):
            if typed.customer_id == account_id:
                continue  # the business's own comment reply
            items.append(
                Item(
                    kind="comment",
                    at=a["occurred_at"],
                    side="customer",
                    who=getattr(typed, "username", None) or t("customer"),
                    text=getattr(typed, "text", None),
                    comment_id=getattr(typed, "comment_id", None),
                    media_id=getattr(typed, "media_id", None),
                )
            )
        elif a["kind"] == "reaction" and getattr(typed, "action", None) == "react":
            items.append(
                Item(
                    kind="reaction",
                    at=a["occurred_at"],
                    side="customer",
                    who=t("customer"),
                    reaction=getattr(typed, "emoji", None) or getattr(typed, "reaction", None),
                    mid=getattr(typed, "mid", None),
                )
            )
        elif a["kind"] == "mention":
            items.append(
                Item(
                    kind="mention",
                    at=a["occurred_at"],
                    side="customer",
                    who=t("customer"),
                    media_id=getattr(typed, "media_id", None),
                )
            )
    items.sort(key=lambda i: i.at)
    return items


def seconds(delta: timedelta) -> int:
    return int(delta.total_seconds())
