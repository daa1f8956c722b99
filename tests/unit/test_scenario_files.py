"""Scenario files are checked whole when they load: every silent false pass QA met is now a
load-time error naming the file, the step, the key path and a suggestion."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from orchestrator.cli import main as cli_main
from orchestrator.ops.readme import README, section
from orchestrator.sandbox.scenario_checks import CHECKS
from orchestrator.sandbox.scenario_coverage import TRIGGER_STEPS, matrix, unmapped
from orchestrator.sandbox.scenario_files import ScenarioError, load
from orchestrator.sandbox.scenario_reference import reference
from orchestrator.sandbox.scenario_report import junit, render
from orchestrator.sandbox.scenario_runner import ScenarioResult, StepResult
from orchestrator.sandbox.scenario_schema import EXPECTATIONS, STEPS
from state_machines import TRIGGER_NAMES


def _load_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load(path)
    return str(info.value)


def test_expects_typo_is_an_error_not_a_step_without_checks(tmp_path: Path) -> None:
    error = _load_error(tmp_path, "steps:\n  - say: Hallo\n    expects: {state: human}\n")
    assert error == f"{tmp_path / 's.yaml'}: step 1: expects: unknown key; did you mean 'expect'?"


def test_unknown_key_in_a_received_item_is_an_error(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path, "steps:\n  - say: Hallo\n    expect:\n      received: [{txt: Hallo}]\n"
    )
    assert "step 1: expect.received[0].txt: unknown key; did you mean 'text'?" in error


def test_sender_and_quick_replies_are_checked_values_not_ignored_keys(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path,
        "steps:\n  - say: Hallo\n    expect:\n"
        "      received: [{sender: bott, quick_replies: [{titel: x}]}]\n",
    )
    assert "step 1: expect.received[0].sender: unknown sender 'bott'; did you mean 'bot'?" in error
    assert "expect.received[0].quick_replies[0].titel: unknown key; did you mean 'title'?" in error


def test_say_quickreply_typo_is_an_error(tmp_path: Path) -> None:
    error = _load_error(tmp_path, "steps:\n  - say: {text: Ja, quickreply: TALK_TO_HUMAN}\n")
    assert "step 1: say.quickreply: unknown key; did you mean 'quick_reply'?" in error


def test_deliveries_to_an_unknown_app_is_an_error(tmp_path: Path) -> None:
    error = _load_error(tmp_path, "steps:\n  - say: Hallo\n    expect: {deliveries: {bott: []}}\n")
    assert "step 1: expect.deliveries.bott: unknown app 'bott'; did you mean 'bot'?" in error


def test_unknown_expectation_is_caught_at_load_with_its_step(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path,
        "steps:\n  - say: Hallo\n  - advance: 1m\n    expect: {stat: bot}\n",
    )
    assert "step 2: expect.stat: unknown key; did you mean 'state'?" in error


def test_every_mistake_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path,
        "nme: x\nsteps:\n  - shout: hi\n  - advance: soon\n  - unsend: iban\n"
        "  - act: {app: support, target: bot}\n",
    )
    lines = error.split("\n")
    assert any(line.endswith("nme: unknown key; did you mean 'name'?") for line in lines)
    assert any("step 1: shout: unknown key" in line for line in lines)
    assert any("step 2: advance: expected a duration" in line for line in lines)
    assert any("step 3: unsend: unknown message reference 'iban'" in line for line in lines)
    assert any(
        "step 4: act.target: unknown key; did you mean 'target_app'?" in line for line in lines
    )


def test_a_message_name_must_be_given_before_it_is_used(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path, "steps:\n  - unsend: iban\n  - say: IBAN DE89\n    as: iban\n  - unsend: ibn\n"
    )
    assert "step 1: unsend: unknown message reference 'iban'" in error
    assert "step 3: unsend: unknown message reference 'ibn'" in error and "'iban'?" in error
    ok = tmp_path / "ok.yaml"
    ok.write_text("steps:\n  - say: IBAN DE89\n    as: iban\n  - unsend: iban\n", encoding="utf-8")
    assert load(ok)["steps"][1] == {"unsend": "iban"}


def test_config_override_typos_are_errors(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path, "config: {handover: {pending_timout: 5m}}\nsteps:\n  - say: Hallo\n"
    )
    assert (
        "config.handover.pending_timout: unknown config key; did you mean 'pending_timeout'?"
        in error
    )


def test_act_only_expectations_and_names_need_the_right_step(tmp_path: Path) -> None:
    error = _load_error(
        tmp_path,
        "steps:\n  - say: Hallo\n    expect: {refused: null, status: 200}\n"
        "  - burst: [a, b]\n    as: both\n",
    )
    assert "step 1: expect.refused: only an act step has a refusal" in error
    assert "step 1: expect.status: only an act step has an HTTP status" in error
    assert "step 2: as: a burst step produces no message to name" in error


def test_apps_of_the_scenarios_own_config_are_the_known_apps(tmp_path: Path) -> None:
    apps = (
        "config:\n  apps:\n"
        '    - {name: bot, app_id: "1111111111", role: primary, kind: bot, '
        'handler: "apps.faq_bot:FaqBot", app_secret: "${BOT_APP_SECRET}", '
        'verify_token: "${BOT_VERIFY_TOKEN}", page_token: "${BOT_PAGE_TOKEN}"}\n'
    )
    error = _load_error(tmp_path, apps + "steps:\n  - act: {app: support, type: accept}\n")
    assert "step 1: act.app: unknown app 'support'" in error


def test_every_expectation_has_a_check_and_every_step_a_reference_entry() -> None:
    assert set(CHECKS) == set(EXPECTATIONS)
    text = reference()
    for name in (*STEPS, *EXPECTATIONS):
        assert f"- `{name}` — " in text


def test_every_trigger_names_the_step_that_produces_it() -> None:
    assert unmapped() == []
    assert set(TRIGGER_STEPS) == set(TRIGGER_NAMES)


def test_readme_has_the_generated_scenario_sections() -> None:
    text = README.read_text(encoding="utf-8")
    assert section(text, "scenario-reference") == reference()
    for name in ("scenario-triggers", "scenario-coverage"):
        assert section(text, name), f"README lacks the generated section {name}"


def test_coverage_matrix_counts_pairs() -> None:
    text = matrix({("bot", "customer_message"), ("human", "timer:human_idle")})
    assert text.startswith(f"2 of {len(TRIGGER_NAMES) * 3} (state, trigger) pairs")
    assert "| `customer_message` | ✓ | · | · |" in text


def test_shipped_scenarios_all_pass_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["scenarios", "check", "tests/scenarios"]) == 0
    assert "file(s) OK" in capsys.readouterr().out


def test_check_command_fails_on_a_wrong_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - say: Hallo\n    expects: {state: bot}\n", encoding="utf-8")
    assert cli_main(["scenarios", "check", str(bad)]) == 1
    assert "did you mean 'expect'?" in capsys.readouterr().out


def _result() -> ScenarioResult:
    r = ScenarioResult(name="demo", path="tests/scenarios/99_demo.yaml", total_steps=4)
    r.steps = [
        StepResult(1, "say", "say Hallo", "the customer greets", True),
        StepResult(
            2, "act", "act {}", None, True, outcome="refused not_owner (HTTP 409): not yours"
        ),
        StepResult(
            3,
            "act",
            'act {"app": "support", "text": "' + "x" * 90 + '"}',
            None,
            False,
            ["state: expected 'human', actual 'bot'", "received: expected 1 message(s), actual 0"],
            ["state bot, our owner none (idle), Meta's owner bot"],
        ),
    ]
    return r


def test_listing_shows_the_action_in_full_and_the_note() -> None:
    text = render(_result())
    assert "say Hallo" in text and "· the customer greets" in text
    assert "x" * 90 in text  # never cut
    assert "✗ state: expected 'human', actual 'bot'" in text
    assert "✗ received: expected 1 message(s), actual 0" in text
    assert "→ refused not_owner (HTTP 409): not yours" in text  # shown although it passed
    assert "after step 3:" in text and "1 later step(s) not run" in text


def test_junit_has_a_case_per_step_with_failures_and_skips(tmp_path: Path) -> None:
    out = tmp_path / "junit.xml"
    junit([_result()], out)
    root = ET.parse(out).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("4", "1", "1")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == "state: expected 'human', actual 'bot'"
    assert "Meta's owner bot" in (failure.text or "")


def test_received_details_name_the_field_that_differs() -> None:
    from orchestrator.sandbox.scenario_checks import _received_item

    msg = {
        "text": None,
        "app_name": "Instagram Inbox",
        "tag": "HUMAN_AGENT",
        "attachments": [{"type": "file", "payload": {"url": "https://x/a.pdf"}}],
        "quick_replies": [{"content_type": "text", "title": "Ja", "payload": "YES"}],
    }
    assert (
        _received_item(
            {
                "sender": "instagram_inbox",
                "tag": "HUMAN_AGENT",
                "attachments": [{"type": "file", "url": "https://x/a.pdf"}],
                "quick_replies": [{"title": "Ja", "payload": "YES"}],
            },
            msg,
        )
        == []
    )
    assert _received_item(
        {"sender": "support", "tag": None, "attachments": ["image"], "quick_replies": ["NO"]}, msg
    ) == [
        "tag none ≠ HUMAN_AGENT",
        "sender support ≠ instagram_inbox",
        "quick replies ['NO'] ≠ [{'title': 'Ja', 'payload': 'YES'}]",
        "attachments ['image'] ≠ ['file']",
    ]
