"""Thread control (the Handover Protocol): who may send, pass, take, release, request, extend,
and the `thread_owner` read."""

from __future__ import annotations

from typing import Any

from orchestrator.sandbox.simulator.core import WorldCore
from orchestrator.sandbox.simulator.errors import (
    not_owner,
    param_error,
    take_not_allowed,
    take_unsupported,
)
from orchestrator.sandbox.simulator.model import Outcome, Thread, WebhookEvent
from orchestrator.sandbox.simulator.rules import CONTROL_TTL_S, MAX_EXTEND_S


class ThreadControl(WorldCore):
    """The Handover Protocol's edges and the owner rules behind them."""

    def _may_send(self, app_id: str, thread: Thread) -> bool:
        if thread.owner is not None:
            return thread.owner == app_id
        if not self.config.routing_enabled:
            return True  # routing not configured: uncoordinated replies are possible
        return app_id == self.default_app_id

    def _check_may_send(self, app_id: str, thread: Thread) -> None:
        if not self._may_send(app_id, thread):
            raise not_owner()

    def _known_app(self, app_id: str) -> None:
        if app_id not in self.apps:
            raise param_error(f'Param target_app_id must be a valid app ID - got "{app_id}"')

    def _grant(self, thread: Thread, app_id: str) -> None:
        thread.owner = app_id
        thread.expires_at = self.now + CONTROL_TTL_S  # any control action resets expiry to 1 day
        thread.updated_at = self.now

    def _pass(
        self, thread: Thread, from_app: str, target: str | None, metadata: str | None
    ) -> tuple[WebhookEvent, ...]:
        if target is None:
            if not self.config.routing_enabled:
                raise param_error("The parameter target_app_id is required")
            target = self.default_app_id
        self._known_app(target)
        if self.config.routing_enabled and thread.owner is not None and thread.owner == target:
            raise param_error("Cannot pass thread control to the app that already owns the thread")
        previous = thread.owner
        self._grant(thread, target)
        body: dict[str, Any] = {"previous_owner_app_id": previous, "new_owner_app_id": target}
        if metadata is not None:
            body["metadata"] = metadata
        return self._handover(target, thread.igsid, "pass_thread_control", body)

    def _take(self, thread: Thread, app_id: str, metadata: str | None) -> tuple[WebhookEvent, ...]:
        previous = thread.owner
        if previous == app_id:
            return ()  # take does not extend control
        self._grant(thread, app_id)
        body: dict[str, Any] = {"previous_owner_app_id": previous, "new_owner_app_id": app_id}
        if metadata is not None:
            body["metadata"] = metadata
        return self._handover(previous, thread.igsid, "take_thread_control", body)

    def pass_thread_control(
        self,
        app_id: str,
        igsid: str | None,
        target_app_id: str | None = None,
        metadata: str | None = None,
    ) -> Outcome:
        thread = self._graph_thread(igsid)
        if thread.owner is not None and thread.owner != app_id:
            raise not_owner()
        return Outcome({"success": True}, self._pass(thread, app_id, target_app_id, metadata))

    def take_thread_control(
        self, app_id: str, igsid: str | None, metadata: str | None = None
    ) -> Outcome:
        if not self.config.routing_enabled:
            raise take_unsupported()
        if not self.apps[app_id].can_take:
            raise take_not_allowed()
        thread = self._graph_thread(igsid)
        return Outcome({"success": True}, self._take(thread, app_id, metadata))

    def release_thread_control(
        self, app_id: str, igsid: str | None, metadata: str | None = None
    ) -> Outcome:
        thread = self._graph_thread(igsid)
        if thread.owner != app_id:
            raise not_owner()
        thread.owner, thread.expires_at = None, None
        thread.updated_at = self.now
        return Outcome({"success": True})  # release sends no webhook

    def request_thread_control(
        self, app_id: str, igsid: str | None, metadata: str | None = None
    ) -> Outcome:
        thread = self._graph_thread(igsid)
        if thread.owner == app_id:
            raise param_error("The app already owns the thread")
        body: dict[str, Any]
        if thread.owner is None:  # idle: control at once, announced as a pass
            self._grant(thread, app_id)
            body = {"previous_owner_app_id": None, "new_owner_app_id": app_id}
            if metadata is not None:
                body["metadata"] = metadata
            return Outcome(
                {"success": True}, self._handover(app_id, thread.igsid, "pass_thread_control", body)
            )
        body = {"requested_owner_app_id": app_id}
        if metadata is not None:
            body["metadata"] = metadata
        return Outcome(
            {"success": True},
            self._handover(thread.owner, thread.igsid, "request_thread_control", body),
        )

    def extend_thread_control(self, app_id: str, igsid: str | None, duration: Any) -> Outcome:
        thread = self._graph_thread(igsid)
        if thread.owner != app_id:
            raise not_owner()
        try:
            seconds = int(duration)
        except (TypeError, ValueError):
            raise param_error("The parameter duration is required") from None
        if not 0 < seconds <= MAX_EXTEND_S:
            raise param_error(f"Param duration must be between 1 and {int(MAX_EXTEND_S)} seconds")
        thread.expires_at = self.now + seconds
        return Outcome({"success": True})

    def thread_owner(self, app_id: str, igsid: str | None) -> dict[str, Any]:
        """Owner and default app see both fields; other apps only `expiration`; idle: empty."""
        thread = self.thread(igsid) if igsid else None
        if thread is None or thread.owner is None:
            return {"data": []}
        owner: dict[str, Any] = {}
        if app_id in (thread.owner, self.default_app_id):
            owner["app_id"] = thread.owner
        owner["expiration"] = int(thread.expires_at or 0)
        return {"data": [{"thread_owner": owner}]}
