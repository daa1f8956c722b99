"""check-config misses nothing: one test per kind of mistake (issue 11, item 1)."""

from __future__ import annotations

import pytest

from orchestrator.errors import ConfigError
from tests.conftest import config_data, make_config


def problems_of(data: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        make_config(data, env)
    return info.value.problems


@pytest.mark.parametrize(
    ("section", "typo", "expected"),
    [
        ("service", "prot", "service.prot: unknown key; did you mean 'port'?"),
        (
            "handover",
            "pending_timout",
            "handover.pending_timout: unknown key; did you mean 'pending_timeout'?",
        ),
        ("disclosure", "lapes", "disclosure.lapes: unknown key; did you mean 'lapse'?"),
    ],
)
def test_unknown_keys_in_every_section_with_a_suggestion(
    section: str, typo: str, expected: str
) -> None:
    data = config_data()
    data.setdefault(section, {})[typo] = "1m" if section != "service" else 8080
    assert expected in problems_of(data)


def test_unknown_key_in_an_account_would_silently_change_the_disclosure_language() -> None:
    data = config_data()
    del data["accounts"][0]["locale"]
    data["accounts"][0]["locle"] = "de"
    assert "accounts[0].locle: unknown key; did you mean 'locale'?" in problems_of(data)


def test_unknown_subsection_is_reported() -> None:
    data = config_data()
    data["disclosure"]["no_agent_txt"] = {"de": "Niemand da."}
    assert "disclosure.no_agent_txt: unknown section; did you mean 'no_agent_text'?" in problems_of(
        data
    )


def test_unknown_top_level_section_is_reported() -> None:
    data = config_data(handovr={"pending_timeout": "1m"})
    assert "handovr: unknown section; did you mean 'handover'?" in problems_of(data)


def test_unknown_key_without_a_near_miss_lists_the_accepted_keys() -> None:
    data = config_data()
    data["accounts"][0]["colour"] = "red"
    (problem,) = [p for p in problems_of(data) if p.startswith("accounts[0].colour")]
    assert "expected one of name, instagram_account_id, page_id, locale, market, login" in problem


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("service", "port", "8080", "service.port: expected int, got '8080'"),
        ("service", "port", 70000, "service.port: must be between 1 and 65535, got 70000"),
        ("service", "workers", 0, "service.workers: must be between 1 and 256, got 0"),
        ("service", "max_body_bytes", 10, "service.max_body_bytes: must be between 1024 and"),
        (
            "service",
            "graph_api_version",
            "25",
            "service.graph_api_version: '25': expected a version",
        ),
        ("service", "header_timeout", "0s", "service.header_timeout: must be between 1s and 10m"),
        (
            "handover",
            "pending_timeout",
            "400d",
            "handover.pending_timeout: must be between 1s and 365d",
        ),
        (
            "handover",
            "bot_failure_threshold",
            0,
            "handover.bot_failure_threshold: must be between 1 and 100",
        ),
        (
            "handover",
            "escalation_payloads",
            ["OK", 3],
            "handover.escalation_payloads: expected a list of non-empty strings",
        ),
        ("disclosure", "lapse", "soon", "disclosure.lapse: 'soon' is not a duration"),
    ],
)
def test_every_value_has_its_type_and_range_checked(
    section: str, key: str, value: object, expected: str
) -> None:
    data = config_data()
    data[section][key] = value
    assert any(p.startswith(expected) for p in problems_of(data)), problems_of(data)


def test_account_values_are_checked() -> None:
    data = config_data()
    data["accounts"][0]["locale"] = "German"
    data["accounts"][0]["market"] = "Germany"
    data["accounts"][0]["page_id"] = "\uff11\uff12\uff13"  # full-width digits are not an id
    problems = problems_of(data)
    assert any(
        p.startswith("accounts[0].locale: 'German': expected a language code") for p in problems
    )
    assert any(p.startswith("accounts[0].market: 'Germany'") for p in problems)
    assert any(p.startswith("accounts[0].page_id: expected digits only") for p in problems)


def test_a_table_where_a_value_belongs_and_the_reverse() -> None:
    data = config_data(handover=["10m"])
    assert any(p.startswith("handover: expected a table") for p in problems_of(data))


