"""Keeps the README's generated sections (diagram, transition table) equal to the code.

`python -m orchestrator.ops.readme` rewrites them; a test fails when they drift.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from state_machines.diagram import markdown_table, mermaid

README = Path(__file__).resolve().parents[2] / "README.md"


def sections() -> dict[str, str]:
    return {
        "diagram": f"```mermaid\n{mermaid().strip()}\n```",
        "table": f"<details><summary>The full transition table</summary>\n\n"
        f"{markdown_table().strip()}\n\n</details>",
    }


def render(text: str) -> str:
    for name, body in sections().items():
        pattern = re.compile(
            rf"(<!-- generated: {name} -->\n).*?(<!-- /generated: {name} -->)", re.DOTALL
        )
        text = pattern.sub(_replacer(body), text)
    return text


def _replacer(body: str) -> Callable[[re.Match[str]], str]:
    return lambda m: f"{m.group(1)}{body}\n{m.group(2)}"


def main() -> int:
    text = README.read_text(encoding="utf-8")
    README.write_text(render(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
