"""Sub-apps: what receives events and answers with actions.

An app is either an in-process handler loaded by dotted path (`apps.faq_bot:FaqBot`) or an
HTTP vendor reached by a signed POST (`apps.http_vendor:HttpVendor`, built from `url`). Both
sit behind the same small Protocol, so the outbox delivers to them the same way.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

import aiohttp

from orchestrator.config.types import AppConfig, Config
from orchestrator.errors import SubAppLoadError


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a sub-app receives: one event of one conversation, in order."""

    id: int  # the outbox row id: stable across retries, the idempotency key
    app: str
    conversation: Mapping[str, Any]
    event: Mapping[str, Any]
    standby: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "delivery_id": self.id,
            "idempotency_key": f"delivery-{self.id}",
            "app": self.app,
            "standby": self.standby,
            "conversation": dict(self.conversation),
            "event": dict(self.event),
        }


@runtime_checkable
class SubApp(Protocol):
    """An app's handler. An in-process handler may also declare `inline = True` (a class
    attribute): it answers from memory, without waiting on the network or the disk, and the
    worker then calls it inside its claim of the conversation (engine/inline.py): its
    actions are decided in the same step, one transaction per reply. Any other handler (an
    LLM, a remote API: `inline` absent or False) is delivered through the outbox, in its
    own lane, concurrently across conversations, so one slow answer never holds back the
    replies of conversations that share its worker's batch."""

    async def handle(self, delivery: Delivery) -> Sequence[Mapping[str, Any]]:
        """Receive one event; return actions (JSON objects such as
        `{"type": "reply", "message": {"text": "Hi"}}`). Standby deliveries are for
        information only: actions returned for them are refused like any non-owner's."""
        ...


@dataclass(frozen=True, slots=True)
class AppContext:
    """What a handler may use at construction: its config and a shared HTTP session."""

    app: AppConfig
    config: Config
    http: aiohttp.ClientSession | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


HTTP_VENDOR_HANDLER = "apps.http_vendor:HttpVendor"


def load_subapp(index: int, app: AppConfig, ctx: AppContext) -> SubApp | None:
    """Build the app's handler; None for an app without handler or URL (it acts only via
    the REST API and receives nothing). Errors name the config key and the reason."""
    # A vendor URL is served by the built-in HTTP adapter, loaded like any handler: by dotted
    # path, so this package never imports `apps` (the plug-ins depend on the core, not back).
    handler = HTTP_VENDOR_HANDLER if app.url else app.handler
    if not handler:
        return None
    where = f"apps[{index}].url" if app.url else f"apps[{index}].handler"
    module_name, _, attr = handler.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SubAppLoadError(f"{where}: cannot import module {module_name!r}: {exc}") from exc
    target: Any = getattr(module, attr, None)
    if target is None:
        raise SubAppLoadError(f"{where}: module {module_name!r} has no attribute {attr!r}")
    try:
        build = cast(Callable[[AppContext], Any], target)
        instance: Any = build(ctx) if inspect.isclass(target) else target
    except Exception as exc:
        raise SubAppLoadError(f"{where}: {handler} failed to start: {exc}") from exc
    if not isinstance(instance, SubApp) or not inspect.iscoroutinefunction(instance.handle):
        raise SubAppLoadError(f"{where}: {handler} must have `async def handle(self, delivery)`")
    return instance


def runs_inline(handler: SubApp | None) -> bool:
    """Whether the worker may call this handler inside its claim: only when it says so."""
    return handler is not None and getattr(handler, "inline", False) is True


def how_called(app: AppConfig, handler: SubApp | None) -> str:
    """How deliveries reach an app, in words (start-up log, `check-config`)."""
    if handler is None:
        return "not called: it acts through the REST API"
    if app.url:
        return "signed HTTP POST through the outbox, in its own lane"
    if runs_inline(handler):
        return "inline, in the worker's step"
    return "through the outbox, in its own lane: the class does not declare inline = True"


def conversation_summary(conv: Mapping[str, Any], channel: str | None = None) -> dict[str, Any]:
    """What a sub-app is told about the conversation with each delivery. `channel` is
    "instagram" (customer_id an IGSID, account_id the Instagram account) or "messenger"
    (customer_id a PSID, account_id the Page)."""
    view = conv["view"] or {}
    return {
        "id": conv["id"],
        "account_id": conv["account_id"],
        "channel": channel or "instagram",
        "customer_id": conv["customer_id"],
        "state": conv["state"],
        "owner_app": conv["owner_app"],
        "locale": view.get("locale"),
    }
