"""The constants the conversation machine shares: state shorthands, Meta's platform limits,
the handover metadata we send, and the rule texts quoted in refusals.

Kept apart so that classification, handlers and the table all quote one wording.
"""

from __future__ import annotations

from datetime import timedelta

from state_machines.model import State

# Meta idles a thread after 24 h without a customer message unless extended (docs/platform.md 1.3).
CONTROL_IDLE = timedelta(hours=24)
PRIVATE_REPLY_WINDOW = timedelta(days=7)  # docs/platform.md 4.2
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
