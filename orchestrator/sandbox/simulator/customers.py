"""Customer actions: what a customer does on the phone (messages, reactions, unsend, edits,
CTA taps, reads, ig.me links, comments) and the webhooks each one fans out."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.simulator.core import WorldCore
from orchestrator.sandbox.simulator.errors import SimError
from orchestrator.sandbox.simulator.model import Comment, Message, Outcome, Thread, WebhookEvent
from orchestrator.sandbox.simulator.rules import CONTROL_TTL_S, MAX_EDITS, REACTIONS


class CustomerActions(WorldCore):
    """What customers do; each action answers like Meta and fans out webhooks."""

    def _customer_activity(self, thread: Thread) -> None:
        """A customer message (or CTA tap, reaction, ig.me referral): reopens the 24-hour window
        and keeps the owner's control alive for another 24 h.

        docs/platform.md 1.3: a thread is idle only without a customer message for 24 h or after a
        release, so a customer writing to an idle thread makes it active with the default app in
        control: `thread_owner` names it, a later take notifies it, pass and request follow the
        owner rules. Routing off ("default behavior"): no default app takes control."""
        now = self.now
        thread.last_customer_at = now
        thread.updated_at = now
        if thread.owner is None and self.config.routing_enabled:
            thread.owner = self.default_app_id
        if thread.owner is not None:
            thread.expires_at = max(thread.expires_at or now, now + CONTROL_TTL_S)

    def open_thread(self, igsid: str, channel: str, username: str | None = None) -> Outcome:
        """Meet a customer on a channel before they do anything ("messenger": a PSID writing
        to the Page). Nothing is sent; a thread keeps the channel it was opened with."""
        thread = self._customer_thread(igsid, username, channel)
        return Outcome({"igsid": thread.igsid, "channel": thread.channel})

    def say(
        self,
        igsid: str,
        text: str | None,
        quick_reply_payload: str | None = None,
        *,
        reply_to: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        username: str | None = None,
        channel: str | None = None,
    ) -> Outcome:
        if not text and not attachments:
            raise SimError("text or attachments is required")
        thread = self._customer_thread(igsid, username, channel)
        if reply_to is not None:
            self._find_message(thread, reply_to)
        msg = Message(
            self._new_mid(),
            "out",
            self.now,
            text=text or None,
            attachments=list(attachments or []),
            quick_reply_payload=quick_reply_payload,
            reply_to=reply_to,
            via="customer",
        )
        thread.messages.append(msg)
        self._customer_activity(thread)
        body: dict[str, Any] = {"mid": msg.mid}
        if msg.text is not None:
            body["text"] = msg.text
        if msg.attachments:
            body["attachments"] = msg.attachments
        if quick_reply_payload is not None:
            body["quick_reply"] = {"payload": quick_reply_payload}
        if reply_to is not None:
            body["reply_to"] = {"mid": reply_to}
        if thread.pending_ref is not None:  # ig.me link on a new thread: ref in the first message
            body["referral"] = {
                "ref": thread.pending_ref,
                "source": "SHORTLINKS",
                "type": "OPEN_THREAD",
            }
            thread.pending_ref = None
        return Outcome({"mid": msg.mid}, self._fan_out(thread, "message", body, None))

    def react(self, igsid: str, mid: str, reaction: str) -> Outcome:
        thread = self._customer_thread(igsid)
        msg = self._find_message(thread, mid)
        if reaction in REACTIONS:
            name, emoji = reaction, REACTIONS[reaction]
        else:
            named = {e: n for n, e in REACTIONS.items()}
            name, emoji = named.get(reaction, "other"), reaction
        msg.customer_reaction = name
        self._customer_activity(thread)
        body = {"mid": mid, "action": "react", "reaction": name, "emoji": emoji}
        return Outcome(
            {"mid": mid, "reaction": name}, self._fan_out(thread, "reaction", body, None)
        )

    def unreact(self, igsid: str, mid: str) -> Outcome:
        thread = self._customer_thread(igsid)
        msg = self._find_message(thread, mid)
        msg.customer_reaction = None
        body = {"mid": mid, "action": "unreact"}
        return Outcome({"mid": mid}, self._fan_out(thread, "reaction", body, None))

    def unsend(self, igsid: str, mid: str) -> Outcome:
        thread = self._customer_thread(igsid)
        msg = self._find_message(thread, mid)
        if msg.direction != "out":
            raise SimError("a customer can only unsend their own messages")
        if msg.deleted:
            raise SimError(f"message {mid!r} is already unsent")
        msg.deleted = True
        msg.text = None
        msg.attachments = []
        body = {"mid": mid, "is_deleted": True}
        return Outcome({"mid": mid}, self._fan_out(thread, "message", body, None))

    def edit(self, igsid: str, mid: str, text: str) -> Outcome:
        thread = self._customer_thread(igsid)
        msg = self._find_message(thread, mid)
        if msg.direction != "out" or msg.deleted:
            raise SimError("a customer can only edit their own, not unsent, messages")
        if msg.edits >= MAX_EDITS:
            raise SimError(f"a message can be edited at most {MAX_EDITS} times")
        msg.edits += 1
        msg.text = text
        body = {"mid": mid, "text": text, "num_edit": msg.edits}
        return Outcome(
            {"mid": mid, "num_edit": msg.edits}, self._fan_out(thread, "message_edit", body, None)
        )

    def postback(self, igsid: str, payload: str, title: str) -> Outcome:
        thread = self._customer_thread(igsid)
        mid = self._new_mid()
        thread.messages.append(
            Message(mid, "out", self.now, text=title, quick_reply_payload=payload, via="postback")
        )
        self._customer_activity(thread)
        body = {"mid": mid, "title": title, "payload": payload}
        standby = {"mid": mid, "title": title}  # standby postbacks carry no payload
        return Outcome({"mid": mid}, self._fan_out(thread, "postback", body, standby))

    def read(self, igsid: str, mid: str | None = None) -> Outcome:
        """The customer saw the business's messages (up to `mid`, default the last one)."""
        thread = self._customer_thread(igsid)
        if mid is None:
            received = [m for m in thread.messages if m.direction == "in"]
            if not received:
                raise SimError("the customer has received nothing to read")
            mid = received[-1].mid
        else:
            self._find_message(thread, mid)
        return Outcome({"mid": mid}, self._fan_out(thread, "read", {"mid": mid}, None))

    def open_link(self, igsid: str, ref: str) -> Outcome:
        """The customer opens an ig.me link with `ref`: an existing thread gets a `referral`
        event (and, like a message, a fresh window and the default app in control if idle); a
        new thread carries the ref in its first message."""
        existing = igsid in self.threads and bool(self.threads[igsid].messages)
        thread = self._customer_thread(igsid)
        if not existing:
            thread.pending_ref = ref
            return Outcome({"ref": ref, "pending": True})
        self._customer_activity(thread)
        body = {"ref": ref, "source": "SHORTLINKS", "type": "OPEN_THREAD"}
        return Outcome(
            {"ref": ref, "pending": False}, self._fan_out(thread, "referral", body, None)
        )

    def comment(
        self,
        igsid: str,
        text: str,
        media_id: str | None = None,
        *,
        parent_id: str | None = None,
        username: str | None = None,
    ) -> Outcome:
        """A comment on a post: `changes[]` (field `comments`) to every subscribed app."""
        thread = self._customer_thread(igsid, username)
        comment = Comment(
            self._new_comment_id(),
            igsid,
            text,
            media_id or "17900000000000001",
            self.now,
            parent_id,
        )
        thread.comments.append(comment)
        self._comments[comment.comment_id] = comment
        # Commenting on a post reopens the messaging window (docs/platform.md 4.5), not thread
        # control.
        thread.last_customer_at = self.now
        thread.updated_at = self.now
        value: dict[str, Any] = {
            "from": {"id": igsid, "username": thread.username},
            "comment_id": comment.comment_id,
            "text": text,
            "media": {"id": comment.media_id, "media_product_type": "FEED"},
        }
        if parent_id is not None:
            value["parent_id"] = parent_id
        out = tuple(
            WebhookEvent(a.app_id, "changes", {"field": "comments", "value": value}, self.now)
            for a in self.our_apps
            if self._wants(a.app_id, "comments")
        )
        return Outcome({"comment_id": comment.comment_id}, out)
