"""Graph reads and app subscriptions: conversations, profiles, feature status, and the
`subscribed_apps` edge with its field names."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from orchestrator.sandbox.simulator.core import _b64
from orchestrator.sandbox.simulator.errors import SimError, param_error
from orchestrator.sandbox.simulator.model import Outcome
from orchestrator.sandbox.simulator.rules import ALL_FIELDS, FIELD_ALIASES
from orchestrator.sandbox.simulator.thread_control import ThreadControl


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def normalise_fields(raw: Iterable[str]) -> frozenset[str]:
    out = set()
    for name in raw:
        name = name.strip()
        if not name:
            continue
        name = FIELD_ALIASES.get(name, name)
        if name not in ALL_FIELDS:
            raise param_error(
                f"Param subscribed_fields must be one of {{{', '.join(sorted(ALL_FIELDS))}}}"
                f' - got "{name}"'
            )
        out.add(name)
    return frozenset(out)


class GraphReads(ThreadControl):
    """Graph reads and the `subscribed_apps` edge."""

    def conversation_id(self, igsid: str) -> str:
        return _b64(f"ig_thread:{self.config.account_id}:{igsid}")

    def conversations(
        self, app_id: str, platform: str | None, user_id: str | None, fields: Iterable[str] = ()
    ) -> dict[str, Any]:
        if (platform or "").lower() != "instagram":
            return {"data": []}  # the Page's Messenger conversations: none here
        threads = [self._refresh(t) for t in self.threads.values() if t.messages]
        if user_id is not None:
            threads = [t for t in threads if t.igsid == user_id]
        threads.sort(key=lambda t: t.updated_at, reverse=True)
        wanted = set(fields)
        data = []
        for t in threads:
            row: dict[str, Any] = {
                "id": self.conversation_id(t.igsid),
                "updated_time": _iso(t.updated_at),
            }
            if "participants" in wanted:
                row["participants"] = {
                    "data": [
                        {"username": "business", "id": self.config.account_id},
                        {"username": t.username, "id": t.igsid},
                    ]
                }
            if "messages" in wanted:
                recent = [m for m in reversed(t.messages) if not m.deleted][:20]
                row["messages"] = {
                    "data": [{"id": m.mid, "created_time": _iso(m.timestamp)} for m in recent]
                }
            if "is_owner" in wanted:
                row["is_owner"] = self._may_send(app_id, t)
            data.append(row)
        return {"data": data}

    def subscribed_apps(self) -> dict[str, Any]:
        data = []
        for app in self.our_apps:
            state = self.app_states[app.app_id]
            if state.subscribed:
                data.append(
                    {"id": app.app_id, "name": app.name, "subscribed_fields": sorted(state.fields)}
                )
        return {"data": data}

    def subscribe(self, app_id: str, fields: Iterable[str] | str | None) -> Outcome:
        if fields is None or fields == "":
            raise param_error("The parameter subscribed_fields is required")
        names = fields.split(",") if isinstance(fields, str) else list(fields)
        state = self.app_states[app_id]
        state.fields = normalise_fields(names)
        state.subscribed = True
        return Outcome({"success": True})

    def unsubscribe(self, app_id: str) -> Outcome:
        state = self.app_states[app_id]
        state.subscribed = False
        return Outcome({"success": True})

    def set_webhook_url(self, app_id: str, url: str | None) -> None:
        if app_id not in self.app_states:
            raise SimError(f"unknown app {app_id!r}", 404)
        self.app_states[app_id].webhook_url = url

    def feature_status(self) -> dict[str, Any]:
        return {
            "messaging_feature_status": {
                "hop_v2": False,
                "msgr_multi_app": True,
                "ig_multi_app": self.config.routing_enabled,
            },
            "id": self.config.page_id,
        }

    def profile(self, igsid: str) -> dict[str, Any] | None:
        thread = self.threads.get(igsid)
        if thread is None:
            return None
        name = thread.username.replace("_", " ").title()
        if thread.channel == "messenger":
            # Messenger's User Profile API: first and last name, no username (a PSID).
            first, _, last = name.partition(" ")
            return {"id": igsid, "first_name": first, "last_name": last}
        return {"id": igsid, "username": thread.username, "name": name}
