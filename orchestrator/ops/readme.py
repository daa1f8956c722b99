"""Keeps the README's generated sections (diagram, transition table, the scenario language's
reference and trigger steps) equal to the code.

`python -m orchestrator.ops.readme` rewrites them; a test fails when they drift.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from orchestrator.sandbox.scenario_coverage import trigger_table
from orchestrator.sandbox.scenario_reference import reference
from state_machines.diagram import markdown_table, mermaid

README = Path(__file__).resolve().parents[2] / "README.md"


def sections() -> dict[str, str]:
    return {
        "diagram": f"```mermaid\n{mermaid().strip()}\n```",
        "table": f"<details><summary>The full transition table</summary>\n\n"
        f"{markdown_table().strip()}\n\n</details>",
        "scenario-reference": reference(),
        "scenario-triggers": trigger_table(),
    }


def render(text: str) -> str:
    for name, body in sections().items():
        pattern = re.compile(
            rf"(<!-- generated: {name} -->\n).*?(<!-- /generated: {name} -->)", re.DOTALL
        )
        text = pattern.sub(_replacer(body), text)
    return text


def write_section(path: Path, name: str, body: str) -> None:
    """Replace one generated section (e.g. the scenario coverage matrix, made by a run)."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(
        rf"(<!-- generated: {name} -->\n).*?(<!-- /generated: {name} -->)", re.DOTALL
    )
    path.write_text(pattern.sub(_replacer(body.strip()), text), encoding="utf-8")


def section(text: str, name: str) -> str | None:
    """The body of one generated section, or None when the README has none of that name."""
    match = re.search(
        rf"<!-- generated: {name} -->\n(.*?)\n<!-- /generated: {name} -->", text, re.DOTALL
    )
    return match.group(1) if match else None


def _replacer(body: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"{m.group(1)}{body}\n{m.group(2)}"


def main() -> int:
    text = README.read_text(encoding="utf-8")
    README.write_text(render(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
