"""The inbox's UI text in English and German. Customer text is never translated or touched."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("en", "de")

TEXTS: Mapping[str, Mapping[str, str]] = {
    "app_title": {"en": "Inbox", "de": "Posteingang"},
    "sign_in": {"en": "Sign in", "de": "Anmelden"},
    "sign_out": {"en": "Sign out", "de": "Abmelden"},
    "login": {"en": "Login", "de": "Benutzername"},
    "password": {"en": "Password", "de": "Passwort"},
    "bad_credentials": {
        "en": "Wrong login or password.",
        "de": "Benutzername oder Passwort ist falsch.",
    },
    "rate_limited": {
        "en": "Too many failed sign-ins. Please wait 15 minutes and try again.",
        "de": "Zu viele fehlgeschlagene Anmeldungen. Bitte in 15 Minuten erneut versuchen.",
    },
    "csrf": {
        "en": "The form expired. Please reload the page and try again.",
        "de": "Das Formular ist abgelaufen. Bitte Seite neu laden und erneut versuchen.",
    },
    "queue": {"en": "Queue", "de": "Warteschlange"},
    "audit": {"en": "Audit", "de": "Protokoll"},
    "pending": {"en": "Waiting for an agent", "de": "Wartet auf Mitarbeiter"},
    "mine": {"en": "Mine", "de": "Meine"},
    "all": {"en": "All conversations", "de": "Alle Gespräche"},
    "empty": {"en": "Nothing here.", "de": "Nichts da."},
    "waiting": {"en": "waiting", "de": "wartet"},
    "timeout_in": {"en": "back to the bot in", "de": "zurück an den Bot in"},
    "overdue": {"en": "timeout reached", "de": "Zeit abgelaufen"},
    "unread": {"en": "unread", "de": "ungelesen"},
    "state_bot": {"en": "Bot", "de": "Bot"},
    "state_pending_human": {"en": "Pending", "de": "Wartend"},
    "state_human": {"en": "Human", "de": "Mensch"},
    "bot_owned": {"en": "bot-owned", "de": "beim Bot"},
    "channel": {"en": "Channel", "de": "Kanal"},
    "channel_instagram": {"en": "Instagram", "de": "Instagram"},
    "channel_messenger": {"en": "Messenger", "de": "Messenger"},
    "held_by": {"en": "held by", "de": "bei"},
    "held_elsewhere": {"en": "held by", "de": "liegt bei"},
    "nobody": {"en": "nobody", "de": "niemand"},
    "filter": {"en": "Filter", "de": "Filtern"},
    "search": {"en": "Search customer or text", "de": "Kunde oder Text suchen"},
    "any_account": {"en": "All accounts", "de": "Alle Konten"},
    "any_state": {"en": "All states", "de": "Alle Zustände"},
    "any_assignee": {"en": "Anyone", "de": "Alle"},
    "assigned_me": {"en": "Me", "de": "Ich"},
    "assigned_nobody": {"en": "Nobody", "de": "Niemand"},
    "customer": {"en": "Customer", "de": "Kunde"},
    "bot": {"en": "Bot", "de": "Bot"},
    "agent_api": {"en": "via API", "de": "über API"},
    "instagram_inbox": {
        "en": "Instagram app / Inbox (outside)",
        "de": "Instagram-App / Postfach (extern)",
    },
    "page_inbox": {"en": "Page Inbox (outside)", "de": "Seiten-Postfach (extern)"},
    "unsent": {"en": "Message unsent by the customer", "de": "Nachricht vom Kunden zurückgezogen"},
    "story_reply": {"en": "Reply to a story", "de": "Antwort auf eine Story"},
    "story_mention": {"en": "Mentioned you in a story", "de": "Hat Sie in einer Story erwähnt"},
    "attachment": {"en": "Attachment", "de": "Anhang"},
    "comment_on": {"en": "Comment on post", "de": "Kommentar zu Beitrag"},
    "mention": {"en": "Mentioned the account", "de": "Hat das Konto erwähnt"},
    "reacted": {"en": "reacted", "de": "hat reagiert"},
    "window_automated": {
        "en": "Automated replies until {until}",
        "de": "Automatische Antworten bis {until}",
    },
    "window_human": {
        "en": "Human replies only (HUMAN_AGENT) until {until}",
        "de": "Nur menschliche Antworten (HUMAN_AGENT) bis {until}",
    },
    "window_closed": {
        "en": "Closed: nothing may be sent until the customer writes again",
        "de": "Geschlossen: nichts darf gesendet werden, bis der Kunde wieder schreibt",
    },
    "window_never": {
        "en": "Closed: the customer has not written yet",
        "de": "Geschlossen: der Kunde hat noch nicht geschrieben",
    },
    "reply": {"en": "Reply", "de": "Antworten"},
    "send": {"en": "Send", "de": "Senden"},
    "reply_hint": {
        "en": "Enter sends, Shift+Enter adds a line",
        "de": "Enter sendet, Umschalt+Enter neue Zeile",
    },
    "reply_rule_response": {
        "en": "Sent as a normal reply (within 24 h of the customer's last message).",
        "de": "Wird als normale Antwort gesendet "
        "(innerhalb von 24 h nach der letzten Kundennachricht).",
    },
    "reply_rule_human_agent": {
        "en": "Sent with the HUMAN_AGENT tag (24 h to 7 days after the customer's last message).",
        "de": "Wird mit dem HUMAN_AGENT-Tag gesendet "
        "(24 h bis 7 Tage nach der letzten Kundennachricht).",
    },
    "cannot_reply_window": {
        "en": "Replying is not possible: {reason}",
        "de": "Antworten ist nicht möglich: {reason}",
    },
    "cannot_reply_accept": {
        "en": "Accept the conversation to reply.",
        "de": "Gespräch annehmen, um zu antworten.",
    },
    "cannot_reply_other": {
        "en": "{name} is answering this conversation.",
        "de": "{name} beantwortet dieses Gespräch.",
    },
    "cannot_reply_bot": {
        "en": "The bot is answering. Take the conversation to reply.",
        "de": "Der Bot antwortet. Übernehmen Sie das Gespräch, um zu antworten.",
    },
    "cannot_reply_elsewhere": {
        "en": "Another app or inbox holds this conversation ({owner}).",
        "de": "Eine andere App oder ein anderes Postfach hält dieses Gespräch ({owner}).",
    },
    "canned": {"en": "Canned responses", "de": "Textbausteine"},
    "offer_quick_replies": {"en": "Offer quick replies", "de": "Schnellantworten anbieten"},
    "accept": {"en": "Accept", "de": "Annehmen"},
    "take_from_bot": {"en": "Take from the bot", "de": "Vom Bot übernehmen"},
    "take_over": {"en": "Take over", "de": "Übernehmen"},
    "release": {"en": "Release to the bot", "de": "An den Bot zurückgeben"},
    "release_reason": {"en": "Reason (the bot receives it)", "de": "Grund (geht an den Bot)"},
    "reason_resolved": {"en": "Resolved", "de": "Erledigt"},
    "reason_no_reply": {"en": "Customer stopped answering", "de": "Kunde antwortet nicht mehr"},
    "reason_bot_can": {"en": "The bot can handle it", "de": "Der Bot kann das übernehmen"},
    "transfer": {"en": "Transfer", "de": "Weitergeben"},
    "transfer_to": {"en": "Transfer to", "de": "Weitergeben an"},
    "agent_label": {"en": "Agent", "de": "Mitarbeiter"},
    "app_label": {"en": "Human app", "de": "Menschliche App"},
    "note": {"en": "Internal note", "de": "Interne Notiz"},
    "notes": {"en": "Internal notes (never sent)", "de": "Interne Notizen (werden nie gesendet)"},
    "add_note": {"en": "Add note", "de": "Notiz hinzufügen"},
    "react": {"en": "React", "de": "Reagieren"},
    "private_reply": {"en": "Private reply", "de": "Private Antwort"},
    "history": {"en": "History", "de": "Verlauf"},
    "state": {"en": "State", "de": "Zustand"},
    "owner": {"en": "Thread owner", "de": "Thread-Besitzer"},
    "assignee": {"en": "Assigned to", "de": "Zugewiesen an"},
    "window": {"en": "Message window", "de": "Nachrichtenfenster"},
    "account": {"en": "Account", "de": "Konto"},
    "back": {"en": "Back to the queue", "de": "Zurück zur Warteschlange"},
    "live": {"en": "live", "de": "live"},
    "offline": {"en": "reconnecting…", "de": "verbinde neu…"},
    "done_accept": {
        "en": "You accepted the conversation.",
        "de": "Sie haben das Gespräch angenommen.",
    },
    "done_take": {
        "en": "You took the conversation from the bot.",
        "de": "Sie haben das Gespräch vom Bot übernommen.",
    },
    "done_reply": {"en": "Reply sent.", "de": "Antwort gesendet."},
    "done_react": {"en": "Reaction sent.", "de": "Reaktion gesendet."},
    "done_private_reply": {"en": "Private reply sent.", "de": "Private Antwort gesendet."},
    "done_note": {"en": "Note saved (not sent).", "de": "Notiz gespeichert (nicht gesendet)."},
    "done_release": {"en": "Released to the bot.", "de": "An den Bot zurückgegeben."},
    "done_transfer": {"en": "Transferred.", "de": "Weitergegeben."},
    "queued": {
        "en": "Submitted; the orchestrator has not decided yet. The page updates when it does.",
        "de": "Übermittelt; die Entscheidung steht noch aus. Die Seite aktualisiert sich dann.",
    },
    "refused": {"en": "Refused: {message}", "de": "Abgelehnt: {message}"},
    "refused_not_owner": {
        "en": "Refused: this app does not hold the conversation (not_owner).",
        "de": "Abgelehnt: diese App hält das Gespräch nicht (not_owner).",
    },
    "refused_window": {
        "en": "Refused, the message window is closed: {message}",
        "de": "Abgelehnt, das Nachrichtenfenster ist geschlossen: {message}",
    },
    "taken_by": {
        "en": "{name} has already taken this conversation.",
        "de": "{name} hat dieses Gespräch bereits übernommen.",
    },
    "not_yours": {
        "en": "You do not hold this conversation.",
        "de": "Sie halten dieses Gespräch nicht.",
    },
    "failed": {
        "en": "The action could not be processed; see the service log.",
        "de": "Die Aktion konnte nicht verarbeitet werden; siehe Service-Log.",
    },
    "invalid": {"en": "Invalid input: {message}", "de": "Ungültige Eingabe: {message}"},
    "empty_text": {"en": "Write something first.", "de": "Bitte zuerst etwas schreiben."},
    "unknown_agent": {"en": "No such active agent.", "de": "Kein solcher aktiver Mitarbeiter."},
    "admins_only": {"en": "Only admins may do this.", "de": "Nur Admins dürfen das."},
    "no_conversation": {"en": "No such conversation.", "de": "Kein solches Gespräch."},
    "when": {"en": "When", "de": "Wann"},
    "who": {"en": "Who", "de": "Wer"},
    "what": {"en": "What", "de": "Was"},
    "outcome": {"en": "Outcome", "de": "Ergebnis"},
    "conversation": {"en": "Conversation", "de": "Gespräch"},
    "language": {"en": "Deutsch", "de": "English"},
    "skip": {"en": "Skip to content", "de": "Zum Inhalt springen"},
}


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    """The `lang` cookie, else the first supported language in Accept-Language, else en."""
    if cookie in LANGUAGES:
        return cookie
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "en"


def translate(lang: str, key: str, **values: object) -> str:
    entry = TEXTS.get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry["en"]
    return text.format(**values) if values else text
