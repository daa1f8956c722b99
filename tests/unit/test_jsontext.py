"""orchestrator/jsontext.py gives the standard library's JSON value, faster: for every JSON
value hypothesis finds (huge integers, lone surrogates, odd keys and objects included)."""

from __future__ import annotations

import dataclasses
import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.jsontext import dumps, loads

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # beyond 64 bits too: orjson refuses them, the fallback writes them
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # lone surrogates included
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@dataclasses.dataclass
class _Shape:
    x: int


odd = st.sampled_from(
    [
        datetime(2026, 12, 3, 16, 15, 21, 744839, tzinfo=UTC),
        Decimal("1.10"),
        _Shape(1),
        {1, 2},
        b"bytes",
    ]
)


def _same(a: Any, b: Any) -> bool:
    return json.loads(a) == json.loads(b) if a != b else True


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_dumps_writes_the_standard_librarys_value(value: Any) -> None:
    assert _same(dumps(value), json.dumps(value, default=str))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text() | st.integers(-5, 5) | st.booleans(), odd | scalars, max_size=4))
def test_dumps_writes_odd_objects_and_keys_as_the_standard_library_does(value: Any) -> None:
    # datetimes and dataclasses through str (orjson would write its own format), other
    # objects through str, non-string keys as strings.
    assert _same(dumps(value), json.dumps(value, default=str))


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_loads_reads_the_standard_librarys_value(value: Any) -> None:
    text = json.dumps(value)
    assert loads(text) == json.loads(text)
    # as PostgreSQL's jsonb gives it back: spaces after separators, UTF-8
    spaced = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    assert loads(spaced) == json.loads(spaced)


def test_large_integers_keep_every_digit() -> None:
    for text in (
        '{"a": 123456789012345678901234567890}',
        "[18446744073709551616]",
        "-1" + "0" * 25,
    ):
        value = loads(text)
        assert value == json.loads(text)
        assert not isinstance(value, float)
    assert loads('{"id": "17841400000000001", "t": 1764777321000}') == {
        "id": "17841400000000001",
        "t": 1764777321000,
    }


def test_not_json_is_refused_as_the_standard_library_does() -> None:
    for text in ["{", '{"a": 1,}', ""]:
        try:
            json.loads(text)
        except ValueError:
            pass
        else:  # pragma: no cover - all of these are refused
            raise AssertionError(text)
        try:
            loads(text)
        except ValueError:
            continue
        raise AssertionError(f"{text!r} was accepted")


def test_nan_is_written_as_null_the_one_documented_difference() -> None:
    assert loads(dumps({"x": math.nan, "y": math.inf})) == {"x": None, "y": None}
