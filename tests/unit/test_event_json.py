"""`event_from_json` is the exact inverse of `Event.to_json()` for every event kind: a stored
typed event comes back equal, through a JSON text round trip too, and bad input is refused."""

from __future__ import annotations

import json
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.ingress import events as ev
from orchestrator.ingress.events import Event, EventKind, EventSource, event_from_json
from orchestrator.ingress.parser import parse_body

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "webhooks"

EVENT_CLASSES: list[type[Event]] = [
    cls
    for cls in vars(ev).values()
    if isinstance(cls, type) and issubclass(cls, Event) and cls is not Event
]

# What Meta can put in `raw`: decoded JSON (finite floats only; the decoder refuses NaN).
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def strategy_for(hint: Any) -> st.SearchStrategy[Any]:
    """A strategy for one field's type hint, built from the hint itself so new fields and new
    event classes are covered without touching this test."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy_for(a) for a in args))
    if hint is type(None):
        return st.none()
    if hint is str:
        return st.text(max_size=30)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(0, 253_402_300_799_999)
    if origin is tuple:
        return st.lists(strategy_for(args[0]), max_size=3).map(tuple)
    if origin is dict and args == (str, Any):
        return json_objects
    if origin is dict:
        return st.dictionaries(strategy_for(args[0]), strategy_for(args[1]), max_size=3)
    if hint in (ev.Attachment, ev.Referral):
        return dataclass_strategy(hint)
    raise AssertionError(f"no strategy for {hint!r}: extend strategy_for")


def dataclass_strategy(cls: type, **fixed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    parts = {f.name: fixed.get(f.name, strategy_for(hints[f.name])) for f in fields(cls) if f.init}
    return st.fixed_dictionaries(parts).map(lambda kw: cls(**kw))


def build_valid(cls: type[Event]) -> st.SearchStrategy[Event]:
    """Events of `cls` that pass its invariants (e.g. `is_echo` matches the kind)."""
    hints = typing.get_type_hints(cls)

    @st.composite
    def draw(data: st.DrawFn) -> Event:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "kind":
                values["kind"] = data(st.sampled_from(sorted(cls.KINDS)))
            elif f.name == "source":
                values["source"] = data(st.sampled_from(list(EventSource)))
            else:
                values[f.name] = data(strategy_for(hints[f.name]))
        repair(cls, values)
        return cls(**values)

    return draw()


def repair(cls: type[Event], values: dict[str, Any]) -> None:
    """Make drawn values satisfy the class's documented invariants."""
    if "is_echo" in values:
        values["is_echo"] = values["kind"] == EventKind.MESSAGE_ECHO
    if "text_known" in values:
        values["text_known"] = values.get("text") is not None


ANY_EVENT = st.one_of(*(build_valid(cls) for cls in EVENT_CLASSES))


def test_every_kind_has_a_class_under_test() -> None:
    assert {k for cls in EVENT_CLASSES for k in cls.KINDS} == set(EventKind)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_EVENT)
def test_from_json_inverts_to_json(event: Event) -> None:
    assert event_from_json(event.to_json()) == event


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_EVENT)
def test_round_trip_through_json_text_keeps_the_event_and_its_type(event: Event) -> None:
    text = json.dumps(event.to_json(), allow_nan=False)

    back = event_from_json(json.loads(text))

    assert back == event and type(back) is type(event)
    assert back.to_json() == event.to_json()


@pytest.mark.parametrize("path", sorted(FIXTURES.rglob("*.json")), ids=lambda p: p.stem)
def test_every_parsed_fixture_event_round_trips(path: Path) -> None:
    for event in parse_body(path.read_bytes()).events:
        back = event_from_json(json.loads(json.dumps(event.to_json())))
        assert back == event and type(back) is type(event)
        assert back.occurred_at == event.occurred_at


def test_source_comes_back_as_the_enum() -> None:
    [event] = parse_body((FIXTURES / "message_text.json").read_bytes()).events

    back = event_from_json(event.to_json())

    assert back.source is EventSource.MESSAGING and back.kind is EventKind.MESSAGE


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(kind="telepathy"), "unknown event kind 'telepathy'"),
        (lambda d: d.update(colour="red"), "message event has no field(s) colour"),
        (lambda d: d.pop("mid"), "message event"),
        (lambda d: d.update(attachments="x"), "attachments must be an array"),
        (lambda d: d.update(attachments=[{"kind": "image"}]), "field attachments"),
        (lambda d: d.update(referral=[1]), "referral must be an object or null"),
        (lambda d: d.update(is_echo=True), "does not match is_echo"),
    ],
)
def test_invalid_json_is_refused_with_a_clear_reason(mutate: Any, message: str) -> None:
    [event] = parse_body((FIXTURES / "message_text.json").read_bytes()).events
    data = event.to_json()
    mutate(data)

    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        event_from_json(data)


def test_non_object_is_refused() -> None:
    with pytest.raises(ValueError, match="an event must be an object"):
        event_from_json([])  # type: ignore[arg-type]
