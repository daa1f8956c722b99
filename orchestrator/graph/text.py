"""Send API content rules (docs/platform.md section 4.3), checked before anything is sent.

- :func:`split_text` cuts long text into messages of at most 1000 UTF-8 bytes (Meta says both
  "less than 1000 characters" and "1,000 bytes or less"; bytes is the stricter reading),
  preferring line breaks, then spaces, and never splitting a character or a grapheme cluster
  (accents, emoji with skin tones or ZWJ sequences, flags).
- :func:`validate_message` raises :class:`ContentError` naming the broken rule, so a bad
  message is refused by us with a clear reason instead of by Meta with error 100.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from .errors import ContentError

__all__ = [
    "MAX_ATTACHMENTS",
    "MAX_BUTTON_TEXT",
    "MAX_ELEMENT_BUTTONS",
    "MAX_ELEMENT_TEXT",
    "MAX_GENERIC_ELEMENTS",
    "MAX_QUICK_REPLIES",
    "MAX_QUICK_REPLY_TITLE",
    "MAX_TEXT_BYTES",
    "has_media",
    "split_text",
    "validate_message",
    "validate_messaging_type",
    "validate_recipient",
]

MAX_TEXT_BYTES = 1000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_GENERIC_ELEMENTS = 10
MAX_ELEMENT_BUTTONS = 3
MAX_ELEMENT_TEXT = 80
MAX_BUTTON_TEXT = 640
MAX_BUTTONS = 3
MAX_ATTACHMENTS = 10
MAX_PRODUCTS = 10
GENERIC_BUTTON_TYPES = frozenset({"postback", "web_url"})
MEDIA_TYPES = frozenset({"audio", "video"})
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY"})
# Error 100 from Apr 27, 2026 (docs/platform.md 4.5): refuse them before Meta does.
RETIRED_TAGS = frozenset({"CONFIRMED_EVENT_UPDATE", "ACCOUNT_UPDATE", "POST_PURCHASE_UPDATE"})
RECIPIENT_KEYS = ("id", "comment_id", "post_id", "user_ref", "notification_messages_token")

# --- grapheme clusters (a compact subset of UAX #29, enough for chat text) --------------------

_ZWJ = 0x200D


def _is_extend(ch: str) -> bool:
    """Characters that never start a cluster: combining marks, ZWJ/ZWNJ, modifiers, tags."""
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or cp in (0x200C, _ZWJ)
        or 0xFE00 <= cp <= 0xFE0F  # variation selectors (emoji vs text presentation)
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
    )


def _is_control(ch: str) -> bool:
    return ch in "\r\n" or unicodedata.category(ch) in ("Cc", "Zl", "Zp")


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _hangul(ch: str) -> str:
    cp = ord(ch)
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return "L"
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return "V"
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return "T"
    if 0xAC00 <= cp <= 0xD7A3:
        return "LV" if (cp - 0xAC00) % 28 == 0 else "LVT"
    return ""


def _joins(prev: str, ch: str, odd_regional: bool) -> bool:
    """True when no cluster boundary may fall between ``prev`` and ``ch``."""
    if prev == "\r" and ch == "\n":
        return True
    if _is_control(prev) or _is_control(ch):
        return False
    if _is_extend(ch) or ord(prev) == _ZWJ:
        return True
    if odd_regional and _is_regional_indicator(ch):
        return True  # the second half of a flag
    p, c = _hangul(prev), _hangul(ch)
    return (
        (p == "L" and c in ("L", "V", "LV", "LVT"))
        or (p in ("LV", "V") and c in ("V", "T"))
        or (p in ("LVT", "T") and c == "T")
    )


def _clusters(text: str) -> list[str]:
    clusters: list[str] = []
    start = 0
    regional_run = 0  # regional indicators in a row, to pair them into flags
    for i, ch in enumerate(text):
        if i and not _joins(text[i - 1], ch, regional_run % 2 == 1):
            clusters.append(text[start:i])
            start = i
        regional_run = regional_run + 1 if _is_regional_indicator(ch) else 0
    if text:
        clusters.append(text[start:])
    return clusters


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _split_codepoints(text: str, limit: int) -> list[str]:
    """Last resort for one cluster longer than ``limit``: cut between code points."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for ch in text:
        n = _utf8_len(ch)
        if size + n > limit and current:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += n
    if current:
        pieces.append("".join(current))
    return pieces


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-8 bytes each.

    Text that fits is returned unchanged as one piece; empty or blank text gives ``[]``.
    Longer text is cut at the last line break in the second half of a piece, else at the last
    whitespace, else between grapheme clusters; whitespace at the cuts is dropped. Only a
    single cluster longer than ``limit`` (hundreds of combining marks) is cut inside, and
    then between code points: a multi-byte character is never broken.
    """
    if limit < 4:
        raise ValueError("limit must be at least 4 bytes (the longest UTF-8 character)")
    if not text.strip():
        return []
    if _utf8_len(text) <= limit:
        return [text]
    clusters = _clusters(text)
    sizes = [_utf8_len(c) for c in clusters]
    pieces: list[str] = []
    i, n = 0, len(clusters)
    while i < n:
        while i < n and clusters[i].isspace():
            i += 1
        if i == n:
            break
        size, j = 0, i
        last_space: int | None = None
        last_newline: int | None = None
        while j < n and size + sizes[j] <= limit:
            if clusters[j].isspace():
                last_space = j
                if "\n" in clusters[j] and size >= limit // 2:
                    last_newline = j
            size += sizes[j]
            j += 1
        if j == i:  # one cluster alone is over the limit
            pieces.extend(_split_codepoints(clusters[i], limit))
            i += 1
            continue
        if j == n or clusters[j].isspace():
            cut = j
        elif last_newline is not None:
            cut = last_newline
        elif last_space is not None and last_space > i:
            cut = last_space
        else:
            cut = j
        piece = "".join(clusters[i:cut]).rstrip()
        if piece:
            pieces.append(piece)
        i = cut
    return pieces


# --- message validation -----------------------------------------------------------------------


def _fail(rule_name: str, reason: str) -> ContentError:
    return ContentError(reason, rule_name=rule_name)


def _as_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail("shape", f"{what} must be a list, got {type(value).__name__}")
    return value


def _as_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail("shape", f"{what} must be an object, got {type(value).__name__}")
    return value


def _check_text(text: Any) -> None:
    if not isinstance(text, str):
        raise _fail("shape", f"message.text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise _fail("text_empty", "message.text is empty")
    size = _utf8_len(text)
    if size > MAX_TEXT_BYTES:
        raise _fail(
            "text_bytes",
            f"message.text is {size} bytes of UTF-8; the Send API allows at most "
            f"{MAX_TEXT_BYTES} bytes (split it with split_text)",
        )


def _check_quick_replies(message: Mapping[str, Any]) -> None:
    replies = _as_list(message["quick_replies"], "message.quick_replies")
    if len(replies) > MAX_QUICK_REPLIES:
        raise _fail(
            "quick_replies_count",
            f"{len(replies)} quick replies; at most {MAX_QUICK_REPLIES} are allowed",
        )
    if "text" not in message:
        raise _fail("quick_replies_text_only", "quick replies go with a text message only")
    for n, reply in enumerate(replies, start=1):
        title = _as_mapping(reply, f"quick reply {n}").get("title")
        if isinstance(title, str) and len(title) > MAX_QUICK_REPLY_TITLE:
            raise _fail(
                "quick_reply_title",
                f"quick reply {n} title is {len(title)} characters; "
                f"at most {MAX_QUICK_REPLY_TITLE} are allowed",
            )


def _check_generic(payload: Mapping[str, Any]) -> None:
    elements = _as_list(payload.get("elements"), "generic template elements")
    if not elements or len(elements) > MAX_GENERIC_ELEMENTS:
        raise _fail(
            "generic_elements_count",
            f"generic template has {len(elements)} elements; "
            f"1 to {MAX_GENERIC_ELEMENTS} are allowed",
        )
    for n, raw in enumerate(elements, start=1):
        element = _as_mapping(raw, f"generic template element {n}")
        for key in ("title", "subtitle"):
            value = element.get(key)
            if isinstance(value, str) and len(value) > MAX_ELEMENT_TEXT:
                raise _fail(
                    f"generic_{key}_length",
                    f"generic template element {n} {key} is {len(value)} characters; "
                    f"at most {MAX_ELEMENT_TEXT} are allowed",
                )
        buttons = _as_list(element.get("buttons", []), f"element {n} buttons")
        if len(buttons) > MAX_ELEMENT_BUTTONS:
            raise _fail(
                "generic_buttons_count",
                f"generic template element {n} has {len(buttons)} buttons; "
                f"at most {MAX_ELEMENT_BUTTONS} are allowed",
            )
        for m, button in enumerate(buttons, start=1):
            kind = _as_mapping(button, f"element {n} button {m}").get("type")
            if kind not in GENERIC_BUTTON_TYPES:
                raise _fail(
                    "generic_button_type",
                    f"generic template element {n} button {m} has type {kind!r}; "
                    "only postback and web_url are allowed",
                )


def _check_button_template(payload: Mapping[str, Any]) -> None:
    text = payload.get("text")
    if isinstance(text, str) and len(text) > MAX_BUTTON_TEXT:
        raise _fail(
            "button_text_length",
            f"button template text is {len(text)} characters; "
            f"at most {MAX_BUTTON_TEXT} are allowed",
        )
    buttons = _as_list(payload.get("buttons", []), "button template buttons")
    if not 1 <= len(buttons) <= MAX_BUTTONS:
        raise _fail(
            "button_count",
            f"button template has {len(buttons)} buttons; 1 to {MAX_BUTTONS} are allowed",
        )


def _check_attachment(raw: Any, what: str) -> None:
    attachment = _as_mapping(raw, what)
    if attachment.get("type") != "template":
        return
    payload = _as_mapping(attachment.get("payload"), f"{what} payload")
    template_type = payload.get("template_type")
    if template_type == "generic":
        _check_generic(payload)
    elif template_type == "button":
        _check_button_template(payload)
    elif template_type == "product":
        products = _as_list(payload.get("elements", []), "product template elements")
        if len(products) > MAX_PRODUCTS:
            raise _fail(
                "product_count",
                f"product template has {len(products)} products; "
                f"at most {MAX_PRODUCTS} are allowed",
            )


def validate_message(message: dict[str, Any]) -> None:
    """Raise :class:`ContentError` if ``message`` breaks a Send API content rule."""
    message = dict(_as_mapping(message, "message"))
    if not any(key in message for key in ("text", "attachment", "attachments")):
        raise _fail("empty", "message has no text, attachment or attachments")
    if "text" in message:
        _check_text(message["text"])
    if "quick_replies" in message:
        _check_quick_replies(message)
    if "attachment" in message:
        _check_attachment(message["attachment"], "message.attachment")
    if "attachments" in message:
        attachments = _as_list(message["attachments"], "message.attachments")
        if len(attachments) > MAX_ATTACHMENTS:
            raise _fail(
                "attachments_count",
                f"{len(attachments)} attachments; at most {MAX_ATTACHMENTS} images "
                "are allowed in one message",
            )
        for n, attachment in enumerate(attachments, start=1):
            _check_attachment(attachment, f"attachment {n}")


def has_media(message: Mapping[str, Any]) -> bool:
    """True when the message carries audio or video (the slower ``send_media`` bucket)."""
    candidates: list[Any] = [message.get("attachment")]
    attachments = message.get("attachments")
    if isinstance(attachments, list):
        candidates.extend(attachments)
    return any(isinstance(a, Mapping) and a.get("type") in MEDIA_TYPES for a in candidates)


def validate_recipient(recipient: Any) -> None:
    """Raise :class:`ContentError` unless ``recipient`` has an ``id`` or a ``comment_id``."""
    if not isinstance(recipient, Mapping) or not any(recipient.get(k) for k in RECIPIENT_KEYS):
        raise ContentError(
            "recipient must be {'id': <IGSID>} or {'comment_id': <ID>}", rule_name="recipient"
        )


def validate_messaging_type(messaging_type: str | None, tag: str | None) -> None:
    """Raise :class:`ContentError` for an unknown type, a tag without ``MESSAGE_TAG`` (or the
    reverse) and tags retired by Meta."""
    if messaging_type is not None and messaging_type not in MESSAGING_TYPES:
        raise ContentError(
            f"messaging_type {messaging_type!r} is not one of {sorted(MESSAGING_TYPES)}",
            rule_name="messaging_type",
        )
    if messaging_type == "MESSAGE_TAG" and not tag:
        raise ContentError("messaging_type MESSAGE_TAG needs a tag", rule_name="tag_missing")
    if tag is not None and messaging_type != "MESSAGE_TAG":
        raise ContentError(
            f"tag {tag!r} needs messaging_type MESSAGE_TAG, got {messaging_type!r}",
            rule_name="tag_without_message_tag",
        )
    if tag in RETIRED_TAGS:
        raise ContentError(
            f"tag {tag!r} is retired since Apr 27, 2026 (Meta answers error 100)",
            rule_name="tag_retired",
        )
