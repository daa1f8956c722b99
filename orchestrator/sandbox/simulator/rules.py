"""Meta's fixed rules as data: windows and expiries, size limits, accepted vocabularies, and
the webhook field each event needs (docs/platform.md 1.3, 2, 4, 5, 7, 10)."""

from __future__ import annotations

DAY_S = 86_400.0
WINDOW_S = DAY_S  # standard messaging window
HUMAN_AGENT_WINDOW_S = 7 * DAY_S
CONTROL_TTL_S = DAY_S  # control expires after 24 h without a customer message
MAX_EXTEND_S = 7 * DAY_S
PRIVATE_REPLY_WINDOW_S = 7 * DAY_S
MAX_TEXT_BYTES = 1000
MAX_QUICK_REPLIES = 13
QUICK_REPLY_TITLE_CHARS = 20
MAX_EDITS = 5

RETIRED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"})
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY"})
SENDER_ACTIONS = frozenset({"react", "unreact", "mark_seen", "typing_on", "typing_off"})
REACTIONS: dict[str, str] = {
    "love": "\u2764\ufe0f",
    "like": "\U0001f44d",
    "laugh": "\U0001f606",
    "wow": "\U0001f62e",
    "sad": "\U0001f622",
    "angry": "\U0001f620",
}

# Webhook field each event needs the receiving app to be subscribed to (docs/platform.md 2, 10).
EVENT_FIELDS: dict[str, str] = {
    "message": "messages",
    "reaction": "message_reactions",
    "postback": "messaging_postbacks",
    "read": "messaging_seen",
    "referral": "messaging_referral",
    "message_edit": "message_edits",
    "pass_thread_control": "messaging_handover",
    "take_thread_control": "messaging_handover",
    "request_thread_control": "messaging_handover",
}
ALL_FIELDS = frozenset(
    {
        "messages",
        "message_reactions",
        "messaging_postbacks",
        "messaging_seen",
        "messaging_referral",
        "messaging_optins",
        "message_deliveries",
        "messaging_policy_enforcement",
        "messaging_account_linking",
        "messaging_handover",
        "message_edits",
        "standby",
        "comments",
        "live_comments",
        "mentions",
    }
)
# Doubtful spellings Meta is said to accept (docs/platform.md 2.6, 2.8, 11).
FIELD_ALIASES = {
    "messaging_handovers": "messaging_handover",
    "messaging_referrals": "messaging_referral",
    "message_edit": "message_edits",
}
