"""The README's diagram and transition table are generated from the machine: never stale."""

from orchestrator.ops.readme import README, render


def test_readme_generated_sections_match_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, (
        "README is stale: run `.venv/bin/python -m orchestrator.ops.readme`"
    )
