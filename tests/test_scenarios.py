"""Every QA scenario under tests/scenarios runs inside `make test`, each in a fresh database;
the runner's own behaviour (every difference, the snapshot, --keep-going, the same refusal
for in-process and REST actions) is tested here against the real sandbox too."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.ops.readme import README, section
from orchestrator.sandbox.runner import Sandbox
from orchestrator.sandbox.scenario_coverage import matrix
from orchestrator.sandbox.scenario_files import load, scenario_config
from orchestrator.sandbox.scenarios import Runner, ScenarioResult, discover, render, run_file
from tests.conftest import ROOT

SCENARIOS = discover([str(ROOT / "tests" / "scenarios")])
_COVERED: set[tuple[str, str]] = set()
_RAN: set[str] = set()


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
async def test_scenario(path: Path, db_url: str) -> None:
    result = await run_file(path, db_url)
    _COVERED.update(result.covered)
    if result.ok:
        _RAN.add(path.stem)
    assert result.ok, f"{result.first_failure}\n{render(result)}"


def test_readme_coverage_matrix_is_what_the_scenarios_exercise() -> None:
    if _RAN != {p.stem for p in SCENARIOS}:
        pytest.skip("needs every scenario to have run and passed in this session")
    text = README.read_text(encoding="utf-8")
    assert section(text, "scenario-coverage") == matrix(_COVERED), (
        "README's coverage matrix is stale: run `.venv/bin/orchestrator scenarios coverage "
        "--readme`"
    )


def test_enough_scenarios_ship() -> None:
    assert len(SCENARIOS) >= 25


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "wrong.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_a_failing_step_lists_every_difference_then_a_snapshot(
    tmp_path: Path, db_url: str
) -> None:
    wrong = _write(
        tmp_path,
        "name: deliberately wrong\n"
        "steps:\n"
        "  - say: Hallo\n"
        "    expect: {state: bot}\n"
        "  - say: Ich möchte mit einem Menschen sprechen\n"
        "    note: escalates\n"
        "    expect:\n"
        "      state: human\n"
        "      owner: bot\n"
        "      received: [{text: 'Einen Moment bitte, ich verbinde Sie mit unserem Team.',"
        " tag: HUMAN_AGENT}]\n"
        "      deliveries: {support: [message]}\n"
        "      timers: {pending_timeout: 5m}\n"
        "  - say: not run\n",
    )
    result = await run_file(wrong, db_url)
    assert not result.ok
    step = result.steps[1]
    assert step.problems == [
        "state: expected 'human', actual 'pending_human'",
        "owner (ours): expected 'bot', actual 'support'",
        "received #1: tag HUMAN_AGENT ≠ none\n    actual: from bot: 'Einen Moment bitte, ich "
        "verbinde Sie mit unserem Team.' · tag none · type RESPONSE",
        "deliveries to support #1: message ≠ handover_requested\n"
        "    actual: support: handover_requested [messaging] (metadata='customer_request', "
        "reason='customer_request', from_app='bot')",
        "timers.pending_timeout: expected due in 5m, actual due in 10m",
    ]
    snapshot = "\n".join(step.snapshot)
    assert "state pending_human, our owner support, Meta's owner support" in snapshot
    assert "POST bot pass_thread_control → 200" in snapshot
    assert "bot: control_lost [messaging]" in snapshot
    assert "timers: control_expiry in 1d, pending_timeout in 10m" in snapshot
    text = render(result)
    assert "say Ich möchte mit einem Menschen sprechen" in text and "· escalates" in text
    assert "1 later step(s) not run" in text
    assert len(result.steps) == 2


async def test_keep_going_reports_every_failing_step(tmp_path: Path, db_url: str) -> None:
    wrong = _write(
        tmp_path,
        "steps:\n"
        "  - say: Hallo\n"
        "    expect: {received_count: 1}\n"
        "  - say: Versand?\n"
        "    expect: {state: bot}\n"
        "  - act: {app: support, text: Hallo}\n"
        "    expect: {refused: null}\n",
    )
    result = ScenarioResult(name="x", path=str(wrong))
    async with Sandbox(scenario_config(None), db_url) as sb:
        await Runner(sb, keep_going=True).run(load(wrong), result)
    assert [s.ok for s in result.steps] == [False, True, False]
    assert result.steps[2].problems[0].startswith("refused: expected None, actual 'not_owner' (")
    assert any("action: HTTP 409, refused not_owner" in line for line in result.steps[2].snapshot)


async def test_an_in_process_apps_typo_is_refused_like_the_rest_api(db_url: str) -> None:
    """`target` for `target_app`: the bot (in-process) and support (REST) get the same answer,
    so a scenario step bypassing the file check still cannot pass silently."""
    result = ScenarioResult(name="typo", path="-")
    async with Sandbox(scenario_config(None), db_url) as sb:
        runner = Runner(sb)
        await runner.run({"steps": [{"say": "Hallo"}]}, result)
        assert result.ok
        bot = await runner._act({"app": "bot", "type": "pass", "target": "support"})
        support = await runner._act({"app": "support", "type": "pass", "target": "bot"})
    assert bot.refusal == support.refusal == "invalid_action"
    assert bot.message == support.message
    assert bot.message is not None and "target" in bot.message
    assert support.status == 400


async def test_received_details_are_compared_not_ignored(tmp_path: Path, db_url: str) -> None:
    wrong = _write(
        tmp_path,
        "steps:\n"
        "  - say: Hallo\n"
        "    expect:\n"
        "      received:\n"
        "        - {sender: bot}\n"
        "        - {sender: support, quick_replies: [TALK_TO_HUMAN]}\n",
    )
    result = await run_file(wrong, db_url)
    assert result.steps[0].problems == [
        "received #2: sender support ≠ bot; quick replies ['TALK_TO_HUMAN'] ≠ []\n"
        "    actual: from bot: 'Hallo! Ich beantworte gern Fragen zu Öffnungszeiten, Versand und "
        "Rückgabe.' · tag none · type RESPONSE"
    ]


async def test_a_reference_that_cannot_be_resolved_fails_the_step(
    tmp_path: Path, db_url: str
) -> None:
    wrong = _write(tmp_path, "steps:\n  - comment: Hallo\n  - react: last_received\n")
    result = await run_file(wrong, db_url)
    assert result.steps[1].problems == [
        "the step could not be performed: last_received: the customer has not received any "
        "message yet"
    ]


async def test_malformed_scenario_is_reported_as_such(tmp_path: Path, db_url: str) -> None:
    bad = _write(tmp_path, "steps:\n  - shout: hello\n")
    result = await run_file(bad, db_url)
    assert not result.ok and "step 1: shout: unknown key" in (result.error or "")
    assert result.steps == []
