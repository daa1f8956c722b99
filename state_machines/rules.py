"""The constants the conversation machine shares: state shorthands, Meta's platform limits,
the handover metadata we send, and the rule texts quoted in refusals.

Kept apart so that classification, handlers and the table all quote one wording.
"""

from __future__ import annotations

from datetime import timedelta

from state_machines.model import State

# --- Meta's platform limits (defined here only) -------------------------------------------
# The messaging window (docs/platform.md 4.5): automation within 24 h of the customer's last
# message, human agents (HUMAN_AGENT tag) up to 7 days.
AUTOMATED_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
HUMAN_AGENT_TAG = "HUMAN_AGENT"
# Meta idles a thread after 24 h of inactivity unless extended (docs/platform.md 1.3).
CONTROL_IDLE = timedelta(hours=24)
MAX_EXTEND_S = 7 * 24 * 3600  # docs/platform.md 5: extend_thread_control up to 7 days
PRIVATE_REPLY_WINDOW = timedelta(days=7)  # docs/platform.md 4.2
MAX_METADATA_CHARS = 1000  # Meta's limit for thread-control metadata
MAX_QUICK_REPLIES = 13  # docs/platform.md 4.3
MAX_ATTACHMENTS = 10

# --- the handover metadata we send ---------------------------------------------------------
META_CUSTOMER_REQUEST = "customer_request"
META_BOT_FAILURE = "bot_failure"

RULE_SPEAK = "only the app in control speaks"
RULE_CONTROL = "only the app in control passes, releases, extends or escalates"
RULE_ACCEPT = "only the human app a conversation was passed to accepts it"
RULE_TAKE = "only the primary app and apps allowed to take control take it"
RULE_REQUEST = "only an app that is not in control requests it"
RULE_EXTEND = "only a human app holding the thread extends control; automation has 24 h"
RULE_RELEASE = "only an owned thread can be released"
RULE_ESCALATION = "escalation needs a human app to escalate to"
RULE_VALID = "actions must name known apps and valid values"
RULE_PRIVATE_ONCE = "one private reply per comment"
RULE_PRIVATE_WINDOW = "private replies only within 7 days of the comment"
RULE_DISCLOSURE = "automated messages are preceded by the disclosure"

B, P, H = State.BOT, State.PENDING_HUMAN, State.HUMAN

# --- the two clocks --------------------------------------------------------------------------
# Meta stamps webhooks with Meta's clock; our actions, timers and reconciliations carry ours.
# The order rule for each pair of sources (README "Rules that hold by construction"):
CLOCK_RULES: tuple[tuple[str, str], ...] = (
    (
        "Meta event / Meta event",
        "Meta's timestamps order them: the window anchor only moves forward, and a handover "
        "webhook older than the newest one applied is recorded, never applied.",
    ),
    (
        "our decision / our decision",
        "the order we decided them in (processing order); bot-failure streaks count customer "
        "messages, not time.",
    ),
    (
        "Meta handover webhook / our control decision",
        "not ordered by comparing clocks: a webhook that disagrees with our state and is "
        "stamped before our latest control decision may describe an older state, so it is "
        "not applied; Meta is asked who owns the thread (thread_owner) and we follow that.",
    ),
    (
        "human echo / our automated messages",
        "ordered by processing: an automated message we decided before processing a human "
        "echo was decided without knowing it, so the next one is disclosed; only Meta's own "
        "order (the echo predates the newest handover webhook applied) can make it old news.",
    ),
    (
        "Meta's deadlines / our clock",
        "the messaging window, control expiry and the private-reply limit are deadlines Meta "
        "enforces on its clock; we compare them with ours when deciding and arm timers for "
        "them, assuming clocks within seconds of each other (NTP).",
    ),
)
RULE_STANDBY = "an event no app of ours received as owner is never automated on"
RULE_OWNER_EVIDENCE = (
    "when Meta's evidence of ownership disagrees with our state, Meta is asked (thread_owner)"
)
RULE_STALE_HANDOVER = "older handover webhooks never override newer ones"
