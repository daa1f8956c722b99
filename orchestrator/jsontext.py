"""JSON text for the hot path: orjson where it gives the same value, the standard library
where it would not.

Why: every customer message is turned into JSON about ten times on its way through (the
event's payload, the conversation view, three outbox rows, results, two log lines) and read
back a few times from jsonb columns; with the standard library that was ~7 % of the
service's CPU per reply, orjson (Rust) does the same in a tenth of the time.

Same value, by construction:
- `dumps` keeps `json.dumps(value, default=str)`'s output for what orjson would write
  differently (datetimes and dataclasses go through `str`, as before; non-string keys become
  strings) and falls back to the standard library for anything orjson refuses (integers
  over 64 bits, lone surrogates), so a value that failed before fails the same way.
  Non-ASCII text is written as UTF-8 instead of `\\u` escapes: the same JSON value. One
  difference: NaN and infinities become `null` where the standard library wrote `NaN`, which
  is not JSON and which PostgreSQL refused; none of our values holds one (webhook decoding
  refuses them, tests/unit/test_jsontext.py).
- `loads` falls back to the standard library when the text may hold an integer of 19 or
  more digits (orjson would read one beyond 64 bits as a float and lose digits) or is
  anything orjson refuses.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
# 19 digits in a row anywhere: a number that may not fit in 64 bits. Found by mapping every
# digit to "0" (`bytes.translate`, C speed) and looking for 19 zeros: 0.6 µs for a webhook
# item against 8-10 µs for a regular expression, which had cost more than the parse itself.
# Digit runs inside strings (ids are strings in Meta's payloads, 15-17 digits) match rarely,
# and only cost the slow path.
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * 19


def dumps(value: Any) -> str:
    """`json.dumps(value, default=str)`, fast."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS).decode()
    except TypeError:  # orjson.JSONEncodeError: > 64-bit integers, lone surrogates, depth
        return json.dumps(value, default=str)


def loads(text: str) -> Any:
    """`json.loads(text)`, fast."""
    try:
        raw = text.encode()
    except UnicodeEncodeError:  # lone surrogates: orjson refuses them, the library does not
        return json.loads(text)
    if _LONG_RUN not in raw.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
