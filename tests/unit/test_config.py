"""Config validation names the key path of every mistake and how to fix it."""

from __future__ import annotations

import pytest

from orchestrator.config import load_config, parse_duration
from orchestrator.errors import ConfigError
from tests.conftest import ROOT, TEST_ENV, config_data, make_config


def problems_of(data: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        make_config(data, env)
    return info.value.problems


def test_valid_config_loads() -> None:
    config = make_config()
    assert config.primary.name == "bot"
    assert config.app("support").kind == "human"
    assert "bot-secret" not in repr(config)  # secrets never print


def test_missing_environment_variable_names_the_key_path() -> None:
    env = {k: v for k, v in TEST_ENV.items() if k != "SUPPORT_APP_SECRET"}
    problems = problems_of(config_data(), env)
    assert (
        "apps[1].app_secret: environment variable SUPPORT_APP_SECRET is not set; export SUPPORT_APP_SECRET=<value>"
        in problems
    )


def test_literal_secret_in_the_file_is_refused() -> None:
    data = config_data()
    data["apps"][0]["app_secret"] = "hunter2"
    assert any(
        p.startswith("apps[0].app_secret: secrets are not written") for p in problems_of(data)
    )


def test_exactly_one_primary() -> None:
    data = config_data()
    data["apps"][1]["role"] = "primary"
    assert any(
        "exactly one app must have role = 'primary' (found apps[0], apps[1])" in p
        for p in problems_of(data)
    )


def test_duplicate_names_and_ids_are_reported_together() -> None:
    data = config_data()
    data["apps"][1]["name"] = "bot"
    data["apps"][1]["app_id"] = data["apps"][0]["app_id"]
    problems = problems_of(data)
    assert any(p.startswith("apps[1].name: 'bot' is already used by apps[0]") for p in problems)
    assert any(
        p.startswith("apps[1].app_id: 1111111111 is already used by apps[0]") for p in problems
    )


def test_bad_values_name_their_paths() -> None:
    data = config_data()
    data["apps"][0]["kind"] = "robot"
    data["handover"]["pending_timeout"] = "soon"
    data["accounts"][0]["login"] = "myspace"
    data["apps"][1]["url"] = "ftp://x"
    problems = problems_of(data)
    assert any(p.startswith("apps[0].kind: must be 'bot' or 'human'") for p in problems)
    assert any(p.startswith("handover.pending_timeout: 'soon' is not a duration") for p in problems)
    assert any(p.startswith("accounts[0].login:") for p in problems)
    assert any(p.startswith("apps[1].url:") for p in problems)


def test_vendor_app_needs_signing_secret_and_api_key() -> None:
    data = config_data()
    data["apps"][1]["url"] = "https://vendor.example/hook"
    del data["apps"][1]["api_key"]
    problems = problems_of(data)
    assert any(p.startswith("apps[1].api_key: is required") for p in problems)
    assert any(p.startswith("apps[1].signing_secret: is required") for p in problems)


def test_unknown_keys_are_reported() -> None:
    data = config_data()
    data["apps"][0]["hanlder"] = "typo"
    assert any(p.startswith("apps[0].hanlder: unknown key") for p in problems_of(data))


def test_sandbox_mode_uses_placeholders_for_unset_secrets() -> None:
    config = load_config(ROOT / "config" / "orchestrator.toml", env={})
    assert config.sandbox
    assert config.app("support").api_key.value == "sandbox-SUPPORT_API_KEY"


def test_live_mode_refuses_the_default_config_without_secrets() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(ROOT / "config" / "orchestrator.toml", env={"ORCHESTRATOR_MODE": "live"})
    assert any("BOT_APP_SECRET is not set" in p for p in info.value.problems)


def test_missing_file_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config("/nonexistent/orchestrator.toml", env={})


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("4h", 14400), ("7d", 604800), (90, 90)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_rate_limits_are_configurable_and_validated() -> None:
    data = config_data(rate_limits={"send_text": 50, "private_reply_per_hour": 100})
    config = make_config(data)
    assert config.rate_limits.send_text == 50 and config.rate_limits.send_media == 10
    problems = problems_of(config_data(rate_limits={"send_text": 0, "burst": 3}))
    assert "rate_limits.send_text: must be a positive number of calls" in problems
    assert any(p.startswith("rate_limits.burst: unknown key") for p in problems)


def test_instagram_login_cannot_hand_over_between_apps() -> None:
    data = config_data()
    data["accounts"][0]["login"] = "instagram"
    assert any(
        p.startswith("accounts[0].login: handover between several apps needs")
        for p in problems_of(data)
    )
