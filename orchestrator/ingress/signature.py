"""HMAC-SHA256 signatures over raw bytes: Meta's `X-Hub-Signature-256` and our vendor header.

Always over the raw body as received, never over re-serialised JSON (Meta signs its
escaped-unicode form); compared in constant time. A header of any bytes (non-ASCII, control
characters, absurd length) is simply not a valid signature: `verify` returns False, never
raises.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="
_HEADER_LEN = len(PREFIX) + 64


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not secret:
        return False
    candidate = header.strip().lower()
    if len(candidate) != _HEADER_LEN or not candidate.isascii() or not candidate.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), candidate.encode("ascii"))
