"""The Send API (`POST /{id}/messages`): message validation, the messaging windows, private
replies to comments, and sender actions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.sandbox.simulator.errors import outside_window, param_error, private_reply_used
from orchestrator.sandbox.simulator.model import Message, Outcome
from orchestrator.sandbox.simulator.rules import (
    HUMAN_AGENT_WINDOW_S,
    MAX_QUICK_REPLIES,
    MAX_TEXT_BYTES,
    MESSAGING_TYPES,
    PRIVATE_REPLY_WINDOW_S,
    QUICK_REPLY_TITLE_CHARS,
    REACTIONS,
    RETIRED_TAGS,
    SENDER_ACTIONS,
    WINDOW_S,
)
from orchestrator.sandbox.simulator.thread_control import ThreadControl


class SendApi(ThreadControl):
    """`POST /{id}/messages` as Meta validates and delivers it."""

    def send(self, app_id: str, params: Mapping[str, Any]) -> Outcome:
        """`POST /{id}/messages` by `app_id` (params already JSON-decoded)."""
        recipient = params.get("recipient")
        if not isinstance(recipient, dict) or not (
            recipient.get("id") or recipient.get("comment_id")
        ):
            raise param_error("The parameter recipient is required")
        if params.get("sender_action") is not None:
            return self._sender_action(app_id, recipient, params)
        message = params.get("message")
        if not isinstance(message, dict) or not message:
            raise param_error("The parameter message is required")
        text, attachments, quick_replies = self._content(message)
        messaging_type = params.get("messaging_type")
        tag = params.get("tag")
        if messaging_type is not None and messaging_type not in MESSAGING_TYPES:
            raise param_error(
                "Param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG, UTILITY}"
            )
        if tag is not None:
            if tag in RETIRED_TAGS:
                raise param_error(f"The tag {tag} is no longer supported.")
            if tag != "HUMAN_AGENT":
                raise param_error(f'Param tag must be one of {{HUMAN_AGENT}} - got "{tag}"')
        elif messaging_type == "MESSAGE_TAG":
            raise param_error("The parameter tag is required when messaging_type is MESSAGE_TAG")
        control = params.get("thread_control")
        if control is not None:
            if not isinstance(control, dict) or control.get("control_type") not in (
                "pass",
                "release",
            ):
                raise param_error(
                    "Param thread_control[control_type] must be one of {pass, release}"
                )
        reply_to = params.get("reply_to")
        reply_mid = reply_to.get("mid") if isinstance(reply_to, dict) else None

        if recipient.get("comment_id"):
            return self._private_reply(app_id, str(recipient["comment_id"]), text, attachments)

        thread = self._graph_thread(str(recipient["id"]))
        self._check_may_send(app_id, thread)
        limit = HUMAN_AGENT_WINDOW_S if tag == "HUMAN_AGENT" else WINDOW_S
        if thread.last_customer_at is None or self.now - thread.last_customer_at > limit:
            raise outside_window()
        msg = Message(
            self._new_mid(),
            "in",
            self.now,
            text=text,
            app_id=app_id,
            attachments=attachments,
            quick_replies=quick_replies,
            reply_to=reply_mid,
            tag=tag,
            messaging_type=messaging_type,
        )
        thread.messages.append(msg)
        thread.updated_at = self.now
        hooks = (
            [self._echo(app_id, thread, msg, "messaging")]
            if self._wants(app_id, "messages")
            else []
        )
        # Inline thread control (docs/platform.md 4.6): send, then run the flow.
        if control is not None:
            if control["control_type"] == "pass":
                target = control.get("app_id") or control.get("target_app_id")
                hooks += self._pass(
                    thread, app_id, _opt_str(target), _opt_str(control.get("metadata"))
                )
            else:
                thread.owner, thread.expires_at = None, None
        return Outcome({"recipient_id": thread.igsid, "message_id": msg.mid}, tuple(hooks))

    def _content(
        self, message: dict[str, Any]
    ) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]:
        text = message.get("text")
        if text is not None and not isinstance(text, str):
            raise param_error("Param message[text] must be a string")
        if text is not None and len(text.encode()) > MAX_TEXT_BYTES:
            raise param_error(
                f"Length of param message[text] must be less than or equal to {MAX_TEXT_BYTES}"
            )
        attachments: list[dict[str, Any]] = []
        if isinstance(message.get("attachment"), dict):
            attachments.append(message["attachment"])
        if isinstance(message.get("attachments"), list):
            attachments.extend(a for a in message["attachments"] if isinstance(a, dict))
        if len(attachments) > 10:
            raise param_error("Param message[attachments] can have at most 10 items")
        if not text and not attachments:
            raise param_error("Param message must have text or an attachment")
        quick_replies: list[dict[str, Any]] = []
        raw_qr = message.get("quick_replies") or []
        if not isinstance(raw_qr, list) or len(raw_qr) > MAX_QUICK_REPLIES:
            raise param_error(
                f"Param message[quick_replies] must have at most {MAX_QUICK_REPLIES} items"
            )
        for qr in raw_qr:
            if not isinstance(qr, dict):
                raise param_error("Param message[quick_replies] must be a list of objects")
            content_type = qr.get("content_type", "text")
            if content_type == "text":
                if not qr.get("title") or not qr.get("payload"):
                    raise param_error(
                        "Quick replies of content_type text need a title and a payload"
                    )
                title = str(qr["title"])[:QUICK_REPLY_TITLE_CHARS]  # cut on the phone
                quick_replies.append(
                    {"content_type": "text", "title": title, "payload": str(qr["payload"])}
                )
            elif content_type == "user_phone_number":
                quick_replies.append({"content_type": content_type})
            else:
                raise param_error(
                    f'Param message[quick_replies][content_type] is invalid: "{content_type}"'
                )
        return text, attachments, quick_replies

    def _private_reply(
        self, app_id: str, comment_id: str, text: str | None, attachments: list[dict[str, Any]]
    ) -> Outcome:
        comment = self._comments.get(comment_id)
        if comment is None:
            raise param_error(f"Invalid comment_id {comment_id}")
        if comment.private_reply_mid is not None:
            raise private_reply_used()
        if self.now - comment.timestamp > PRIVATE_REPLY_WINDOW_S:
            raise outside_window()
        thread = self._customer_thread(comment.igsid)
        msg = Message(
            self._new_mid(),
            "in",
            self.now,
            text=text,
            app_id=app_id,
            attachments=attachments,
            via="private_reply",
            comment_id=comment_id,
        )
        comment.private_reply_mid = msg.mid
        thread.messages.append(msg)
        thread.updated_at = self.now
        hooks = (
            (self._echo(app_id, thread, msg, "messaging"),)
            if self._wants(app_id, "messages")
            else ()
        )
        return Outcome({"recipient_id": comment.igsid, "message_id": msg.mid}, hooks)

    def _sender_action(
        self, app_id: str, recipient: dict[str, Any], params: Mapping[str, Any]
    ) -> Outcome:
        action = params.get("sender_action")
        if action not in SENDER_ACTIONS:
            raise param_error(
                "Param sender_action must be one of"
                " {react, unreact, mark_seen, typing_on, typing_off}"
            )
        thread = self._graph_thread(_opt_str(recipient.get("id")))
        self._check_may_send(app_id, thread)
        if thread.last_customer_at is None or self.now - thread.last_customer_at > WINDOW_S:
            raise outside_window()
        payload = params.get("payload") if isinstance(params.get("payload"), dict) else {}
        assert isinstance(payload, dict)
        if action in ("react", "unreact"):
            mid = payload.get("message_id")
            msg = next((m for m in thread.messages if m.mid == mid), None)
            if msg is None:
                raise param_error("Param payload[message_id] must be a valid message id")
            if action == "react":
                reaction = payload.get("reaction", "love")
                if reaction not in REACTIONS:
                    raise param_error("Param payload[reaction] is invalid")
                msg.business_reaction = reaction
            else:
                msg.business_reaction = None
        elif action == "mark_seen":
            outs = [m for m in thread.messages if m.direction == "out"]
            thread.seen_mid = outs[-1].mid if outs else None
        else:
            thread.typing = action == "typing_on"
        return Outcome({"recipient_id": thread.igsid})  # the business's reactions have no echo


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
