"""Value kinds of the scenario language: what a key may hold, checked when a file loads.

Each kind checks a value at a key path and reports `Problem`s (never raises), so one load
names every mistake of a file. Unknown keys and unknown choices get a "did you mean"
suggestion. `Ctx` carries what a check needs to know about the file being loaded: the app
names of its config and the message names (`as:`) defined by earlier steps.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.config import parse_duration


@dataclass(frozen=True)
class Problem:
    step: int | None  # 1-based; None for file-level keys
    path: str
    message: str

    def render(self, file: str) -> str:
        where = f"step {self.step}: " if self.step is not None else ""
        return f"{file}: {where}{self.path}: {self.message}"


@dataclass
class Ctx:
    """What the checks of one file need: its apps and the message names defined so far."""

    apps: Sequence[str] = ()
    refs: set[str] = field(default_factory=set)
    step: int | None = None
    problems: list[Problem] = field(default_factory=list)

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.step, path, message))


def suggest(word: str, options: Iterable[str]) -> str:
    """`; did you mean 'x'?` for a close match, else the list of what is allowed."""
    opts = [str(o) for o in options]
    close = difflib.get_close_matches(str(word), opts, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(opts)}" if opts else ""


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class Kind:
    """A kind of value. `types` are the Python types it accepts (used by `AnyOf`)."""

    types: tuple[type, ...] = (object,)
    label: str = "any value"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        return None

    def accepts_type(self, value: Any) -> bool:
        if isinstance(value, bool) and bool not in self.types:
            return False
        return isinstance(value, self.types)


class Open(Kind):
    label = "any value (passed through unchecked)"


class Text(Kind):
    types = (str,)
    label = "text"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if not isinstance(value, str):
            ctx.fail(path, f"expected text, got {value!r}")


class Integer(Kind):
    types = (int,)

    def __init__(self, minimum: int | None = 0) -> None:
        self.minimum = minimum
        self.label = "a whole number" if minimum is None else f"a whole number ≥ {minimum}"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            ctx.fail(path, f"expected {self.label}, got {value!r}")
        elif self.minimum is not None and value < self.minimum:
            ctx.fail(path, f"expected {self.label}, got {value}")


class Number(Kind):
    types = (int, float)
    label = "a number"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            ctx.fail(path, f"expected a number, got {value!r}")


class Boolean(Kind):
    types = (bool,)
    label = "true or false"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if not isinstance(value, bool):
            ctx.fail(path, f"expected true or false, got {value!r}")


class Null(Kind):
    types = (type(None),)
    label = "null"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if value is not None:
            ctx.fail(path, f"expected null, got {value!r}")


class Choice(Kind):
    types = (str,)

    def __init__(self, *values: str) -> None:
        self.values = values
        self.label = " | ".join(values)

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if value not in self.values:
            ctx.fail(path, f"unknown value {value!r}{suggest(str(value), self.values)}")


class DynamicChoice(Kind):
    """A choice whose values depend on the file (its apps, its message names)."""

    types = (str,)

    def __init__(self, label: str, values: Callable[[Ctx], Sequence[str]], what: str) -> None:
        self.label = label
        self.values = values
        self.what = what

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        options = list(self.values(ctx))
        if not isinstance(value, str):
            ctx.fail(path, f"expected {self.label}, got {value!r}")
        elif value not in options:
            ctx.fail(path, f"unknown {self.what} {value!r}{suggest(value, options)}")


class Duration(Kind):
    types = (str, int, float)
    label = "a duration (90s, 10m, 25h, 7d, or compound: 23h59m, 6d23h59m)"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        try:
            duration_seconds(value)
        except ValueError as exc:
            ctx.fail(path, str(exc))


class Mid(Kind):
    """A message reference: last_received, last_sent, or a name given with `as:` earlier."""

    types = (str,)
    label = "a message reference (last_received, last_sent, or a name given with `as:`)"
    KEYWORDS = ("last_received", "last_sent")

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if not isinstance(value, str):
            ctx.fail(path, f"expected {self.label}, got {value!r}")
            return
        if value in self.KEYWORDS or value in ctx.refs:
            return
        options = [*self.KEYWORDS, *sorted(ctx.refs)]
        ctx.fail(
            path,
            f"unknown message reference {value!r} (no earlier step names a message so with "
            f"`as:`){suggest(value, options)}",
        )


class ListOf(Kind):
    types = (list,)

    def __init__(self, item: Kind, *, nonempty: bool = False) -> None:
        self.item = item
        self.nonempty = nonempty
        self.label = f"a list of {item.label}"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if not isinstance(value, list):
            ctx.fail(path, f"expected {self.label}, got {value!r}")
            return
        if self.nonempty and not value:
            ctx.fail(path, "expected at least one item")
        for i, item in enumerate(value):
            self.item.check(item, join(path, i), ctx)


class MapOf(Kind):
    types = (dict,)

    def __init__(self, key: Kind, value: Kind) -> None:
        self.key = key
        self.value = value
        self.label = f"a mapping of {key.label} to {value.label}"

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if not isinstance(value, Mapping):
            ctx.fail(path, f"expected {self.label}, got {value!r}")
            return
        for k, v in value.items():
            self.key.check(k, join(path, str(k)), ctx)
            self.value.check(v, join(path, str(k)), ctx)


@dataclass(frozen=True)
class Field:
    kind: Kind
    doc: str = ""
    required: bool = False


class Fields(Kind):
    """A mapping with a fixed set of keys; unknown keys are errors with a suggestion."""

    types = (dict,)

    def __init__(self, label: str, **fields: Field) -> None:
        self.fields = fields
        self.label = label

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        if not isinstance(value, Mapping):
            ctx.fail(path, f"expected {self.label}, got {value!r}")
            return
        for key, item in value.items():
            spec = self.fields.get(str(key))
            if spec is None:
                ctx.fail(join(path, str(key)), f"unknown key{suggest(str(key), self.fields)}")
            else:
                spec.kind.check(item, join(path, str(key)), ctx)
        for name, spec in self.fields.items():
            if spec.required and name not in value:
                ctx.fail(join(path, name), "is required")


class AnyOf(Kind):
    """One of several kinds, chosen by the value's type (text, number, list, mapping)."""

    def __init__(self, *kinds: Kind, label: str | None = None) -> None:
        self.kinds = kinds
        self.types = tuple(t for k in kinds for t in k.types)
        self.label = label or " or ".join(k.label for k in kinds)

    def check(self, value: Any, path: str, ctx: Ctx) -> None:
        candidates = [k for k in self.kinds if k.accepts_type(value)]
        if len(candidates) == 1:
            candidates[0].check(value, path, ctx)
            return
        for kind in candidates:  # several kinds take this type: the value must fit one
            scratch = Ctx(ctx.apps, ctx.refs, ctx.step)
            kind.check(value, path, scratch)
            if not scratch.problems:
                return
        ctx.fail(path, f"expected {self.label}, got {value!r}")


def duration_seconds(value: Any) -> float:
    """Seconds of a duration: `25h`, `10m`, a number of seconds, or compound `23h59m`."""
    import re

    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a duration such as 10m or 23h59m, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return float(value)
    text = str(value).replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    try:
        if len(parts) > 1 and "".join(n + u for n, u in parts) == text:
            return sum(parse_duration(n + u).total_seconds() for n, u in parts)
        return float(parse_duration(value).total_seconds())
    except ValueError:
        raise ValueError(
            f"expected a duration such as 90s, 10m, 25h, 7d or 23h59m, got {value!r}"
        ) from None
