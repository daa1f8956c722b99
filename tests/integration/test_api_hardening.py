"""The REST API answers every input with a 2xx/4xx and a JSON reason (issue 10, item 2):
strict ids, query parameters and bodies, scoped idempotency keys, read access per app, and
replies bounded to a few Send API messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from orchestrator.config import Config
from orchestrator.sandbox.runner import Sandbox
from tests.conftest import TEST_ENV, config_data, make_config

CUSTOMER = "5550000000000077"
ENV = {
    **TEST_ENV,
    "OTHER_APP_SECRET": "other-secret",
    "OTHER_VERIFY_TOKEN": "other-verify",
    "OTHER_PAGE_TOKEN": "other-page-token",
    "OTHER_API_KEY": "other-api-key",
    "DESK_APP_SECRET": "desk-secret",
    "DESK_VERIFY_TOKEN": "desk-verify",
    "DESK_PAGE_TOKEN": "desk-page-token",
    "DESK_API_KEY": "desk-api-key",
}


def _app(name: str, app_id: str, **extra: Any) -> dict[str, Any]:
    up = name.upper()
    return {
        "name": name,
        "app_id": app_id,
        "role": "secondary",
        "kind": "human",
        "app_secret": f"${{{up}_APP_SECRET}}",
        "verify_token": f"${{{up}_VERIFY_TOKEN}}",
        "page_token": f"${{{up}_PAGE_TOKEN}}",
        "api_key": f"${{{up}_API_KEY}}",
        **extra,
    }


def hardening_config() -> Config:
    data = config_data()
    data["apps"] = [
        *data["apps"],
        _app("other", "3333333333"),  # no standby, owns nothing: reads nothing
        _app("desk", "4444444444", can_read="all"),
    ]
    data["service"] = {**data["service"], "max_reply_parts": 3}
    return make_config(data, ENV)


@pytest.fixture
async def sb(db_url: str) -> AsyncIterator[Sandbox]:
    async with Sandbox(hardening_config(), db_url) as box:
        await box.sim("POST", f"/sim/customers/{CUSTOMER}/say", {"text": "Hallo"})
        await box.settle()
        yield box


async def cid(sb: Sandbox) -> int:
    return int((await sb.conversation(CUSTOMER))["id"])


async def call(
    sb: Sandbox,
    method: str,
    path: str,
    *,
    key: str = "support-api-key",
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    assert sb.http is not None
    hdrs = {"Authorization": f"Bearer {key}", **(headers or {})}
    async with sb.http.request(method, f"{sb.url}{path}", data=data, headers=hdrs) as resp:
        assert resp.content_type == "application/json", (resp.status, await resp.text())
        return resp.status, await resp.json()


@pytest.mark.parametrize(
    "query",
    [
        "limit=abc",
        "limit=1e3",
        "limit=-1",
        "limit=0",
        "limit=501",
        "limit=%EF%BC%95",
        "state=%00",
        "state=nope",
        "state=bot&state=human",
        "bogus=1",
        "account_id=%00",
    ],
)
async def test_bad_query_parameters_are_400(sb: Sandbox, query: str) -> None:
    status, body = await call(sb, "GET", f"/api/v1/conversations?{query}")
    assert status == 400, body
    assert body["error"]["code"] == "invalid_query" and body["error"]["message"]


@pytest.mark.parametrize(
    "raw_id",
    [
        "9999999999999999999999999",
        "9223372036854775808",
        "%C2%B2",
        "%EF%BC%95",
        "-1",
        "0",
        "1.0",
        "0x10",
        "%20",
    ],
)
async def test_ids_that_are_not_ascii_int64_are_400(sb: Sandbox, raw_id: str) -> None:
    for method, suffix in (("GET", ""), ("POST", "/messages"), ("POST", "/actions")):
        status, body = await call(sb, method, f"/api/v1/conversations/{raw_id}{suffix}", data=b"{}")
        assert status == 400, (raw_id, suffix, body)
        assert body["error"]["code"] == "invalid_conversation_id"


async def test_fullwidth_five_never_aliases_conversation_five(sb: Sandbox) -> None:
    status, _ = await call(sb, "GET", f"/api/v1/conversations/{await cid(sb)}")
    assert status == 200
    status, _ = await call(sb, "GET", "/api/v1/conversations/%EF%BC%91")  # fullwidth 1
    assert status == 400


async def test_unknown_large_id_is_404(sb: Sandbox) -> None:
    status, body = await call(sb, "GET", "/api/v1/conversations/9223372036854775807")
    assert status == 404 and body["error"]["code"] == "unknown_conversation"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"[" * 100_000, "too_large"),
        (b"[" * 10_000, "too_deep"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "too_deep"),
        (b'{"text": "a\\u0000b"}', "invalid_text"),
        (b'{"text": "a\\ud800b"}', "invalid_text"),
        (b'{"text\\u0000": "x"}', "invalid_text"),
        (b'{"text": "caf\xe9"}', "bad_json"),
        (b'{"text": NaN}', "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'"text"', "bad_json"),
        (b"{", "bad_json"),
        (b'{"text": 1e400}', "invalid_action"),
        (b'{"text": ' + b"9" * 5000 + b"}", "bad_json"),
        (b'{"surprise": 1}', "invalid_action"),
    ],
)
async def test_bad_bodies_are_4xx_with_a_reason(sb: Sandbox, data: bytes, code: str) -> None:
    status, body = await call(
        sb, "POST", f"/api/v1/conversations/{await cid(sb)}/messages", data=data
    )
    assert 400 <= status < 500, body
    assert body["error"]["code"] == code, body


async def test_body_over_64_kib_is_413(sb: Sandbox) -> None:
    data = b'{"text": "' + b"x" * 70_000 + b'"}'
    status, body = await call(
        sb, "POST", f"/api/v1/conversations/{await cid(sb)}/messages", data=data
    )
    assert status == 413 and body["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    "key",
    ["k" * 3000, "k" * 201, "", "with space", "tab\tkey", "ümlaut", "\u00ff\u00fe"],
)
async def test_bad_idempotency_keys_are_400(sb: Sandbox, key: str) -> None:
    status, body = await call(
        sb,
        "POST",
        f"/api/v1/conversations/{await cid(sb)}/accept",
        data=b"{}",
        headers={"Idempotency-Key": key.encode("utf-8").decode("latin-1")},
    )
    assert status == 400, body
    assert body["error"]["code"] == "invalid_idempotency_key"


async def test_non_ascii_authorization_is_401(sb: Sandbox) -> None:
    for header in ("Bearer ümlaut", "Bearer \u00ff\u00fe", "Bearer support-api-key\u00e4"):
        status, body = await call(sb, "GET", "/api/v1/conversations", key=header[7:])
        assert status == 401, body


async def test_raw_non_ascii_header_bytes_never_500(sb: Sandbox) -> None:
    import asyncio

    host, port = sb.url.removeprefix("http://").split(":")
    for name in (b"Authorization: Bearer \xe4\xff", b"Idempotency-Key: \xe4\xff\xfe"):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /api/v1/conversations/1/accept HTTP/1.1\r\nHost: x\r\n"
            + (b"" if name.startswith(b"Auth") else b"Authorization: Bearer support-api-key\r\n")
            + name
            + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        )
        await writer.drain()
        line = await reader.readline()
        writer.close()
        assert line.split()[1] in (b"400", b"401"), line


def event_of(body: dict[str, Any]) -> Any:
    return body.get("event_id") or body.get("error", {}).get("event_id")


async def test_idempotency_key_is_scoped_to_the_conversation(sb: Sandbox) -> None:
    # The case: one key for a message on conversation 1 and a take on conversation 2
    # answered the take with conversation 1's result and dropped it.
    await sb.sim("POST", "/sim/customers/5550000000000078/say", {"text": "Hallo"})
    await sb.settle()
    first = await cid(sb)
    second = int((await sb.conversation("5550000000000078"))["id"])
    headers = {"Idempotency-Key": "same-key"}
    _, b1 = await call(
        sb,
        "POST",
        f"/api/v1/conversations/{first}/messages",
        data=b'{"text": "hi"}',
        headers=headers,
    )
    _, b2 = await call(
        sb, "POST", f"/api/v1/conversations/{second}/take", data=b"{}", headers=headers
    )
    assert event_of(b1) and event_of(b2) and event_of(b1) != event_of(b2), (b1, b2)
    async with sb.pool.acquire() as conn:
        kinds = await conn.fetch(
            "SELECT conversation_id, payload->'action'->>'type' AS t FROM events"
            " WHERE id = ANY($1::bigint[]) ORDER BY id",
            [event_of(b1), event_of(b2)],
        )
    assert [(r["conversation_id"], r["t"]) for r in kinds] == [(first, "reply"), (second, "take")]


async def test_idempotency_key_reused_with_another_body_is_422(sb: Sandbox) -> None:
    path = f"/api/v1/conversations/{await cid(sb)}/request"
    headers = {"Idempotency-Key": "retry-1"}
    s1, b1 = await call(sb, "POST", path, data=b'{"metadata": "a"}', headers=headers)
    s2, b2 = await call(sb, "POST", path, data=b'{"metadata": "a"}', headers=headers)
    assert event_of(b1) and s1 == s2 and event_of(b1) == event_of(b2)  # a retry: same answer
    s3, b3 = await call(sb, "POST", path, data=b'{"metadata": "b"}', headers=headers)
    assert s3 == 422 and b3["error"]["code"] == "idempotency_key_reused"


async def test_read_access_follows_configuration(sb: Sandbox) -> None:
    conversation = await cid(sb)
    # support: standby copies of everything → reads it; desk: can_read = "all".
    for key in ("support-api-key", "desk-api-key"):
        status, body = await call(sb, "GET", "/api/v1/conversations", key=key)
        assert status == 200 and [c["id"] for c in body["conversations"]] == [conversation]
        status, _ = await call(sb, "GET", f"/api/v1/conversations/{conversation}", key=key)
        assert status == 200
    # other: neither owns, owned nor gets standby copies → sees nothing, not even existence.
    status, body = await call(sb, "GET", "/api/v1/conversations", key="other-api-key")
    assert status == 200 and body["conversations"] == []
    status, body = await call(
        sb, "GET", f"/api/v1/conversations/{conversation}", key="other-api-key"
    )
    assert status == 404 and body["error"]["code"] == "unknown_conversation"


async def test_an_app_reads_what_it_owned(sb: Sandbox, db_url: str) -> None:
    conversation = await cid(sb)
    async with sb.pool.acquire() as conn:
        await conn.execute(
            "UPDATE conversations SET owner_app = 'other' WHERE id = $1", conversation
        )
        await conn.execute("UPDATE conversations SET owner_app = NULL WHERE id = $1", conversation)
    status, body = await call(sb, "GET", "/api/v1/conversations", key="other-api-key")
    assert status == 200 and [c["id"] for c in body["conversations"]] == [conversation]


async def test_reply_longer_than_the_parts_limit_is_422(sb: Sandbox) -> None:
    conversation = await cid(sb)
    await sb.sim(
        "POST", f"/sim/customers/{CUSTOMER}/say", {"text": "Ich möchte mit einem Menschen sprechen"}
    )
    await sb.settle()
    status, body = await call(
        sb, "POST", f"/api/v1/conversations/{conversation}/accept", data=b"{}"
    )
    assert status == 200, body
    text = "Wort " * 20_000  # ~100 KB would be ~100 Send API calls
    import json

    status, body = await call(
        sb,
        "POST",
        f"/api/v1/conversations/{conversation}/messages",
        data=json.dumps({"text": text[:60_000]}).encode(),
    )
    assert status == 422 and body["error"]["code"] == "reply_too_long"
    assert body["error"]["max_parts"] == 3
    status, body = await call(
        sb,
        "POST",
        f"/api/v1/conversations/{conversation}/messages",
        data=json.dumps({"text": text[:2_500]}).encode(),
    )
    assert status == 200, body
    await sb.settle()
    view = await sb.sim("GET", f"/sim/customers/{CUSTOMER}")
    assert len([m for m in view["received"] if m.get("text", "").startswith("Wort")]) == 3


async def test_router_errors_are_json(sb: Sandbox) -> None:
    assert sb.http is not None
    async with sb.http.get(f"{sb.url}/api/v1/nothing-here") as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    async with sb.http.delete(f"{sb.url}/api/v1/conversations") as resp:
        assert resp.status == 405 and (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_openapi_document_is_served(sb: Sandbox) -> None:
    assert sb.http is not None
    async with sb.http.get(f"{sb.url}/api/v1/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["openapi"].startswith("3.") and "/api/v1/conversations" in doc["paths"]
    assert isinstance(aiohttp.__version__, str)
