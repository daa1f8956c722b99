"""The Messenger channel in config and Graph calls: a Page conversation maps to its account,
carries its channel, and is answered through the Page without Instagram's parameters."""

from __future__ import annotations

import re

import aiohttp
import pytest

from orchestrator.config import Config
from orchestrator.engine.runtime import graph_target
from orchestrator.errors import ConfigError
from orchestrator.graph import GraphClient
from tests.conftest import ACCOUNT_ID, PAGE_ID, config_data, make_config
from tests.meta_mock import MetaMock

PSID = "2000000000000001"


def messenger_config() -> Config:
    data = config_data()
    data["accounts"][0]["channels"] = ["instagram", "messenger"]
    return make_config(data)


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        make_config(data)
    return info.value.problems


def test_a_page_conversation_belongs_to_its_account_on_the_messenger_channel() -> None:
    config = messenger_config()
    assert config.account(PAGE_ID) is config.accounts[0]
    assert config.channel_of(PAGE_ID) == "messenger"
    assert config.channel_of(ACCOUNT_ID) == "instagram"
    assert config.account_ids() == {ACCOUNT_ID, PAGE_ID}


def test_without_the_channel_the_page_is_not_an_account() -> None:
    config = make_config()
    assert config.account(PAGE_ID) is None
    assert config.channel_of(PAGE_ID) is None
    assert "has no Messenger channel" in config.unknown_account_reason(PAGE_ID, "page")


def test_instagram_login_accounts_cannot_have_a_messenger_channel() -> None:
    data = config_data()
    data["apps"] = data["apps"][:1]
    data["accounts"][0]["login"] = "instagram"
    data["accounts"][0]["channels"] = ["instagram", "messenger"]
    assert any(
        p.startswith("accounts[0].channels: 'messenger' needs login = 'facebook'")
        for p in problems_of(data)
    )


def test_messenger_needs_a_page_id_and_channels_are_known_names() -> None:
    data = config_data()
    data["accounts"][0]["channels"] = ["instagram", "mesenger"]
    problems = problems_of(data)
    assert "accounts[0].channels[1]: 'mesenger': did you mean 'messenger'?" in problems


def test_a_page_can_serve_only_one_account() -> None:
    data = config_data()
    data["accounts"][0]["channels"] = ["instagram", "messenger"]
    second = {**data["accounts"][0], "name": "shop2", "instagram_account_id": "17841400000000002"}
    data["accounts"].append(second)
    assert any(
        p.startswith(f"accounts[1].page_id: {PAGE_ID} is registered twice")
        for p in problems_of(data)
    )


ANY = re.compile(r"^https://graph\.facebook\.com/v25\.0/.*$")


async def test_messenger_sends_and_takes_go_to_the_page_without_platform_instagram() -> None:
    config = messenger_config()
    target = graph_target(config, PAGE_ID, "support")
    assert target.channel == "messenger" and target.account_id == PAGE_ID
    async with aiohttp.ClientSession() as http:
        graph = GraphClient(http)
        with MetaMock() as meta:
            meta.post(ANY, payload={"recipient_id": PSID, "message_id": "m_1"})
            meta.post(ANY, payload={"success": True})
            meta.get(ANY, payload={"data": [{"thread_owner": {"app_id": "2222222222"}}]})
            await graph.send_message(target, {"id": PSID}, {"text": "Hallo"})
            await graph.take_thread_control(target, PSID)
            await graph.thread_owner(target, PSID)
            calls = [(m, u, c) for (m, u), cs in meta.requests.items() for c in cs]
    paths = [(m, u.path) for m, u, _c in calls]
    assert paths == [
        ("POST", f"/v25.0/{PAGE_ID}/messages"),
        ("POST", f"/v25.0/{PAGE_ID}/take_thread_control"),
        ("GET", f"/v25.0/{PAGE_ID}/thread_owner"),
    ]
    for _m, url, call in calls:
        assert url.query["access_token"] == "support-page-token"
        assert "platform" not in url.query
        assert "platform" not in (call.kwargs.get("json") or {})


def test_instagram_targets_keep_platform_instagram_on_thread_control() -> None:
    target = graph_target(messenger_config(), ACCOUNT_ID, "bot")
    assert target.channel == "instagram"
