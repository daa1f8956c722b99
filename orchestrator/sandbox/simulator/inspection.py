"""Inspection: the customer's-eye view of a thread that QA and the `/phone` page read."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.simulator.core import WorldCore
from orchestrator.sandbox.simulator.model import Message
from orchestrator.sandbox.simulator.rules import HUMAN_AGENT_WINDOW_S, WINDOW_S


class Inspection(WorldCore):
    """Read-only views of the world for QA and the `/phone` page."""

    def _message_view(self, msg: Message) -> dict[str, Any]:
        return {
            "mid": msg.mid,
            "direction": msg.direction,
            "text": msg.text,
            "app_id": msg.app_id,
            "app_name": self.app_name(msg.app_id),
            "attachments": msg.attachments,
            "quick_replies": msg.quick_replies,
            "quick_reply_payload": msg.quick_reply_payload,
            "reply_to": msg.reply_to,
            "tag": msg.tag,
            "messaging_type": msg.messaging_type,
            "via": msg.via,
            "comment_id": msg.comment_id,
            "timestamp": msg.timestamp,
            "deleted": msg.deleted,
            "edits": msg.edits,
            "customer_reaction": msg.customer_reaction,
            "business_reaction": msg.business_reaction,
        }

    def customer_view(self, igsid: str) -> dict[str, Any]:
        thread = self.thread(igsid)
        now = self.now
        if thread is None:
            return {
                "igsid": igsid,
                "exists": False,
                "owner_app_id": None,
                "owner_app_name": None,
                "owner_expires_at": None,
                "default_app_id": self.default_app_id,
                "window_open": False,
                "human_agent_window_open": False,
                "last_customer_message_at": None,
                "now": now,
                "timeline": [],
                "received": [],
                "sent": [],
                "comments": [],
            }
        last = thread.last_customer_at
        timeline = [self._message_view(m) for m in thread.messages]
        return {
            "igsid": igsid,
            "exists": True,
            "channel": thread.channel,
            "username": thread.username,
            "owner_app_id": thread.owner,
            "owner_app_name": self.app_name(thread.owner),
            "owner_expires_at": thread.expires_at,
            "default_app_id": self.default_app_id,
            "window_open": last is not None and now - last <= WINDOW_S,
            "human_agent_window_open": last is not None and now - last <= HUMAN_AGENT_WINDOW_S,
            "last_customer_message_at": last,
            "now": now,
            "seen_mid": thread.seen_mid,
            "typing": thread.typing,
            "timeline": timeline,
            "received": [m for m in timeline if m["direction"] == "in"],
            "sent": [m for m in timeline if m["direction"] == "out"],
            "comments": [
                {
                    "comment_id": c.comment_id,
                    "text": c.text,
                    "media_id": c.media_id,
                    "parent_id": c.parent_id,
                    "timestamp": c.timestamp,
                    "private_reply_mid": c.private_reply_mid,
                }
                for c in thread.comments
            ],
        }
