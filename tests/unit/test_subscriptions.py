"""`orchestrator subscribe`: subscribe each app to each account and name what is missing."""

from __future__ import annotations

import re

import aiohttp

from orchestrator.graph import GraphClient
from orchestrator.ops.subscriptions import FIELDS, subscribe_all
from tests.conftest import BOT_APP_ID, SUPPORT_APP_ID, make_config
from tests.meta_mock import MetaMock

SUBSCRIBED = re.compile(r"^https://graph\.facebook\.com/v25\.0/\d+/subscribed_apps.*$")


async def test_subscribe_reports_missing_fields_and_unsubscribed_apps() -> None:
    config = make_config()
    listing = {
        "data": [{"id": BOT_APP_ID, "subscribed_fields": [*FIELDS[:-1], "messaging_handovers"]}]
    }
    async with aiohttp.ClientSession() as session:
        graph = GraphClient(session)
        with MetaMock() as meta:
            for _ in config.apps:
                meta.post(SUBSCRIBED, payload={"success": True})
                meta.get(SUBSCRIBED, payload=listing)
            reports = await subscribe_all(config, graph)
            posts = [k for k in meta.requests if k[0] == "POST"]
    assert len(posts) == 2  # both apps subscribed, each with its own Page token
    by_app = {r.app: r for r in reports}
    assert not by_app["bot"].ok and by_app["bot"].detail == "missing fields: standby"
    assert not by_app["support"].ok and by_app["support"].detail == "app is not subscribed"
    assert SUPPORT_APP_ID not in by_app["bot"].detail


async def test_check_only_makes_no_subscription_call() -> None:
    config = make_config()
    listing = {"data": [{"id": a.app_id, "subscribed_fields": list(FIELDS)} for a in config.apps]}
    async with aiohttp.ClientSession() as session:
        with MetaMock() as meta:
            for _ in config.apps:
                meta.get(SUBSCRIBED, payload=listing)
            reports = await subscribe_all(config, GraphClient(session), check_only=True)
            methods = {k[0] for k in meta.requests}
    assert methods == {"GET"}
    assert all(r.ok and r.detail == "all fields subscribed" for r in reports)


async def test_every_account_and_app_pair_is_subscribed_with_its_own_token() -> None:
    from tests.unit.test_account_tokens import ENV, SHOP2_PAGE, two_accounts

    data = two_accounts(channels=["instagram", "messenger"])
    config = make_config(data, ENV)
    async with aiohttp.ClientSession() as session:
        with MetaMock() as meta:
            for _ in range(4):
                meta.post(SUBSCRIBED, payload={"success": True})
                meta.get(SUBSCRIBED, payload={"data": []})
            await subscribe_all(config, GraphClient(session))
            posts = [
                (url.path, url.query["access_token"], call.kwargs["json"]["subscribed_fields"])
                for (method, url), calls in meta.requests.items()
                if method == "POST"
                for call in calls
            ]
    tokens = {(path, token) for path, token, _fields in posts}
    assert tokens == {
        ("/v25.0/100000000000001/subscribed_apps", "shop-bot-token"),
        ("/v25.0/100000000000001/subscribed_apps", "shop-support-token"),
        (f"/v25.0/{SHOP2_PAGE}/subscribed_apps", "shop2-bot-token"),
        (f"/v25.0/{SHOP2_PAGE}/subscribed_apps", "shop2-support-token"),
    }
    # The Messenger account's Page also gets the Messenger-only fields.
    shop2 = [f for path, _t, f in posts if SHOP2_PAGE in path]
    shop = [f for path, _t, f in posts if SHOP2_PAGE not in path]
    assert all("message_deliveries" in f for f in shop2)
    assert not any("message_deliveries" in f for f in shop)
