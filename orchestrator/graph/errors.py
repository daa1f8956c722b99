"""Typed exception family for the Meta Graph API (docs/platform.md section 7).

Meta answers errors as ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``.
:func:`classify` turns such an answer (or a bare HTTP status) into one subclass of
:class:`GraphError`; each subclass carries an ``action`` saying what the caller should do:

- ``retry``      transient fault, back off and try again;
- ``slow_down``  throttled, wait at least ``retry_after`` before trying again;
- ``reconcile``  an ownership-like refusal: read ``thread_owner``, update state, no blind retry;
- ``give_up``    the request can never succeed as is (closed window, blocked user, ...);
- ``alert``      a configuration or programming fault someone must look at (token, permission,
                 invalid parameter, unknown code).

Codes marked with a dagger in docs/platform.md come from a third-party source; they are matched
both as ``code`` and as ``error_subcode`` because where Meta puts them is unconfirmed.
No message produced here ever contains an access token: see :func:`redact`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal

Action = Literal["retry", "slow_down", "reconcile", "give_up", "alert"]

__all__ = [
    "Action",
    "ContentError",
    "GraphError",
    "GraphUnreachable",
    "HttpDeliveryError",
    "InvalidParameter",
    "InvalidToken",
    "NotThreadOwner",
    "PermissionDenied",
    "PrivateReplyUsed",
    "RateLimited",
    "RecipientUnavailable",
    "TakeNotSupported",
    "TransientError",
    "UnknownGraphError",
    "WindowClosed",
    "as_int",
    "classify",
    "redact",
    "retry_after_from_headers",
]

# --- redaction ------------------------------------------------------------------------------

_TOKEN_PATTERNS = (
    re.compile(r"(access_token=)[^&\s\"']+", re.IGNORECASE),
    re.compile(r"(Bearer\s+)[^\s\"']+", re.IGNORECASE),
)
REDACTED = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove access tokens from ``text``: known secrets and anything shaped like one."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


# --- the family -----------------------------------------------------------------------------


class GraphError(Exception):
    """Base of every error raised by the Graph client (and of :class:`ContentError`)."""

    action: ClassVar[Action] = "alert"
    #: Short name of the rule, used in retry reasons and logs.
    rule: ClassVar[str] = "Graph API error"

    def __init__(
        self,
        message: str = "",
        *,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        error_type: str | None = None,
    ) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.error_type = error_type

    @classmethod
    def from_response(
        cls,
        status: int | None,
        body: Any,
        headers: Mapping[str, str] | None = None,
    ) -> GraphError:
        """Same as :func:`classify`; returns the matching subclass, whatever ``cls`` is."""
        return classify(status, body, headers)

    @property
    def code_text(self) -> str:
        """``code 10/2534022``, ``code 551``, ``HTTP 503`` or ``no code``."""
        if self.code is not None:
            if self.subcode is not None:
                return f"code {self.code}/{self.subcode}"
            return f"code {self.code}"
        if self.subcode is not None:
            return f"subcode {self.subcode}"
        if self.http_status is not None:
            return f"HTTP {self.http_status}"
        return "no code"

    def __str__(self) -> str:
        parts = [self.code_text]
        if self.http_status is not None and self.code is not None:
            parts.append(f"(HTTP {self.http_status})")
        text = " ".join(parts)
        if self.message:
            text += f": {self.message}"
        if self.fbtrace_id:
            text += f" [fbtrace_id={self.fbtrace_id}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, subcode={self.subcode!r}, "
            f"http_status={self.http_status!r}, message={self.message!r}, "
            f"fbtrace_id={self.fbtrace_id!r})"
        )


class WindowClosed(GraphError):
    """Outside the 24-hour messaging window (10/2534022, 10/2018278, 10/2018065, 1545041)."""

    action = "give_up"
    rule = "outside the 24-hour messaging window"


class RecipientUnavailable(GraphError):
    """The person cannot receive messages: blocked, deactivated, opted out (551, 10/2018108)."""

    action = "give_up"
    rule = "recipient unavailable (blocked, deactivated or not receiving from you)"


class NotThreadOwner(GraphError):
    """Refused because this app does not own the thread (100/2534037, 2534014)."""

    action = "reconcile"
    rule = "this app is not the thread owner"


class TakeNotSupported(GraphError):
    """Take thread control without Conversation Routing (2534123, #27)."""

    action = "alert"
    rule = "take_thread_control is not supported when Conversation Routing is not enabled"


class PrivateReplyUsed(GraphError):
    """The one private reply to this comment was already sent (2534025)."""

    action = "give_up"
    rule = "private reply already used for this comment"


class InvalidParameter(GraphError):
    """Code 100 and its subcodes (bad recipient, upload errors, retired tags), 1/2018382."""

    action = "alert"
    rule = "invalid parameter"


class InvalidToken(GraphError):
    """Access token invalid or expired (190): re-authenticate."""

    action = "alert"
    rule = "access token invalid or expired"


class PermissionDenied(GraphError):
    """Missing permission or access level (200-299, 10 without a window subcode)."""

    action = "alert"
    rule = "permission denied (check App Review, access level and app roles)"


class RateLimited(GraphError):
    """Throttled (4, 17, 32, 613, 80000-80014); ``retry_after`` in seconds when Meta says."""

    action = "slow_down"
    rule = "rate limited"

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(
            message,
            code=code,
            subcode=subcode,
            fbtrace_id=fbtrace_id,
            http_status=http_status,
            error_type=error_type,
        )
        self.retry_after = retry_after


class TransientError(GraphError):
    """Unexpected or temporary failure (1, 2, HTTP 5xx): retry with backoff."""

    action = "retry"
    rule = "transient Graph API error"


class GraphUnreachable(TransientError):
    """Connection error or timeout: Meta never answered."""

    rule = "Graph API unreachable (connection error or timeout)"


class UnknownGraphError(GraphError):
    """Any code we do not know: not retried, someone should look."""

    action = "alert"
    rule = "unknown Graph API error"


class ContentError(GraphError):
    """Our own refusal before sending: the message breaks a Send API content rule."""

    action = "give_up"
    rule = "message content rejected before sending"

    def __init__(self, message: str, *, rule_name: str | None = None) -> None:
        super().__init__(message)
        #: Machine-friendly name of the broken rule, e.g. ``"text_bytes"``.
        self.rule_name = rule_name

    def __str__(self) -> str:
        return self.message


class HttpDeliveryError(Exception):
    """A vendor (sub-app) HTTP delivery answered with a non-2xx status.

    Not a Graph error: it lives here so that :class:`~orchestrator.graph.retry.RetryPolicy`
    can judge vendor deliveries with the same rules (5xx/408/429 retry, other 4xx give up).
    ``status=0`` means no HTTP answer at all (connection refused, timeout): retried too.
    """

    def __init__(self, status: int, message: str = "", *, retry_after: float | None = None):
        message = redact(message)
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"HTTP {self.status}" + (f": {self.message}" if self.message else "")


# --- classification -------------------------------------------------------------------------

# 80000-80014 are Graph's business-use-case throttles (80002 Instagram, 80004 ads,
# 80006 Messenger, ...); docs/platform.md names 80002 and 80004, the rest are the same family.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
WINDOW_SUBCODES = frozenset({2534022, 2018278, 2018065})
WINDOW_CODES = frozenset({1545041})
NOT_OWNER_SUBCODES = frozenset({2534037})
NOT_OWNER_ANY = frozenset({2534014})
TAKE_UNSUPPORTED_ANY = frozenset({2534123})
TAKE_UNSUPPORTED_CODES = frozenset({27})
PRIVATE_REPLY_USED_ANY = frozenset({2534025})
RECIPIENT_CODES = frozenset({551})
RECIPIENT_SUBCODES = frozenset({2018108})
# 102 is Graph's older "session key invalid": the same cure as 190.
TOKEN_CODES = frozenset({190, 102})
TRANSIENT_CODES = frozenset({1, 2})
INVALID_FORM_SUBCODE = 2018382  # 1/2018382: invalid instant-form id, not transient


def as_int(value: Any) -> int | None:
    """Meta sends ids and codes as numbers or strings; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _parse_body(body: Any) -> tuple[dict[str, Any] | None, str]:
    """Return (Meta's ``error`` object or None, a short text for bodies that are not JSON)."""
    if isinstance(body, bytes | bytearray):
        body = bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, str):
        text = body.strip()
        try:
            body = json.loads(text) if text else None
        except ValueError:
            return None, text[:200]
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return dict(error), ""
        if isinstance(error, str):  # some proxies answer {"error": "text"}
            return None, error[:200]
    return None, ""


def _pick_class(status: int | None, code: int | None, subcode: int | None) -> type[GraphError]:
    both = {code, subcode} - {None}
    if code in RATE_LIMIT_CODES:
        return RateLimited
    if subcode in NOT_OWNER_SUBCODES or both & NOT_OWNER_ANY:
        return NotThreadOwner
    if code in TAKE_UNSUPPORTED_CODES or both & TAKE_UNSUPPORTED_ANY:
        return TakeNotSupported
    if both & PRIVATE_REPLY_USED_ANY:
        return PrivateReplyUsed
    if code in RECIPIENT_CODES or subcode in RECIPIENT_SUBCODES:
        return RecipientUnavailable
    if subcode in WINDOW_SUBCODES or both & WINDOW_CODES:
        return WindowClosed
    if code in TOKEN_CODES:
        return InvalidToken
    if code == 10 or (code is not None and 200 <= code <= 299):
        return PermissionDenied
    if code in TRANSIENT_CODES:
        return InvalidParameter if subcode == INVALID_FORM_SUBCODE else TransientError
    if code == 100:
        return InvalidParameter
    if code is None and subcode is None:
        if status is not None and status >= 500:
            return TransientError
        if status == 429:
            return RateLimited
    return UnknownGraphError


def classify(
    status: int | None,
    body: Any,
    headers: Mapping[str, str] | None = None,
) -> GraphError:
    """Map an HTTP status and Meta's error body (dict, str or bytes) to a typed error."""
    error, text = _parse_body(body)
    code = subcode = None
    message = text
    error_type = fbtrace_id = None
    if error is not None:
        code = as_int(error.get("code"))
        subcode = as_int(error.get("error_subcode"))
        message = str(error.get("message") or error.get("error_user_msg") or "")
        error_type = str(error["type"]) if error.get("type") is not None else None
        fbtrace_id = str(error["fbtrace_id"]) if error.get("fbtrace_id") is not None else None
    if not message and status is not None:
        message = f"HTTP {status} without a Graph error body"
    cls = _pick_class(status, code, subcode)
    fields: dict[str, Any] = {
        "code": code,
        "subcode": subcode,
        "fbtrace_id": fbtrace_id,
        "http_status": status,
        "error_type": error_type,
    }
    if cls is RateLimited:
        return RateLimited(message, retry_after=retry_after_from_headers(headers), **fields)
    return cls(message, **fields)


# --- throttling headers ---------------------------------------------------------------------

_USAGE_HEADERS = (
    "x-business-use-case-usage",
    "x-app-usage",
    "x-page-usage",
    "x-ad-account-usage",
)


def _regain_minutes(value: Any) -> list[float]:
    """Every ``estimated_time_to_regain_access`` (minutes) found anywhere in a usage header."""
    found: list[float] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "estimated_time_to_regain_access":
                if isinstance(item, int | float) and not isinstance(item, bool):
                    found.append(float(item))
                elif isinstance(item, str):
                    try:
                        found.append(float(item))
                    except ValueError:
                        pass
            else:
                found.extend(_regain_minutes(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_regain_minutes(item))
    return found


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait before Meta lets us in again, or None when no header says.

    Reads ``estimated_time_to_regain_access`` (minutes) from ``X-Business-Use-Case-Usage``
    (``{"<id>": [{..., "estimated_time_to_regain_access": 5}]}``), ``X-App-Usage`` and the
    other usage headers, and a plain ``Retry-After`` in seconds. The largest value wins;
    malformed headers are ignored.
    """
    if not headers:
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    seconds: list[float] = []
    for name in _USAGE_HEADERS:
        raw = lowered.get(name)
        if not raw:
            continue
        try:
            parsed = json.loads(raw)
        except (TypeError, ValueError):
            continue
        seconds.extend(minutes * 60.0 for minutes in _regain_minutes(parsed))
    raw_retry = lowered.get("retry-after")
    if raw_retry:
        try:
            seconds.append(float(raw_retry))
        except ValueError:
            pass  # an HTTP-date: rare for Meta, and the policy has its own floor
    positive = [s for s in seconds if s > 0]
    return max(positive) if positive else None
