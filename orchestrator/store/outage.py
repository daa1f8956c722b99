"""Which database errors mean "the store is unavailable" (answer 503, the sender retries)
and which do not (content or a bug: retrying the same bytes would fail forever).

Only the first kind may ever turn a webhook into a 503: Meta retries a 503 for an hour and
then unsubscribes the app, so a 503 for content would cost a business its subscription.
"""

from __future__ import annotations

import asyncio

import asyncpg

# SQLSTATE classes that say nothing about the content: the connection (08), resources (53),
# operator intervention / shutdown (57), system I/O (58), transaction rollback such as
# deadlock or serialization (40), and a read-only standby after a failover (25006),
# lock timeouts (55P03).
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_TRANSIENT_STATES = ("25006", "55P03", "55006")


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be used right now (not what we sent)."""
    if isinstance(
        exc,
        OSError
        | ConnectionError
        | asyncio.TimeoutError
        | asyncpg.InterfaceError
        | asyncpg.InternalClientError
        | asyncpg.PostgresConnectionError,
    ):
        # InternalClientError/InterfaceError: asyncpg's own state broke as the server went
        # away (e.g. "connection was closed in the middle of operation").
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = str(getattr(exc, "sqlstate", "") or "")
        return state.startswith(_TRANSIENT_CLASSES) or state in _TRANSIENT_STATES
    return False


def describe(exc: BaseException) -> str:
    """A log-safe description: the error class and SQLSTATE, never the message (PostgreSQL
    messages quote the offending value, which may be customer content)."""
    state = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}" + (f" (SQLSTATE {state})" if state else "")
