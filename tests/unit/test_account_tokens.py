"""Credentials belong to (account, app): each account of a several-account config names its
own Page token per app, and every Graph call for an account carries that account's token."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from yarl import URL

from orchestrator.config import Config
from orchestrator.engine.runtime import graph_target
from orchestrator.errors import ConfigError
from orchestrator.graph import GraphClient
from tests.conftest import ACCOUNT_ID, PAGE_ID, TEST_ENV, config_data, make_config
from tests.meta_mock import MetaMock

SHOP2_IG = "17841400000000002"
SHOP2_PAGE = "100000000000002"
ENV = {
    **TEST_ENV,
    "SHOP_BOT_TOKEN": "shop-bot-token",
    "SHOP_SUPPORT_TOKEN": "shop-support-token",
    "SHOP2_BOT_TOKEN": "shop2-bot-token",
    "SHOP2_SUPPORT_TOKEN": "shop2-support-token",
}


def two_accounts(**second: Any) -> dict[str, Any]:
    data = config_data()
    data["accounts"][0]["tokens"] = {"bot": "${SHOP_BOT_TOKEN}", "support": "${SHOP_SUPPORT_TOKEN}"}
    data["accounts"].append(
        {
            "name": "shop2",
            "instagram_account_id": SHOP2_IG,
            "page_id": SHOP2_PAGE,
            "locale": "de",
            "tokens": {"bot": "${SHOP2_BOT_TOKEN}", "support": "${SHOP2_SUPPORT_TOKEN}"},
            **second,
        }
    )
    return data


def problems_of(data: dict[str, Any], env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as info:
        make_config(data, env)
    return info.value.problems


def test_each_account_has_its_own_token_per_app() -> None:
    config = make_config(two_accounts(), ENV)
    shop, shop2 = config.accounts
    assert config.token(shop, config.app("bot")).value == "shop-bot-token"
    assert config.token(shop2, config.app("bot")).value == "shop2-bot-token"
    assert config.token(shop2, config.app("support")).value == "shop2-support-token"
    assert config.token_key(shop2, config.app("support")) == "accounts[1].tokens.support"
    assert "shop2-bot-token" not in repr(config)


def test_a_single_account_keeps_using_the_apps_page_token() -> None:
    config = make_config()
    (shop,) = config.accounts
    assert config.token(shop, config.app("bot")).value == "bot-page-token"
    assert config.token_key(shop, config.app("bot")) == "apps[0].page_token"


def test_a_single_account_may_give_its_tokens_instead_of_page_token() -> None:
    data = config_data()
    del data["apps"][0]["page_token"]
    data["accounts"][0]["tokens"] = {"bot": "${SHOP_BOT_TOKEN}"}
    config = make_config(data, ENV)
    assert config.token(config.accounts[0], config.app("bot")).value == "shop-bot-token"


def test_a_single_account_without_any_token_names_page_token() -> None:
    data = config_data()
    del data["apps"][0]["page_token"]
    problems = problems_of(data)
    assert any(p.startswith("apps[0].page_token: is required") for p in problems)


def test_a_second_account_without_its_token_is_named_with_the_key_to_add() -> None:
    data = two_accounts()
    del data["accounts"][1]["tokens"]["support"]
    problems = problems_of(data)
    assert [p for p in problems if p.startswith("accounts[1].tokens.support")] == [
        "accounts[1].tokens.support: is required: app 'support' has no token for account "
        "'shop2' (apps[1].page_token is used only when there is a single account); add "
        'support = "${SHOP2_SUPPORT_TOKEN}" under [accounts.tokens] of accounts[1]'
    ]


def test_several_accounts_with_only_app_level_tokens_are_refused() -> None:
    data = config_data()
    data["accounts"].append(
        {"name": "shop2", "instagram_account_id": SHOP2_IG, "page_id": SHOP2_PAGE, "locale": "de"}
    )
    problems = problems_of(data)
    for key in ("accounts[0].tokens.bot", "accounts[1].tokens.bot", "accounts[1].tokens.support"):
        assert any(p.startswith(f"{key}: is required") for p in problems), problems


def test_a_token_for_an_unknown_app_is_a_mistake() -> None:
    data = two_accounts()
    data["accounts"][1]["tokens"]["suport"] = "${SHOP2_SUPPORT_TOKEN}"
    problems = problems_of(data)
    assert "accounts[1].tokens.suport: no app named 'suport'; did you mean 'support'?" in problems


def test_an_unset_token_variable_names_the_account_key() -> None:
    env = {k: v for k, v in ENV.items() if k != "SHOP2_BOT_TOKEN"}
    problems = problems_of(two_accounts(), env)
    assert (
        "accounts[1].tokens.bot: environment variable SHOP2_BOT_TOKEN is not set; "
        "export SHOP2_BOT_TOKEN=<value>" in problems
    )


def test_sandbox_mode_fills_missing_account_tokens_with_placeholders() -> None:
    data = two_accounts()
    data["service"] = {"mode": "sandbox"}
    del data["accounts"][1]["tokens"]
    config = make_config(data, ENV)
    assert "accounts[1].tokens.bot" in config.generated_secrets


SEND = re.compile(r"^https://graph\.facebook\.com/v25\.0/\d+/messages.*$")


async def _send_for(config: Config, account_id: str, customer: str) -> URL:
    async with aiohttp.ClientSession() as http:
        graph = GraphClient(http)
        with MetaMock() as meta:
            meta.post(SEND, payload={"recipient_id": customer, "message_id": "m1"})
            await graph.send_message(
                graph_target(config, account_id, "bot"), {"id": customer}, {"text": "Hallo"}
            )
            ((_method, url),) = meta.requests
    return url


async def test_the_second_accounts_send_carries_its_own_token() -> None:
    config = make_config(two_accounts(), ENV)
    first = await _send_for(config, ACCOUNT_ID, "5550000000000001")
    second = await _send_for(config, SHOP2_IG, "5550000000000002")
    assert first.path == f"/v25.0/{PAGE_ID}/messages"
    assert first.query["access_token"] == "shop-bot-token"
    assert second.path == f"/v25.0/{SHOP2_PAGE}/messages"
    assert second.query["access_token"] == "shop2-bot-token"
