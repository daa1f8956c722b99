"""Every QA scenario under tests/scenarios runs inside `make test`, each in a fresh database."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sandbox.scenarios import discover, render, run_file
from tests.conftest import ROOT

SCENARIOS = discover([str(ROOT / "tests" / "scenarios")])


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario(path: Path, db_url: str) -> None:
    result = await run_file(path, db_url)
    assert result.ok, f"{result.first_failure}\n{render(result)}"


def test_enough_scenarios_ship() -> None:
    assert len(SCENARIOS) >= 20


async def test_wrong_scenario_fails_naming_step_expected_and_actual(
    tmp_path: Path, db_url: str
) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "name: deliberately wrong\n"
        "steps:\n"
        "  - say: Hallo\n"
        "    expect: {state: bot}\n"
        "  - say: Ich möchte mit einem Menschen sprechen\n"
        "    expect: {state: human}\n",
        encoding="utf-8",
    )
    result = await run_file(wrong, db_url)
    assert not result.ok
    assert (
        result.first_failure
        == "step 2 (say Ich möchte mit einem Menschen sprechen): expected state 'human', actual 'pending_human'"
    )
    assert "ERR" in render(result)


async def test_malformed_scenario_is_reported_as_such(tmp_path: Path, db_url: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - shout: hello\n", encoding="utf-8")
    result = await run_file(bad, db_url)
    assert not result.ok and "step 1 needs exactly one of" in (result.error or "")
