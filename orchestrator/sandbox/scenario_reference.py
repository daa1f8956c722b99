"""The scenario language's reference, generated from the schema that checks the files: printed
by `orchestrator scenarios reference` and kept in the README (a test keeps both equal)."""

from __future__ import annotations

from orchestrator.sandbox.scenario_kinds import AnyOf, Fields, Kind, ListOf, MapOf
from orchestrator.sandbox.scenario_schema import (
    EXPECTATIONS,
    FILE_KEYS,
    STEP_KEYS,
    STEPS,
)


def _fields(kind: Kind) -> list[Fields]:
    if isinstance(kind, Fields):
        return [kind]
    if isinstance(kind, AnyOf):
        return [f for k in kind.kinds for f in _fields(k)]
    if isinstance(kind, ListOf):
        return _fields(kind.item)
    if isinstance(kind, MapOf):
        return _fields(kind.value)
    return []


def _keys(kind: Kind) -> str:
    parts = []
    for fields in _fields(kind):
        for name, f in fields.fields.items():
            doc = f" — {f.doc}" if f.doc else ""
            req = " (required)" if f.required else ""
            parts.append(f"`{name}`{req}{doc}")
    return "; ".join(parts)


def reference() -> str:
    out = [
        "A scenario file has the keys "
        + ", ".join(f"`{k}` ({v})" for k, v in FILE_KEYS.items())
        + ". Each step has exactly one of the steps below, plus optional "
        + ", ".join(f"`{k}` ({v})" for k, v in STEP_KEYS.items())
        + ". Files are checked whole before anything runs: an unknown key anywhere, a wrong "
        "value, an app or message name that does not exist are errors naming the file, the "
        "step number and the key path, with a suggestion (`orchestrator scenarios check`).",
        "",
        "**Steps**",
        "",
    ]
    for s in STEPS.values():
        keys = _keys(s.kind)
        line = f"- `{s.name}` — {s.doc} Value: {s.kind.label}."
        if keys:
            line += f" Keys: {keys}."
        if s.names:
            line += f" `as:` names {s.names}."
        line += f" Example: `{s.example}`"
        out.append(line)
    out += [
        "",
        "**Expectations** (under `expect:`; each compares what happened *during the step*, "
        "unless it says otherwise; a failing step lists every difference, then a snapshot)",
        "",
    ]
    for e in EXPECTATIONS.values():
        keys = _keys(e.kind)
        line = f"- `{e.name}` — {e.doc} Value: {e.kind.label}."
        if keys:
            line += f" Keys: {keys}."
        line += f" Example: `{e.example}`"
        out.append(line)
    return "\n".join(out)
