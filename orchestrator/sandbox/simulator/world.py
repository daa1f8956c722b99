"""The simulated Meta world: one Instagram business account, its apps and its customers.

Pure rules, no I/O (docs/platform.md sections 1.3, 2, 4, 5, 7). Every action returns an
`Outcome`: the answer Meta would give and the webhooks Meta would send. The server and the
webhook sender do the I/O. Time comes from an injectable clock plus an offset moved by
`advance()`, so windows and expiries are testable without sleeping.

`World` is composed of one mixin per theme (customer actions, the Inbox, the Send API, thread
control, Graph reads, inspection) over `WorldCore`; this module also re-exports the names it
has always offered.
"""

from __future__ import annotations

from orchestrator.sandbox.simulator.config import (
    INBOX_APP_IDS,
    INSTAGRAM_INBOX_APP_ID,
    PAGE_INBOX_APP_ID,
    SimApp,
    SimConfig,
)
from orchestrator.sandbox.simulator.customers import CustomerActions
from orchestrator.sandbox.simulator.errors import (
    GraphError,
    SimError,
    SimulatorError,
    invalid_token,
    no_matching_user,
    not_owner,
    outside_window,
    param_error,
    private_reply_used,
    rate_limited,
    take_not_allowed,
    take_unsupported,
    transient_error,
    unsupported_request,
)
from orchestrator.sandbox.simulator.inbox import InboxActions
from orchestrator.sandbox.simulator.inspection import Inspection
from orchestrator.sandbox.simulator.model import (
    AppState,
    Channel,
    Comment,
    Message,
    Outcome,
    Thread,
    WebhookEvent,
)
from orchestrator.sandbox.simulator.reads import GraphReads, normalise_fields
from orchestrator.sandbox.simulator.rules import (
    ALL_FIELDS,
    CONTROL_TTL_S,
    DAY_S,
    EVENT_FIELDS,
    FIELD_ALIASES,
    HUMAN_AGENT_WINDOW_S,
    MAX_EDITS,
    MAX_EXTEND_S,
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
from orchestrator.sandbox.simulator.send_api import SendApi


class World(CustomerActions, InboxActions, SendApi, GraphReads, Inspection):
    """The whole simulated world; see the mixins for each theme's rules."""


__all__ = [
    "ALL_FIELDS",
    "CONTROL_TTL_S",
    "DAY_S",
    "EVENT_FIELDS",
    "FIELD_ALIASES",
    "HUMAN_AGENT_WINDOW_S",
    "INBOX_APP_IDS",
    "INSTAGRAM_INBOX_APP_ID",
    "MAX_EDITS",
    "MAX_EXTEND_S",
    "MAX_QUICK_REPLIES",
    "MAX_TEXT_BYTES",
    "MESSAGING_TYPES",
    "PAGE_INBOX_APP_ID",
    "PRIVATE_REPLY_WINDOW_S",
    "QUICK_REPLY_TITLE_CHARS",
    "REACTIONS",
    "RETIRED_TAGS",
    "SENDER_ACTIONS",
    "WINDOW_S",
    "AppState",
    "Channel",
    "Comment",
    "GraphError",
    "Message",
    "Outcome",
    "SimApp",
    "SimConfig",
    "SimError",
    "SimulatorError",
    "Thread",
    "WebhookEvent",
    "World",
    "invalid_token",
    "no_matching_user",
    "normalise_fields",
    "not_owner",
    "outside_window",
    "param_error",
    "private_reply_used",
    "rate_limited",
    "take_not_allowed",
    "take_unsupported",
    "transient_error",
    "unsupported_request",
]