def test_handler_that_cannot_be_imported_is_a_config_mistake() -> None:
    data = config_data()
    data["apps"][0]["handler"] = "apps.faq_bott:FaqBot"
    (problem,) = [p for p in problems_of(data) if p.startswith("apps[0].handler")]
    assert "cannot import module 'apps.faq_bott'" in problem
    assert "No module named 'apps.faq_bott'" in problem


def test_handler_with_a_missing_class_is_reported() -> None:
    data = config_data()
    data["apps"][0]["handler"] = "apps.faq_bot:FaqBott"
    assert "apps[0].handler: module 'apps.faq_bot' has no attribute 'FaqBott'" in problems_of(data)


def test_handler_must_follow_the_subapp_protocol() -> None:
    data = config_data()
    data["apps"][0]["handler"] = "tests.unit.test_config_checks:NotAnApp"
    assert any(
        p.startswith("apps[0].handler:") and "must have `async def handle(self, delivery)`" in p
        for p in problems_of(data)
    )


def test_handler_that_fails_to_start_names_the_reason() -> None:
    data = config_data()
    data["apps"][0]["options"] = {"rules": "/nonexistent/faq.toml"}
    assert any(
        p.startswith("apps[0].handler: apps.faq_bot:FaqBot failed to start") and "faq.toml" in p
        for p in problems_of(data)
    )


def test_handler_path_syntax_is_checked_before_importing() -> None:
    data = config_data()
    data["apps"][0]["handler"] = "apps/faq_bot.py"
    assert any(
        p.startswith("apps[0].handler: 'apps/faq_bot.py': expected a dotted path")
        for p in problems_of(data)
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://vendor.example/hook", "expected an absolute http(s) URL"),
        ("https:///hook", "expected an absolute http(s) URL"),
        ("https://vendor.example:99999/hook", "is not a valid http(s) URL"),
        ("http://vendor.example/hook", "must use https:// in live mode"),
    ],
)
def test_vendor_urls_are_parsed(url: str, expected: str) -> None:
    data = config_data()
    data["apps"][1]["url"] = url
    data["apps"][1]["signing_secret"] = "${SUPPORT_SIGNING_SECRET}"
    assert any(p.startswith("apps[1].url:") and expected in p for p in problems_of(data))


def test_every_account_locale_needs_a_disclosure_text() -> None:
    data = config_data()
    data["accounts"][0]["locale"] = "fr"
    problems = problems_of(data)
    assert (
        "disclosure.text: no text for locale 'fr' of accounts[0] (shop); add disclosure.text.fr"
        in problems
    )
    assert any(p.startswith("disclosure.no_agent_text: no text for locale 'fr'") for p in problems)


def test_disclosure_texts_must_be_non_empty_strings() -> None:
    data = config_data()
    data["disclosure"]["text"]["de"] = ""
    assert any(
        p.startswith("disclosure.text.de: expected a non-empty text") for p in problems_of(data)
    )


def test_live_mode_needs_an_https_public_url() -> None:
    data = config_data()
    data["service"]["public_url"] = "http://127.0.0.1:8080"
    (problem,) = [p for p in problems_of(data) if p.startswith("service.public_url")]
    assert "Meta only calls webhooks over HTTPS" in problem


def test_live_mode_needs_a_public_url() -> None:
    data = config_data()
    del data["service"]["public_url"]
    assert any(
        p.startswith("service.public_url: is required in live mode") for p in problems_of(data)
    )


def test_sandbox_mode_accepts_a_local_http_public_url() -> None:
    data = config_data()
    data["service"].update(mode="sandbox", public_url="http://127.0.0.1:8080")
    assert make_config(data).service.public_url == "http://127.0.0.1:8080"


def test_environment_overrides_are_checked() -> None:
    from tests.conftest import TEST_ENV

    problems = problems_of(config_data(), {**TEST_ENV, "PORT": "80a", "ORCHESTRATOR_MODE": "prod"})
    assert any(
        p.startswith("PORT: environment variable PORT must be a port number") for p in problems
    )
    assert "ORCHESTRATOR_MODE: must be 'sandbox' or 'live', got 'prod'" in problems


def test_every_mistake_is_listed_at_once() -> None:
    data = config_data()
    data["service"]["prot"] = 1
    data["handover"]["pending_timout"] = "1m"
    data["apps"][0]["handler"] = "apps.faq_bott:FaqBot"
    assert len(problems_of(data)) == 3


class NotAnApp:
    def __init__(self, ctx: object) -> None:
        self.ctx = ctx

    def handle(self, delivery: object) -> list[object]:  # not async
        return []
