"""Meta-side humans: the Instagram (or Page) Inbox taking, replying in, passing, releasing and
requesting a thread."""

from __future__ import annotations

from orchestrator.sandbox.simulator.config import INBOX_APP_IDS, INSTAGRAM_INBOX_APP_ID
from orchestrator.sandbox.simulator.errors import GraphError, SimError
from orchestrator.sandbox.simulator.model import Message, Outcome, Thread
from orchestrator.sandbox.simulator.rules import HUMAN_AGENT_WINDOW_S
from orchestrator.sandbox.simulator.thread_control import ThreadControl


class InboxActions(ThreadControl):
    """What humans in Meta's Inbox do to a thread."""

    def _inbox_thread(self, igsid: str, inbox_app_id: str) -> Thread:
        if inbox_app_id not in INBOX_APP_IDS:
            raise SimError(f"{inbox_app_id!r} is not an Inbox app id")
        thread = self.thread(igsid)
        if thread is None:
            raise SimError(f"no conversation with customer {igsid!r}", 404)
        return thread

    def inbox_take(
        self, igsid: str, metadata: str | None = None, *, inbox_app_id: str = INSTAGRAM_INBOX_APP_ID
    ) -> Outcome:
        """A human moves the thread to the Inbox: take webhook to the previous owner (often the
        default app, which a customer message put in control); none from an idle thread."""
        thread = self._inbox_thread(igsid, inbox_app_id)
        hooks = self._take(thread, inbox_app_id, metadata)
        return Outcome({"owner_app_id": thread.owner}, hooks)

    def inbox_reply(
        self, igsid: str, text: str, *, inbox_app_id: str = INSTAGRAM_INBOX_APP_ID
    ) -> Outcome:
        """A human replies from the Inbox: the Inbox takes control if it has not (docs/platform.md
        1.3, unconfirmed), the customer receives the text, our apps see a standby echo (2.9)."""
        thread = self._inbox_thread(igsid, inbox_app_id)
        if not text:
            raise SimError("text is required")
        last = thread.last_customer_at
        if last is None or self.now - last > HUMAN_AGENT_WINDOW_S:
            raise SimError("the Inbox cannot reply: 7 days since the customer's last message", 409)
        hooks = list(self._take(thread, inbox_app_id, None)) if thread.owner != inbox_app_id else []
        msg = Message(self._new_mid(), "in", self.now, text=text, app_id=inbox_app_id, via="inbox")
        thread.messages.append(msg)
        thread.updated_at = self.now
        for app in self.our_apps:
            if self._wants(app.app_id, "standby"):
                hooks.append(self._echo(app.app_id, thread, msg, "standby"))
        return Outcome({"mid": msg.mid}, tuple(hooks))

    def inbox_pass(
        self,
        igsid: str,
        target_app_id: str | None = None,
        metadata: str | None = None,
        *,
        inbox_app_id: str = INSTAGRAM_INBOX_APP_ID,
    ) -> Outcome:
        thread = self._inbox_thread(igsid, inbox_app_id)
        if thread.owner not in (None, inbox_app_id):
            raise SimError("the Inbox does not own this thread", 409)
        try:
            outcome = self.pass_thread_control(inbox_app_id, igsid, target_app_id, metadata)
        except GraphError as exc:
            raise SimError(exc.message) from exc
        return Outcome({"owner_app_id": thread.owner}, outcome.webhooks)

    def inbox_release(
        self, igsid: str, metadata: str | None = None, *, inbox_app_id: str = INSTAGRAM_INBOX_APP_ID
    ) -> Outcome:
        """The Inbox lets the thread go idle (a release sends no webhook); the default app
        answers the customer's next message."""
        thread = self._inbox_thread(igsid, inbox_app_id)
        if thread.owner != inbox_app_id:
            raise SimError("the Inbox does not own this thread", 409)
        outcome = self.release_thread_control(inbox_app_id, igsid, metadata)
        return Outcome({"owner_app_id": thread.owner}, outcome.webhooks)

    def inbox_request(
        self, igsid: str, metadata: str | None = None, *, inbox_app_id: str = INSTAGRAM_INBOX_APP_ID
    ) -> Outcome:
        """The Inbox asks the app holding the thread for control (request_thread_control
        webhook to that app); an idle thread is the Inbox's at once."""
        thread = self._inbox_thread(igsid, inbox_app_id)
        try:
            outcome = self.request_thread_control(inbox_app_id, igsid, metadata)
        except GraphError as exc:
            raise SimError(exc.message, 409) from exc
        return Outcome({"owner_app_id": thread.owner}, outcome.webhooks)
