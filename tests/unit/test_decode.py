"""The lenient webhook decoder: any JSON text becomes a value PostgreSQL can store, and every
change is named (property-based)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.ingress.decode import MalformedJSON, decode_webhook, storable

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def postgres_safe(value: Any) -> bool:
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    text.encode("utf-8")  # raises on lone surrogates
    return "\\u0000" not in text.replace("\\\\", "")


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_text_decodes_to_a_storable_value(value: Any) -> None:
    for raw in (
        json.dumps(value).encode(),
        json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"),
    ):
        try:
            decoded = decode_webhook(raw)
        except MalformedJSON:
            # Only bytes that are not UTF-8 (lone surrogates written raw) may refuse.
            assert b"\xed" in raw
            continue
        assert postgres_safe(decoded.value)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_storable_changes_nothing_that_was_already_safe(value: Any) -> None:
    try:
        safe_before = postgres_safe(value)
    except UnicodeEncodeError:
        safe_before = False
    copy = json.loads(json.dumps(value))
    result, changed = storable(copy)
    assert postgres_safe(result)
    if safe_before:
        assert changed == 0 and result == value


@pytest.mark.parametrize(
    ("raw", "expected", "problem"),
    [
        (b'{"a": 1e400}', {"a": "1e400"}, "beyond double range"),
        (b'{"a": "x\\u0000y"}', {"a": "x\\u0000y"}, "escaped"),
        (b'{"a\\u0000": "\\ud800"}', {"a\\u0000": "\\ud800"}, "escaped"),
        (b'{"a": ' + b"7" * 4301 + b"}", {"a": "7" * 4301}, "4301 digits"),
    ],
)
def test_unstorable_values_are_kept_as_text_and_named(
    raw: bytes, expected: Any, problem: str
) -> None:
    decoded = decode_webhook(raw)
    assert decoded.value == expected
    assert any(problem in p for p in decoded.problems)


@pytest.mark.parametrize("raw", [b"[" * 100_000, b"{", b"\xff", b"NaN", b""])
def test_bytes_that_are_not_json_still_raise(raw: bytes) -> None:
    with pytest.raises(MalformedJSON):
        decode_webhook(raw)


def test_deep_nesting_is_made_safe_without_recursion() -> None:
    value: Any = "\u0000"
    for _ in range(50_000):
        value = [value]
    result, changed = storable(value)
    assert changed == 1
    for _ in range(50_000):
        result = result[0]
    assert result == "\\u0000"
